"""Neural style transfer: VGG19 trunk, weights handling (offline), losses, the translator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from translators.io import load_image, write_rgb
from translators.nst import NeuralStyleTransfer, NSTConfig, VGGWeightsNotFoundError
from translators.nst.style import gram, losses
from translators.nst.vgg import CHECKPOINT_NAME, VGGFeatures

KITTI = Path(__file__).resolve().parent / "fixtures" / "kitti" / "detection"
FRAMES = [KITTI / "training" / "image_2" / f"00000{i}.png" for i in (0, 1)]
SHALLOW = ["block1_conv2", "block2_conv2"]  # cheap layers for the slow CPU


def _small(path: Path, width: int = 96) -> torch.Tensor:
    image = load_image(path)[None]
    height = round(image.shape[-2] * width / image.shape[-1])
    return F.interpolate(image, size=(height, width), mode="bilinear", antialias=True)


@pytest.fixture
def styles(tmp_path: Path) -> list[Path]:
    """Two 'foggy' style frames made from a real frame: washed out towards grey."""
    frame = load_image(FRAMES[1])
    paths = []
    for index, haze in enumerate((0.5, 0.7)):
        image = (1 - haze) * frame + haze * torch.tensor([0.72, 0.75, 0.80]).view(3, 1, 1)
        path = tmp_path / "bdd" / f"fog_{index}.png"
        write_rgb(path, image.mul(255).round().byte().permute(1, 2, 0).numpy())
        paths.append(path)
    return paths


def test_trunk_is_truncated_and_layers_have_vgg19_shapes():
    vgg = VGGFeatures(["block2_conv2", "block1_conv2"], weights="random")
    assert len(vgg.trunk) == 9  # conv,relu,conv,relu,pool,conv,relu,conv,relu: ends at block2_conv2
    out = vgg(torch.rand(2, 3, 40, 64))
    assert out["block1_conv2"].shape == (2, 64, 40, 64)
    assert out["block2_conv2"].shape == (2, 128, 20, 32)
    assert (out["block2_conv2"] >= 0).all()  # Keras-style layer output = after the ReLU
    assert len(VGGFeatures(["block5_conv3"], weights="random").trunk) == 34
    with pytest.raises(ValueError, match="block6_conv1"):
        VGGFeatures(["block6_conv1"], weights="random")


def test_random_weights_are_seeded():
    image = torch.rand(1, 3, 32, 32)
    first = VGGFeatures(SHALLOW, "random")(image)["block2_conv2"]
    torch.manual_seed(123)  # the global seed does not matter: random weights are a fixed init
    second = VGGFeatures(SHALLOW, "random")(image)["block2_conv2"]
    assert torch.equal(first, second)


def test_offline_imagenet_without_the_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    with pytest.raises(VGGWeightsNotFoundError) as error:
        VGGFeatures(SHALLOW, weights="imagenet")
    message = str(error.value)
    assert isinstance(error.value, FileNotFoundError)
    assert str(tmp_path / "torch_home" / "hub" / "checkpoints" / CHECKPOINT_NAME) in message
    assert "translators.nst.weights" in message
    with pytest.raises(VGGWeightsNotFoundError, match="nowhere.pth"):
        VGGFeatures(SHALLOW, weights=str(tmp_path / "nowhere.pth"))
    # fit (the translator_train stage) already says so, before any frame is translated
    with pytest.raises(VGGWeightsNotFoundError, match=CHECKPOINT_NAME):
        NeuralStyleTransfer().fit(FRAMES, FRAMES, tmp_path / "fog", NSTConfig())


def test_nst_cli_without_the_vgg_file_says_which_file_to_put_where(tmp_path, monkeypatch,
                                                                   capsys):
    """`python -m translators train --translator nst`: one line and exit 2, no traceback."""
    from translators.__main__ import main as cli

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    args = ["train", "--translator", "nst", "--source", str(KITTI / "training" / "image_2"),
            "--target", str(KITTI / "training" / "image_2"), "--out", str(tmp_path / "fog")]
    assert cli(args) == 2
    assert capsys.readouterr().err == (
        f"error: VGG19 ImageNet weights not found at {hub / CHECKPOINT_NAME} and nothing is "
        f"downloaded at run time. Put the file {CHECKPOINT_NAME} (from "
        f"https://download.pytorch.org/models/{CHECKPOINT_NAME}) in {hub} (= "
        f"$TORCH_HOME/hub/checkpoints; TORCH_HOME={tmp_path / 'torch_home'}), or set "
        "translators.nst.weights (python -m translators: --set weights=FILE) to a local VGG19 "
        "state-dict file.\n")
    assert cli([*args, "--set", f"weights={tmp_path / 'vgg.pth'}"]) == 2
    assert capsys.readouterr().err == (f"error: VGG19 state-dict file {tmp_path / 'vgg.pth'} "
                                       "(translators.nst.weights) does not exist\n")
    assert not (tmp_path / "fog").exists()


def test_imagenet_file_in_the_hub_cache_and_local_state_dict_load(tmp_path, monkeypatch):
    """A full torchvision-style vgg19 state dict, found in the hub cache or given by path."""
    reference = VGGFeatures(SHALLOW, weights="random")
    state = {f"features.{k}": v for k, v in reference.trunk.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # extra keys are ignored
    checkpoint = tmp_path / "torch_home" / "hub" / "checkpoints" / CHECKPOINT_NAME
    checkpoint.parent.mkdir(parents=True)
    torch.save(state, checkpoint)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: 1 / 0)
    image = torch.rand(1, 3, 24, 24)
    expected = reference(image)["block2_conv2"]
    assert torch.equal(VGGFeatures(SHALLOW, "imagenet")(image)["block2_conv2"], expected)
    assert torch.equal(VGGFeatures(SHALLOW, str(checkpoint))(image)["block2_conv2"], expected)
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="lack"):
        VGGFeatures(SHALLOW, str(tmp_path / "partial.pth"))


def test_gram_is_normalised_by_positions():
    features = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])  # 1×2×2×2
    expected = torch.tensor([[30.0, 6.0], [6.0, 2.0]]) / 4
    assert torch.allclose(gram(features)[0], expected)
    # same statistics at twice the size: same Gram (style frames of any size compare)
    tiled = features.repeat(1, 1, 2, 2)
    assert torch.allclose(gram(tiled), gram(features))


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_style_loss_decreases_with_random_weights(tmp_path, styles, optimizer):
    # Random features are far weaker than trained ones, so at the default TV weight the TV
    # term would dominate; a small one lets the test see the style term at work.
    cfg = NSTConfig(
        weights="random",
        style_layers=SHALLOW,
        optimizer=optimizer,
        steps=12,
        n_style_images=2,
        tv_weight=1e-4,
    )
    torch.manual_seed(0)
    NeuralStyleTransfer().fit(FRAMES, styles, tmp_path / "fog", cfg)
    translator = NeuralStyleTransfer()
    translator.load(tmp_path / "fog", torch.device("cpu"))
    content = torch.cat(
        [_small(FRAMES[0]), _small(FRAMES[1])[..., : _small(FRAMES[0]).shape[-2], :]]
    )
    channels_last = content.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    with torch.inference_mode():  # as translate_files calls it, on a permuted HWC array
        out = translator(channels_last)
    history = translator.last_history
    assert out.shape == content.shape and 0 <= out.min() and out.max() <= 1
    assert len(history) <= 12 and history[-1] < 0.8 * history[0]
    targets = translator._style_targets(content.shape[-1])
    vgg = translator.vgg
    with torch.no_grad():
        content_targets = {"block2_conv2": vgg(content)["block2_conv2"]}
        before = losses(vgg, content, content_targets, targets)
        after = losses(vgg, out, content_targets, targets)
    assert (after["style"] < 0.9 * before["style"]).all()  # each image moved towards the style
    assert (before["content"] == 0).all() and (after["content"] > 0).all()


def test_fit_load_translate_full_resolution_is_seeded(tmp_path, styles):
    cfg = NSTConfig(weights="random", style_layers=SHALLOW, steps=4, max_size=64)
    torch.manual_seed(0)
    NeuralStyleTransfer().fit(FRAMES, styles, tmp_path / "rain", cfg)
    saved = json.loads((tmp_path / "rain" / "config.json").read_text())
    assert saved["config"]["style_layers"] == SHALLOW and saved["config"]["max_size"] == 64
    [style_name] = saved["styles"]  # n_style_images = 1: one seeded pick, bytes kept
    assert any(p.read_bytes() == (tmp_path / "rain" / style_name).read_bytes() for p in styles)
    outputs = []
    for _ in range(2):
        translator = NeuralStyleTransfer()
        translator.load(tmp_path / "rain", "cpu")
        frame = load_image(FRAMES[1])[None]  # 1242×375, optimised at 64×19
        outputs.append(translator(frame))
    assert outputs[0].shape == frame.shape
    assert torch.equal(outputs[0], outputs[1])  # byte-identical on CPU
    change = outputs[0] - frame
    assert change.abs().mean() > 1e-3
    # the change was found at 64 px and upsampled: it is smooth, the frame's detail is kept
    smooth = F.avg_pool2d(change, 5, stride=1, padding=2, count_include_pad=False)
    assert (change - smooth).abs().mean() < 0.1 * change.abs().mean()


def test_config_is_validated(tmp_path, styles):
    with pytest.raises(ValueError, match="style_layers"):
        NeuralStyleTransfer().fit(FRAMES, styles, tmp_path, NSTConfig(style_layers=["conv1"]))
    with pytest.raises(ValueError, match="optimizer"):
        NeuralStyleTransfer().fit(FRAMES, styles, tmp_path, NSTConfig(optimizer="sgd"))
    with pytest.raises(ValueError, match="no target"):
        NeuralStyleTransfer().fit(FRAMES, [], tmp_path, NSTConfig(weights="random"))
    defaults = NSTConfig()  # the original study's choice
    assert defaults.content_layers == ["block2_conv2"]
    assert defaults.style_layers[-1] == "block5_conv3" and len(defaults.style_layers) == 5
    assert (defaults.content_weight, defaults.style_weight) == (0.01, 4.0)
