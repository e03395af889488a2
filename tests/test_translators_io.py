"""translate_files on the real KITTI fixture frames (1224×370 and 1242×375), the padding, the
`none` baseline and the translate CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import translators
from translators.__main__ import main as cli
from translators.cyclegan import CycleGAN, CycleGANConfig
from translators.cyclegan.networks import build_generator
from translators.io import BadImageError, pad_to_multiple, translate_files
from translators.none import NoTranslator

FIXTURES = Path(__file__).resolve().parent / "fixtures"
KITTI_IMAGES = FIXTURES / "kitti" / "detection" / "training" / "image_2"
FRAME_0, FRAME_1 = KITTI_IMAGES / "000000.png", KITTI_IMAGES / "000001.png"  # 1224×370, 1242×375
CPU = torch.device("cpu")


class Spy:
    """The identity, recording the (padded) shapes it was called with."""

    name = "spy"

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(images.shape))
        return images


def rgb(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]


def test_identity_keeps_size_names_and_pixels_on_real_frames(tmp_path: Path) -> None:
    outputs = translate_files(NoTranslator(), [FRAME_0, FRAME_1], tmp_path, device=CPU)
    assert outputs == [tmp_path / "000000.png", tmp_path / "000001.png"]
    for source, output in zip([FRAME_0, FRAME_1], outputs, strict=True):
        # PNG in, PNG out, identity translator: the very same pixels at the native size
        assert np.array_equal(rgb(output), rgb(source))
    assert rgb(outputs[0]).shape == (370, 1224, 3) and rgb(outputs[1]).shape == (375, 1242, 3)


def test_batches_group_equal_sizes_and_pad_to_multiple_of_4(tmp_path: Path) -> None:
    inputs = [FRAME_0, FRAME_0, FRAME_0, FRAME_1, FRAME_1]
    names = [f"{i}.png" for i in range(len(inputs))]
    spy = Spy()
    outputs = translate_files(spy, inputs, tmp_path, batch_size=2, device=CPU, names=names)
    # consecutive equal-size frames batched (at most 2), a new batch when the size changes;
    # 370 -> 372, 1242 -> 1244, 375 -> 376; then cropped back to the native size
    assert spy.shapes == [(2, 3, 372, 1224), (1, 3, 372, 1224), (2, 3, 376, 1244)]
    for source, output in zip(inputs, outputs, strict=True):
        assert np.array_equal(rgb(output), rgb(source))


def test_jpeg_output_at_quality_95_and_nested_names(tmp_path: Path) -> None:
    outputs = translate_files(NoTranslator(), [FRAME_1], tmp_path, device=CPU,
                              names=["Scene01/Camera_0/00001.jpg"])
    assert outputs == [tmp_path / "Scene01" / "Camera_0" / "00001.jpg"]
    ok, expected = cv2.imencode(".jpg", cv2.imread(str(FRAME_1)), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok and outputs[0].read_bytes() == expected.tobytes()
    assert not [p for p in outputs[0].parent.iterdir() if p.name.endswith(".tmp")]


def test_pad_to_multiple_reflects_and_handles_pads_larger_than_the_image() -> None:
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7)
    padded = pad_to_multiple(x, 4)
    assert padded.shape == (2, 3, 8, 8)
    assert torch.equal(padded, F.pad(x, (0, 1, 0, 3), mode="reflect"))
    assert torch.equal(pad_to_multiple(x, 1), x)
    big = pad_to_multiple(x, 256)  # a U-Net's multiple: several reflections
    assert big.shape == (2, 3, 256, 256) and torch.equal(big[..., :5, :7], x)
    assert big[..., 5, 0].tolist() == x[..., 3, 0].tolist()  # row 5 mirrors row 3
    line = torch.rand(1, 3, 1, 6)  # a 1-pixel side cannot reflect: replicated
    assert torch.equal(pad_to_multiple(line, 4)[..., 3, :6], line[..., 0, :])


def test_cyclegan_translates_real_frames_at_native_size_deterministically(
        tmp_path: Path) -> None:
    model_dir = save_random_cyclegan(tmp_path / "model", CycleGANConfig(ngf=4, n_blocks=1))
    translator = CycleGAN()
    translator.load(model_dir, CPU)
    first = translate_files(translator, [FRAME_0, FRAME_1], tmp_path / "a", device=CPU)
    second = translate_files(translator, [FRAME_0, FRAME_1], tmp_path / "b", device=CPU)
    assert [rgb(p).shape for p in first] == [(370, 1224, 3), (375, 1242, 3)]
    assert [p.name for p in first] == ["000000.png", "000001.png"]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    assert not np.array_equal(rgb(first[1]), rgb(FRAME_1))  # it did translate


def test_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(BadImageError, match="broken.png"):
        translate_files(NoTranslator(), [FRAME_0, broken], tmp_path / "o1", device=CPU)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        translate_files(NoTranslator(), [tmp_path / "missing.png"], tmp_path / "o2", device=CPU)
    with pytest.raises(ValueError, match="more than one input"):
        translate_files(NoTranslator(), [FRAME_0, FRAME_1], tmp_path / "o3", device=CPU,
                        names=["x.png", "x.png"])
    with pytest.raises(ValueError, match="inside"):
        translate_files(NoTranslator(), [FRAME_0], tmp_path / "o4", device=CPU,
                        names=["../escape.png"])

    class Shrinker:
        name = "shrinker"

        def __call__(self, images: torch.Tensor) -> torch.Tensor:
            return images[..., :-4, :]

    with pytest.raises(ValueError, match="shrinker.*keep the size"):
        translate_files(Shrinker(), [FRAME_0], tmp_path / "o5", device=CPU)


def test_every_translator_says_which_frames_translate_writes() -> None:
    """The translate stage dispatches on `frames`: a value outside FRAMES would silently be
    treated as a learned translator's."""
    from translators.base import FRAMES

    found = {name: translators.get(name).frames for name in translators.names()}
    assert set(found.values()) <= set(FRAMES), found
    assert found["none"] == "rendered" and found["ideal"] == "ideal"
    assert found["cyclegan"] == found["cut"] == found["fda"] == "clone"


