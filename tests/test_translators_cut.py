"""CUT / FastCUT: PatchNCE against a brute-force sum, seeded shared patch positions, the two
modes' objectives, bit-for-bit resume, a fit + load + translate round trip, one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from test_translators_cyclegan import ScriptedScorer, read_metric, write_frames

import translators
from common.config import ParamError
from translators.__main__ import main as cli
from translators.cut import CUT, CUTConfig
from translators.cut.model import CUTModel, patch_nce_loss
from translators.cut.networks import (
    PatchProjector,
    encode,
    gather_patches,
    nce_layers,
    sample_patch_ids,
)
from translators.cyclegan.networks import build_resnet_generator

CPU = torch.device("cpu")
TINY = {"ngf": 4, "ndf": 4, "n_blocks": 2, "preprocess": "crop", "crop_size": 32,
        "num_workers": 0, "n_samples": 2, "num_patches": 16, "nce_dim": 8}


def test_patch_nce_equals_a_brute_force_sum_over_patches() -> None:
    generator = torch.Generator().manual_seed(0)
    queries = torch.nn.functional.normalize(torch.randn(2, 5, 4, generator=generator), dim=-1)
    keys = torch.nn.functional.normalize(torch.randn(2, 5, 4, generator=generator), dim=-1)
    for tau in (0.07, 1.0):
        terms = []
        for b in range(2):
            for i in range(5):  # query i: its positive is key i, the negatives keys j != i
                scores = [float(queries[b, i] @ keys[b, j]) / tau for j in range(5)]
                terms.append(math.log(sum(math.exp(s) for s in scores)) - scores[i])
        expected = sum(terms) / len(terms)
        assert patch_nce_loss(queries, keys, tau).item() == pytest.approx(expected, rel=1e-5)
    # matching patches (a query equal to its own key) score far better than random ones
    assert patch_nce_loss(keys, keys, 0.07) < 0.1 < patch_nce_loss(queries, keys, 0.07)
    # keys are targets: no gradient reaches them
    keys.requires_grad_(True)
    queries.requires_grad_(True)
    patch_nce_loss(queries, keys, 0.07).backward()
    assert keys.grad is None and queries.grad is not None


def test_patch_ids_are_seeded_distinct_and_index_the_grid_row_major() -> None:
    features = [torch.randn(2, 3, 6, 5), torch.randn(2, 7, 2, 3)]
    first = sample_patch_ids(features, 8, torch.Generator().manual_seed(4))
    again = sample_patch_ids(features, 8, torch.Generator().manual_seed(4))
    other = sample_patch_ids(features, 8, torch.Generator().manual_seed(5))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])
    assert len(first[0]) == 8 and len(set(first[0].tolist())) == 8
    assert sorted(first[1].tolist()) == list(range(6))  # fewer positions than asked: all
    patches = gather_patches(features[0], first[0])
    for s, position in enumerate(first[0].tolist()):
        row, column = divmod(position, 5)
        assert torch.equal(patches[:, s], features[0][:, :, row, column])
    projected = PatchProjector([3, 7], dim=4)(features, first)
    assert [p.shape for p in projected] == [(2, 8, 4), (2, 6, 4)]
    assert torch.allclose(projected[0].norm(dim=-1), torch.ones(2, 8))


def test_nce_layers_are_the_generators_encoder_features() -> None:
    cfg = CUTConfig(ngf=4, n_blocks=4)
    layers = nce_layers(cfg.ngf, cfg.n_blocks)
    assert list(layers) == [0, 4, 7, 10, 12]  # input, two downsamplings, blocks 1 and 3
    features, out = encode(build_resnet_generator(cfg), torch.rand(1, 3, 20, 24), list(layers))
    assert out is None
    assert [f.shape[1] for f in features] == list(layers.values()) == [3, 8, 16, 16, 16]
    assert [f.shape[2:] for f in features] == [(26, 30), (10, 12), (5, 6), (5, 6), (5, 6)]
    assert list(nce_layers(4, 1)) == [0, 4, 7, 10]


@pytest.mark.parametrize("flip", [False, True])
def test_queries_and_keys_use_the_same_positions(flip: bool) -> None:
    torch.manual_seed(0)
    model = CUTModel(CUTConfig(**TINY), CPU, seed=3)
    images = torch.rand(2, 3, 16, 20) * 2 - 1
    state = model.sampler.get_state()
    out = model.generator(images, flip)
    # the same computation by hand, with one set of ids drawn from the same sampler state
    G, layers = model.G, model.generator.layers
    source, _ = encode(G, images, layers)
    fake = G(images.flip(3)) if flip else G(images)
    output, _ = encode(G, fake, layers)
    output = [f.flip(3) for f in output] if flip else output
    ids = sample_patch_ids(source, 16, torch.Generator().set_state(state))
    assert torch.allclose(out["fake"], fake, atol=1e-6)
    for got, expected in [(out["keys"], model.H(source, ids)),
                          (out["queries"], model.H(output, ids))]:
        assert all(torch.allclose(g, e, atol=1e-5) for g, e in zip(got, expected, strict=True))


def test_fastcut_never_translates_real_frames_and_weighs_nce_tenfold() -> None:
    real_A, real_B = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    losses, inputs = {}, {}
    for mode in ("cut", "fastcut"):
        torch.manual_seed(0)
        cfg = CUTConfig(**TINY, mode=mode, flip_equivariance=False)
        model = CUTModel(cfg, CPU, seed=0)
        seen: list[torch.Tensor] = []
        model.G.model[0].register_forward_hook(lambda m, args, out, seen=seen: seen.append(
            args[0].detach()))
        losses[mode] = model.train_step(real_A, real_B)
        inputs[mode] = torch.cat(seen)
    assert set(losses["cut"]) == {"G_GAN", "NCE_X", "NCE_Y", "D"}
    assert set(losses["fastcut"]) == {"G_GAN", "NCE_X", "D"}

    def translated(image: torch.Tensor, mode: str) -> bool:
        return any(torch.equal(image, seen) for seen in inputs[mode])

    assert all(translated(image, "cut") for image in real_B)  # G(y): the identity term
    assert not any(translated(image, "fastcut") for image in real_B)
    assert all(translated(image, "fastcut") for image in real_A)
    # the same nets, data and patches: only the weight differs (1 vs 10)
    assert losses["fastcut"]["NCE_X"] == pytest.approx(10 * losses["cut"]["NCE_X"], rel=1e-4)
    assert (CUTConfig(mode="fastcut").flips, CUTConfig().flips) == (True, False)


@pytest.mark.parametrize("mode", ["cut", "fastcut"])
def test_a_killed_run_resumes_to_the_same_weights(tmp_path: Path, monkeypatch,
                                                  mode: str) -> None:
    source, target = write_frames(tmp_path, n_sim=4, n_real=2)
    cfg = CUTConfig(**TINY, mode=mode, batch_size=1, n_epochs=2, n_epochs_decay=1,
                    checkpoint_every=3, sample_every=0, score_every=1, score_frames=2)
    # epoch 1 scores best: its weights must come back from the killed run's checkpoint
    scores = [0.1, 0.3, 0.2]
    torch.manual_seed(0)
    CUT().fit(source, target, tmp_path / "reference", cfg, device=CPU,
              scorer=ScriptedScorer(scores))

    step = CUTModel.train_step
    calls = []

    def dies_at_step_8(self, real_A, real_B):
        calls.append(1)
        if len(calls) == 8:  # after the checkpoints at iterations 3 and 4 (epoch end) and 6
            raise KeyboardInterrupt
        return step(self, real_A, real_B)

    monkeypatch.setattr(CUTModel, "train_step", dies_at_step_8)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        CUT().fit(source, target, tmp_path / "resumed", cfg, device=CPU,
                  scorer=ScriptedScorer(scores[:1]))
    monkeypatch.setattr(CUTModel, "train_step", step)
    checkpoint = torch.load(tmp_path / "resumed" / "checkpoints" / "last.pt", weights_only=True)
    assert (checkpoint["epoch"], checkpoint["iteration"]) == (1, 2)
    assert checkpoint["selection"]["scores"] == [[1, 0.1]]
    assert checkpoint["selection"]["best_epoch"] == 1
    torch.manual_seed(123)  # the checkpoint's RNG states win over whatever the restart has
    CUT().fit(source, target, tmp_path / "resumed", cfg, device=CPU,
              scorer=ScriptedScorer(scores[1:]))
    for name in ("G.pt", "config.json", "train_summary.json"):
        assert ((tmp_path / "resumed" / name).read_bytes()
                == (tmp_path / "reference" / name).read_bytes()), name
    summary = json.loads((tmp_path / "resumed" / "train_summary.json").read_text())
    assert (summary["selection"]["published_epoch"], summary["selection"]["scores"]) == (
        1, [{"epoch": 1, "kid": 0.1}, {"epoch": 2, "kid": 0.3}, {"epoch": 3, "kid": 0.2}])
    # the score curve was rebuilt from the checkpoint too: each epoch once
    assert read_metric(tmp_path / "resumed", "kid", "score") == read_metric(
        tmp_path / "reference", "kid", "score")


def test_fit_load_translate_keeps_the_frame_size(tmp_path: Path) -> None:
    source, target = write_frames(tmp_path, n_sim=2, n_real=2)
    cfg = CUTConfig(**TINY, mode="fastcut", n_epochs=1, n_epochs_decay=1)
    torch.manual_seed(0)
    CUT().fit(source, target, tmp_path / "out", cfg, device=CPU)
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert (saved["translator"], saved["config"]["mode"]) == ("cut", "fastcut")
    assert len(list((tmp_path / "out" / "dvclive").rglob("epoch_*.png"))) == 2
    translator = translators.get("cut")
    assert (translator.frames, translator.trains_distributed) == ("clone", True)
    translator.load(tmp_path / "out", CPU)
    for h, w in [(97, 320), (5, 7)]:
        images = torch.rand(2, 3, h, w)
        result = translator(images)
        assert result.shape == images.shape and 0 <= result.min() and result.max() <= 1
        assert not torch.equal(result, images)


@pytest.mark.parametrize(("options", "message"), [
    ({"mode": "slowcut"}, "mode: must be one of cut, fastcut, got 'slowcut'"),
    ({"num_patches": 0}, "num_patches: must be a whole number >= 1, got 0"),
    ({"lambda_nce": 0.0}, "lambda_nce: must be in (0, inf], got 0.0"),
    ({"nce_temperature": -1.0}, "nce_temperature: must be in (0, inf], got -1.0"),
    ({"flip_equivariance": 1}, "flip_equivariance: must be true, false or null, got 1"),
    ({"ngf": 0}, "ngf: must be a whole number >= 1, got 0"),
    ({"select": "worst"}, "select: must be best or last, got 'worst'"),
    ({"score_every": 0}, "select: best needs scores; with score_every 0 set select: last"),
    ({"score_every": -1}, "score_every: must be a whole number >= 0, got -1"),
    ({"score_frames": 1}, "score_frames: must be a whole number >= 2, got 1"),
])
def test_bad_values_are_one_line_naming_the_key(options: dict, message: str) -> None:
    with pytest.raises(ParamError) as err:
        CUTConfig(**options)
    assert str(err.value) == message


def test_bad_set_on_the_command_line_is_one_line(capsys) -> None:
    assert cli(["summary", "cut", "--set", "mode=fast"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --set mode: 'fast' is not allowed; choose one of cut, fastcut (translator cut)")
    assert cli(["summary", "cut", "--set", "lambda_cycle=10"]) == 2
    assert "--set lambda_cycle: unknown key" in capsys.readouterr().err
    assert cli(["summary", "cut", "--set", "ngf=8", "n_blocks=2"]) == 0
    assert "generator (G)" in capsys.readouterr().out
