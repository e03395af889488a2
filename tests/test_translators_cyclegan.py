"""CycleGAN: exact reference sizes, losses, image pool, data plan, a tiny fit, kill -9 + resume."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import translators
from translators.__main__ import config_from_sets
from translators.__main__ import main as cli
from translators.cyclegan import CycleGAN, CycleGANConfig
from translators.cyclegan.data import epoch_plan, iterations_per_epoch, preprocess
from translators.cyclegan.model import CycleGANModel, GANLoss, ImagePool, linear_decay
from translators.cyclegan.networks import build_discriminator, build_generator, count_parameters

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
FRAME_1 = FIXTURES / "kitti" / "detection" / "training" / "image_2" / "000001.png"  # 1242×375
CPU = torch.device("cpu")
TINY = {"ngf": 8, "ndf": 8, "n_blocks": 1, "preprocess": "crop", "crop_size": 32,
        "num_workers": 0, "n_samples": 2}


# ------------------------------------------------------------------------------------ nets


def test_reference_nets_have_the_papers_exact_parameter_counts() -> None:
    cfg = CycleGANConfig()
    assert (cfg.ngf, cfg.n_blocks, cfg.ndf, cfg.n_layers_D, cfg.norm) == (64, 9, 64, 3, "instance")
    assert count_parameters(build_generator(cfg)) == 11_378_179
    assert count_parameters(build_discriminator(cfg)) == 2_764_737
    # n_layers with 3 layers is the basic PatchGAN; multi-scale = num_D of them
    assert count_parameters(build_discriminator(CycleGANConfig(netD="n_layers"))) == 2_764_737
    multiscale = CycleGANConfig(netD="multiscale", num_D=3)
    assert count_parameters(build_discriminator(multiscale)) == 3 * 2_764_737


def test_reference_hyperparameters() -> None:
    cfg = CycleGANConfig()
    assert (cfg.gan_mode, cfg.lambda_cycle, cfg.lambda_identity, cfg.pool_size) == (
        "lsgan", 10.0, 0.5, 50)
    assert (cfg.lr, cfg.beta1, cfg.n_epochs, cfg.n_epochs_decay, cfg.init_gain) == (
        0.0002, 0.5, 100, 100, 0.02)
    assert translators.config_class("cyclegan") is CycleGANConfig


def test_summary_cli_counts_params_and_macs(capsys) -> None:
    assert cli(["summary", "cyclegan"]) == 0
    rows = {line.rsplit(maxsplit=2)[0].strip(): line.split()[-2:]
            for line in capsys.readouterr().out.splitlines()[2:]}
    generator, discriminator = rows["generator (G_A, G_B)"], rows["discriminator (D_A, D_B)"]
    # MACs by hand at 256×256: c7s1-64, two downs, 18 res convs, two transposed ups, c7s1-3
    # (a transposed conv does Cin·Cout·k² MACs per *input* pixel)
    macs = (256**2 * 3 * 64 * 49 + 128**2 * 64 * 128 * 9 + 64**2 * 128 * 256 * 9
            + 18 * 64**2 * 256 * 256 * 9 + 64**2 * 256 * 128 * 9 + 128**2 * 128 * 64 * 9
            + 256**2 * 64 * 3 * 49)
    assert generator == ["11,378,179", f"{macs / 1e9:.3f}"]
    assert discriminator[0] == "2,764,737"


def test_unet_and_resnet_keep_any_frame_size(tmp_path: Path) -> None:
    for cfg in (CycleGANConfig(ngf=4, n_blocks=1), CycleGANConfig(netG="unet", ngf=4,
                                                                  unet_downs=6)):
        torch.manual_seed(0)
        out = tmp_path / cfg.netG
        out.mkdir()
        torch.save(build_generator(cfg).state_dict(), out / "G_A.pt")
        (out / "config.json").write_text(json.dumps({"config": cfg.to_dict()}))
        translator = CycleGAN()
        translator.load(out, CPU)
        assert translator.pad_multiple == (4 if cfg.netG == "resnet" else 64)
        for h, w in [(97, 320), (375, 1242), (5, 7)]:
            images = torch.rand(2, 3, h, w)
            result = translator(images)
            assert result.shape == images.shape
            assert 0 <= result.min() and result.max() <= 1


@pytest.mark.parametrize("options", [
    {"netG": "unet", "unet_downs": 5, "norm": "batch"},
    {"netD": "multiscale", "num_D": 2, "lambda_feature_matching": 10.0, "gan_mode": "vanilla"},
    {"netD": "n_layers", "n_layers_D": 2, "norm": "none", "lambda_identity": 0.0,
     "pool_size": 0},
])
def test_every_option_trains_a_step(options: dict) -> None:
    torch.manual_seed(0)
    cfg = CycleGANConfig(ngf=4, ndf=4, n_blocks=1, **options)
    model = CycleGANModel(cfg, CPU, seed=0)
    before = [p.detach().clone() for p in model.G_A.parameters()]
    losses = model.train_step(torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1)
    expected = {"G_A", "G_B", "cycle_A", "cycle_B", "D_A", "D_B"}
    expected |= {"idt_A", "idt_B"} if cfg.lambda_identity else set()
    expected |= {"fm"} if cfg.lambda_feature_matching else set()
    assert set(losses) == expected and all(np.isfinite(v) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.G_A.parameters(),
                                                     strict=True))


# ----------------------------------------------------------------------- losses and pool


def test_lsgan_and_vanilla_losses() -> None:
    ones, zeros, half = torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4), torch.full((2, 1, 4, 4),
                                                                                    0.5)
    lsgan = GANLoss("lsgan")
    assert lsgan([[ones]], True).item() == 0.0
    assert lsgan([[zeros]], True).item() == 1.0
    assert lsgan([[half]], False).item() == 0.25
    assert lsgan([[ones]], False).item() == 1.0
    # features before the last are ignored; scales are averaged
    assert lsgan([[zeros, ones], [ones, zeros]], True).item() == 0.5
    assert GANLoss("vanilla")([[zeros]], True).item() == pytest.approx(np.log(2))
    with pytest.raises(ValueError, match="gan_mode"):
        GANLoss("wgan")


def test_image_pool_fills_then_swaps_half_and_restores_exactly() -> None:
    assert ImagePool(0, seed=0).query(batch := torch.rand(3, 3, 2, 2)) is batch
    pool = ImagePool(4, seed=0)
    first = torch.arange(4.0).reshape(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: returned as given, all stored
    history = set(first.flatten().tolist())
    swapped = 0
    for step in range(50):
        new = torch.full((2, 1, 1, 1), 100.0 + step)
        returned = pool.query(new).flatten().tolist()
        stored = {image.item() for image in pool.images}
        for value, query in zip(returned, new.flatten().tolist(), strict=True):
            assert value == query or value in history  # the query or an older stored image
            swapped += value != query
        history |= set(new.flatten().tolist())
        assert len(pool.images) == 4 and stored <= history
    assert 30 < swapped < 70  # about half of 100 queries

    copy = ImagePool(4, seed=123)
    copy.load_state_dict(pool.state_dict(), CPU)
    probe = torch.rand(6, 1, 1, 1)
    assert torch.equal(copy.query(probe), pool.query(probe))


def test_lr_is_constant_then_decays_linearly() -> None:
    factor = linear_decay(n_epochs=100, n_epochs_decay=100)
    assert [factor(e) for e in (0, 50, 99)] == [1.0, 1.0, 1.0]
    assert factor(100) == pytest.approx(1 - 1 / 101)
    assert factor(199) == pytest.approx(1 / 101)


# ---------------------------------------------------------------------------------- data


def test_epoch_plan_is_seeded_covers_every_frame_and_shards_evenly() -> None:
    plan = epoch_plan(n_a=10, n_b=3, seed=7, epoch=2, batch_size=4)
    assert [len(batch) for batch in plan] == [4, 4, 2] == [4, 4, 2][: iterations_per_epoch(
        10, 3, 4)]
    samples = [s for batch in plan for s in batch]
    assert sorted(s.a_index for s in samples) == list(range(10))
    assert all(0 <= s.b_index < 3 for s in samples)
    assert plan == epoch_plan(10, 3, 7, 2, 4) and plan != epoch_plan(10, 3, 7, 3, 4)
    shards = [epoch_plan(10, 3, 7, 2, 2, rank=r, world_size=3) for r in range(3)]
    assert [sum(map(len, shard)) for shard in shards] == [4, 4, 4]
    covered = {s.a_index for shard in shards for batch in shard for s in batch}
    assert covered == set(range(10))


def test_preprocess_modes_on_a_real_wide_frame() -> None:
    frame = cv2.imread(str(FRAME_1))[:, :, ::-1]  # 375×1242
    rng = np.random.default_rng(0)
    ref = CycleGANConfig()
    assert preprocess(frame, ref, rng).shape == (256, 256, 3)  # resize_and_crop
    wide = CycleGANConfig(preprocess="scale_width_and_crop")
    # width 286 keeps 375/1242 -> 86 rows, raised to crop_size as the reference does
    assert preprocess(frame, wide, rng).shape == (256, 256, 3)
    native = CycleGANConfig(preprocess="crop", crop_size=64, flip=False)
    crop = preprocess(frame, native, rng)
    hits = cv2.matchTemplate(np.ascontiguousarray(frame), np.ascontiguousarray(crop),
                             cv2.TM_SQDIFF)
    y, x = np.unravel_index(hits.argmin(), hits.shape)
    assert np.array_equal(frame[y:y + 64, x:x + 64], crop)  # an exact window of the frame
    assert preprocess(frame, CycleGANConfig(preprocess="none"), rng).shape == (372, 1240, 3)
    with pytest.raises(ValueError, match="tiny.png.*crop_size 512"):
        preprocess(frame, CycleGANConfig(preprocess="crop", crop_size=512), rng, "tiny.png")


# ---------------------------------------------------------------------------------- fits


def write_frames(root: Path, n_sim: int = 8, n_real: int = 4) -> tuple[list[Path], list[Path]]:
    """Sim: saturated flat colours, sharp; real: grey, hazy, noisy (like fog)."""
    rng = np.random.default_rng(0)
    sim, real = root / "sim", root / "real"
    sim.mkdir(parents=True)
    real.mkdir(parents=True)
    for i in range(n_sim):
        image = np.zeros((40, 72, 3), np.uint8)
        image[:16], image[16:] = (230, 170, 80), (80, 80, 80)
        x = int(rng.integers(0, 50))
        image[20:32, x:x + 18] = rng.integers(0, 255, 3)
        cv2.imwrite(str(sim / f"{i:03d}.png"), image)
    for i in range(n_real):
        image = np.full((48, 64, 3), 165, np.float32) + rng.normal(0, 6, (48, 64, 3))
        image[28:] -= 30
        cv2.imwrite(str(real / f"{i:03d}.jpg"), cv2.GaussianBlur(image, (5, 5), 2).clip(0, 255))
    return sorted(sim.iterdir()), sorted(real.iterdir())


def test_tiny_fit_reduces_cycle_loss_and_writes_a_loadable_model(tmp_path: Path) -> None:
    source, target = write_frames(tmp_path)
    cfg = CycleGANConfig(**TINY, batch_size=2, n_epochs=5, n_epochs_decay=3, lr=0.002)
    torch.manual_seed(0)
    CycleGAN().fit(source, target, tmp_path / "out", cfg, device=CPU)
    out = tmp_path / "out"
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["iterations"] == 8 * 4 and "resumed_from" not in summary
    assert not (out / "checkpoints").exists()  # keep_checkpoints is off
    rows = read_metric(out, "loss_cycle_A")
    assert [int(r["step"]) for r in rows] == list(range(8))
    first, last = float(rows[0]["loss_cycle_A"]), float(rows[-1]["loss_cycle_A"])
    assert last < 0.6 * first, (first, last)
    assert len(list((out / "dvclive" / "plots" / "images" / "samples").glob("*.png"))) == 8
    # seeded: a second run writes byte-identical files
    torch.manual_seed(0)
    CycleGAN().fit(source, target, tmp_path / "again", cfg, device=CPU)
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert len(files) > 10
    assert all((out / f).read_bytes() == (tmp_path / "again" / f).read_bytes() for f in files)
    translator = CycleGAN()
    translator.load(out, CPU)
    frame = torch.from_numpy(cv2.imread(str(FRAME_1))[:, :, ::-1].copy()).permute(2, 0, 1)
    result = translator(frame[None].float() / 255)
    assert result.shape == (1, 3, 375, 1242)


def test_changed_params_ignore_an_old_checkpoint(tmp_path: Path, capsys) -> None:
    source, target = write_frames(tmp_path, n_sim=4, n_real=2)
    cfg = CycleGANConfig(**TINY, n_epochs=1, n_epochs_decay=0, keep_checkpoints=True)
    CycleGAN().fit(source, target, tmp_path / "out", cfg, device=CPU)
    checkpoint = torch.load(tmp_path / "out" / "checkpoints" / "last.pt", weights_only=True)
    assert (checkpoint["epoch"], checkpoint["iteration"]) == (1, 0)
    CycleGAN().fit(source, target, tmp_path / "out", CycleGANConfig(**{**cfg.to_dict(),
                                                                      "lr": 0.001}), device=CPU)
    printed = capsys.readouterr().out
    assert "ignoring checkpoint" in printed and "resuming from" not in printed


class ScriptedScorer:
    """A scorer returning scripted values in call order; keeps the frames it was given."""

    name = "kid"
    description = "scripted"

    def __init__(self, values: list[float]) -> None:
        self.values, self.frames = list(values), []

    def __call__(self, frames: list[np.ndarray]) -> float:
        self.frames.append(frames)
        return self.values[len(self.frames) - 1]


def test_select_best_publishes_the_best_scored_epoch_and_logs_every_score(tmp_path: Path
                                                                          ) -> None:
    source, target = write_frames(tmp_path, n_sim=4, n_real=2)
    # a constant lr (no decay): the first 2 epochs of a 4-epoch run are a 2-epoch run
    cfg = CycleGANConfig(**TINY, n_epochs=4, n_epochs_decay=0, score_every=1, score_frames=3,
                         sample_every=0)

    def fit(out: str, cfg: CycleGANConfig, scorer: ScriptedScorer | None) -> Path:
        torch.manual_seed(0)
        CycleGAN().fit(source, target, tmp_path / out, cfg, device=CPU, scorer=scorer)
        return tmp_path / out

    best = ScriptedScorer([0.5, 0.2, 0.4, 0.3])
    out = fit("best", cfg, best)
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["selection"] == {
        "select": "best", "score": "kid", "published_epoch": 2, "published_score": 0.2,
        "scores": [{"epoch": e, "kid": v} for e, v in enumerate(best.values, 1)]}
    # what was scored: 3 of the 4 sim frames, translated at full size as translate writes them
    assert [len(frames) for frames in best.frames] == [3] * 4
    assert {(f.shape, f.dtype.name) for frames in best.frames for f in frames} == {
        ((40, 72, 3), "uint8")}
    # the published generator is epoch 2's: the bytes a 2-epoch run ends with
    two_epochs = fit("two", CycleGANConfig(**{**cfg.to_dict(), "n_epochs": 2, "score_every": 0,
                                              "select": "last"}), None)
    assert (out / "G_A.pt").read_bytes() == (two_epochs / "G_A.pt").read_bytes()
    # DVCLive: a score/kid curve beside the losses, one row per scored epoch
    rows = read_metric(out, "kid", "score")
    assert [(int(r["step"]), float(r["kid"])) for r in rows] == list(enumerate(best.values))
    metrics = json.loads((out / "dvclive" / "metrics.json").read_text())
    assert metrics["score"]["kid"] == 0.3 and "loss_G_A" in metrics["train"]

    # select: last publishes the final epoch, and scoring left training alone: the same bytes
    # as a run that never scored
    last = fit("last", CycleGANConfig(**{**cfg.to_dict(), "select": "last"}),
               ScriptedScorer([0.5, 0.2, 0.4, 0.3]))
    unscored = fit("unscored", CycleGANConfig(**{**cfg.to_dict(), "score_every": 0,
                                                 "select": "last"}), None)
    selection = json.loads((last / "train_summary.json").read_text())["selection"]
    assert (selection["published_epoch"], selection["published_score"]) == (4, 0.3)
    assert (last / "G_A.pt").read_bytes() == (unscored / "G_A.pt").read_bytes()
    assert (last / "G_A.pt").read_bytes() != (out / "G_A.pt").read_bytes()


def test_bad_set_key_is_one_clear_line(tmp_path: Path, capsys) -> None:
    code = cli(["train", "--translator", "cyclegan", "--source", str(tmp_path),
                "--target", str(tmp_path), "--out", str(tmp_path / "o"), "--set", "ngff=8"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "--set ngff: unknown key" in err and "ngf, n_blocks" in err
    assert cli(["summary", "cyclegan", "--set", "ngf=eight"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --set ngf: expected a whole number, got 'eight' (translator cyclegan)")
    assert cli(["summary", "cyclegan", "--set", "netG=vgg"]) == 2
    assert "choose one of resnet, unet" in capsys.readouterr().err
    assert cli(["summary", "cyclegan", "--set", "n_blocks=0"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --set n_blocks: must be a whole number >= 1, got 0 (translator cyclegan)")


def test_repeated_set_flags_accumulate_and_read_values_as_params_yaml_does(capsys) -> None:
    """`--set a=1 --set b=2` keeps both, as `dvc exp run -S a=1 -S b=2` does (argparse's plain
    nargs="+" kept only the last flag: a 'tiny' model silently became the 11.4M reference)."""
    cfg = config_from_sets("cyclegan", ["ngf=8", "n_blocks=2", "n_epochs=1", "lr=1e-4"])
    assert (cfg.ngf, cfg.n_blocks, cfg.n_epochs, cfg.lr) == (8, 2, 1, 1e-4)
    assert cli(["summary", "cyclegan", "--set", "ngf=8", "--set", "n_blocks=2",
                "--set", "ndf=8", "n_layers_D=2"]) == 0
    table = capsys.readouterr().out
    tiny = CycleGANConfig(ngf=8, n_blocks=2, ndf=8, n_layers_D=2)
    assert f"{count_parameters(build_generator(tiny)):,}" in table
    assert f"{count_parameters(build_discriminator(tiny)):,}" in table
    weatherfx = config_from_sets("weatherfx", ["fog.alpha_coef=0.2",
                                               "fog.grade.contrast=[0.5, 0.7]"])
    assert (weatherfx.fog.alpha_coef, weatherfx.fog.grade.contrast) == (0.2, [0.5, 0.7])
    assert weatherfx.fog.grade.brightness == [1.15, 1.35]  # the fog grade's own default stays


@pytest.mark.slow
def test_kill_9_then_resume_finishes_with_the_uninterrupted_weights(tmp_path: Path) -> None:
    source, target = write_frames(tmp_path, n_sim=6, n_real=3)
    sets = [f"{k}={v}" for k, v in TINY.items()] + [
        "batch_size=1", "n_epochs=2", "n_epochs_decay=2", "pool_size=3", "checkpoint_every=2",
        "keep_checkpoints=true", "sample_every=3"]
    total = 4 * 6  # 4 epochs (2 at the full rate, 2 decaying) of 6 frames; a checkpoint every 2

    def train(out: Path) -> subprocess.Popen:
        command = [sys.executable, "-m", "translators", "train", "--translator", "cyclegan",
                   "--source", str(source[0].parent), "--target", str(target[0].parent),
                   "--out", str(out), "--device", "cpu", "--seed", "3", "--set", *sets]
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    reference = train(tmp_path / "reference")
    assert reference.wait(timeout=300) == 0, reference.stdout.read()

    killed = train(tmp_path / "resumed")
    checkpoint = tmp_path / "resumed" / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "resumed" / "G_A.pt").exists()  # really interrupted
    state = torch.load(checkpoint, weights_only=True)
    position = state["epoch"] * 6 + state["iteration"]
    assert 2 <= position < total

    resumed = train(tmp_path / "resumed")
    log = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, log
    assert f"resuming from iteration {position} of {total}" in log
    summary = json.loads((tmp_path / "resumed" / "train_summary.json").read_text())
    assert summary["iterations"] == total
    # the resumed run's outputs are the uninterrupted run's bytes (DVC sees no change)
    for name in ("G_A.pt", "config.json", "train_summary.json"):
        assert ((tmp_path / "resumed" / name).read_bytes()
                == (tmp_path / "reference" / name).read_bytes()), name
    expected = torch.load(tmp_path / "reference" / "G_A.pt", weights_only=True)
    actual = torch.load(tmp_path / "resumed" / "G_A.pt", weights_only=True)
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[k], actual[k]) for k in expected)
    # the curves were rebuilt from the checkpoint: one row per epoch, none twice
    rows = read_metric(tmp_path / "resumed", "loss_G_A")
    assert [int(r["step"]) for r in rows] == list(range(4))
    assert rows == read_metric(tmp_path / "reference", "loss_G_A")


def read_metric(out: Path, name: str, group: str = "train") -> list[dict[str, str]]:
    path = out / "dvclive" / "plots" / "metrics" / group / f"{name}.tsv"
    with path.open() as file:
        return list(csv.DictReader(file, delimiter="\t"))


def test_translate_speed_bench_runs_on_cpu(capsys):
    """The GPU benchmark's smoke mode: both training loops, translation with names and sizes
    kept (the script asserts them), and the summary line the closing notes quote."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "bench" / "translate_speed.py"
    spec = importlib.util.spec_from_file_location("translate_speed", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--device", "cpu", "--quick"]) == 0
    out = capsys.readouterr().out
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("translate_speed: train_speedup=")
    fields = dict(part.split("=", 1) for part in summary.split()[1:3])
    assert float(fields["train_speedup"]) > 0 and float(fields["translate_fps"]) > 0
    assert "training FLOPs per image" in out