def test_none_baseline(tmp_path: Path) -> None:
    translator = translators.get("none")
    assert translator.frames == "rendered"
    assert translators.config_class("none")() is not None
    translator.fit([FRAME_0], [FRAME_1], tmp_path / "none", translator.Config())
    meta = json.loads((tmp_path / "none" / "config.json").read_text())
    assert meta["translator"] == "none" and meta["source_frames"] == 1
    translator.load(tmp_path / "none", CPU)
    images = torch.rand(2, 3, 9, 11)
    assert torch.equal(translator(images), images)
    with pytest.raises(ValueError, match="B×3×H×W"):
        translator(torch.rand(3, 9, 11))


def test_translate_cli_keeps_relative_names(tmp_path: Path, capsys) -> None:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    shutil.copy(FRAME_0, tmp_path / "in" / "sub" / "a.png")
    shutil.copy(FRAME_1, tmp_path / "in" / "b.png")
    model_dir = save_random_cyclegan(tmp_path / "model", CycleGANConfig(ngf=4, n_blocks=1))
    code = cli(["translate", "--translator", "cyclegan", "--model", str(model_dir),
                "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                "--device", "cpu"])
    assert code == 0 and "translated 2 frames" in capsys.readouterr().out
    assert rgb(tmp_path / "out" / "sub" / "a.png").shape == (370, 1224, 3)
    assert rgb(tmp_path / "out" / "b.png").shape == (375, 1242, 3)
    assert cli(["translate", "--translator", "cyclegan", "--model", str(tmp_path / "nothing"),
                "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o")]) == 2
    assert "config.json not found" in capsys.readouterr().err


def save_random_cyclegan(out: Path, cfg: CycleGANConfig) -> Path:
    """A model dir as CycleGAN.fit writes it (config.json + G_A.pt), with untrained weights."""
    torch.manual_seed(0)
    out.mkdir(parents=True)
    torch.save(build_generator(cfg).state_dict(), out / "G_A.pt")
    (out / "config.json").write_text(json.dumps({"translator": "cyclegan",
                                                 "config": cfg.to_dict()}))
    return out
