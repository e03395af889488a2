"""The detector-centric domain gap: Fréchet distance and KID against closed forms and brute force,
deterministic YOLO SPPF features of real image files, and the `python -m evaluation gap` CLI."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from scipy.linalg import sqrtm

from common.config import ParamError
from evaluation.config import GapConfig
from evaluation.errors import EvalInputError
from evaluation.gap import (
    centre_crop,
    evenly_spaced,
    extract_features,
    frame_paths,
    frechet_distance,
    gap_warnings,
    gaussian,
    input_size,
    kernel_inception_distance,
    load_extractor,
    load_torchvision_extractor,
    mmd2_unbiased,
    seeded_checkpoint,
    share_closed,
)
from pipeline.params import load_params

REPO = Path(__file__).resolve().parents[1]


def random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


# --- Fréchet distance -------------------------------------------------------------------------

def test_frechet_equals_the_closed_form_of_commuting_gaussians():
    """Covariances with the same eigenvectors: FD = |Δmu|² + Σ (√λ1 − √λ2)²."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    l1, l2 = rng.uniform(0.1, 4.0, 6), rng.uniform(0.1, 4.0, 6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(l1) - np.sqrt(l2)) ** 2).sum()
    got = frechet_distance(mu1, q @ np.diag(l1) @ q.T, mu2, q @ np.diag(l2) @ q.T)
    assert got == pytest.approx(expected, rel=1e-6)


def test_frechet_equals_the_textbook_formula_for_general_gaussians():
    """Non-commuting covariances: against tr(S1 + S2 − 2 sqrtm(S1 S2)) with scipy's sqrtm."""
    rng = np.random.default_rng(1)
    s1, s2 = random_spd(rng, 5), random_spd(rng, 5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * sqrtm(s1 @ s2).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)
    # one-dimensional: (m1 − m2)² + (σ1 − σ2)²
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0, rel=1e-6)


def test_frechet_of_samples_is_near_zero_for_one_distribution_and_the_shift_for_another():
    rng = np.random.default_rng(2)
    cov = random_spd(rng, 4) / 4
    a = rng.multivariate_normal(np.zeros(4), cov, 20000)
    b = rng.multivariate_normal(np.zeros(4), cov, 20000)
    same = frechet_distance(*gaussian(a), *gaussian(b))
    assert 0.0 <= same < 2e-3
    shift = np.array([1.0, -2.0, 0.5, 0.0])
    shifted = frechet_distance(*gaussian(a), *gaussian(b + shift))
    assert shifted == pytest.approx((shift ** 2).sum(), rel=5e-3)  # 5.25, up to sampling noise
    # the identical sample: exactly zero up to rounding
    assert frechet_distance(*gaussian(a), *gaussian(a)) == pytest.approx(0.0, abs=1e-9)


def test_frechet_with_fewer_frames_than_dimensions_is_finite_and_zero_for_equal_sets():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(5, 64))  # singular covariance, as with a handful of demo frames
    assert np.isfinite(frechet_distance(*gaussian(a), *gaussian(a + 1.0)))
    assert frechet_distance(*gaussian(a), *gaussian(a + 1.0)) == pytest.approx(64.0, rel=1e-6)


def test_gaussian_needs_two_vectors():
    with pytest.raises(EvalInputError, match=r"need at least 2 feature vectors, got shape \(1, "):
        gaussian(np.ones((1, 3)))


# --- KID ----------------------------------------------------------------------------------------

def brute_force_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD² estimator term by term, with k(a, b) = (a·b / d + 1)³."""
    d = x.shape[1]

    def k(a, b):
        return (sum(float(p) * float(q) for p, q in zip(a, b, strict=True)) / d + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_equals_the_brute_force_unbiased_estimator():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(7, 3)), rng.normal(0.5, 1.2, size=(5, 3))
    expected = brute_force_mmd2(x, y)
    assert mmd2_unbiased(x, y) == pytest.approx(expected, rel=1e-9)
    kid, sd = kernel_inception_distance(x, y, subset=10)
    assert kid == pytest.approx(expected, rel=1e-9) and sd is None  # both sets fit one subset


def test_kid_subsets_are_means_of_brute_force_estimates_on_the_drawn_subsets():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(9, 2)), rng.normal(1.0, 1.0, size=(8, 2))
    kid, sd = kernel_inception_distance(x, y, subset=4, subsets=3, seed=7)
    draws = np.random.default_rng(7)
    values = [brute_force_mmd2(x[draws.choice(9, 4, replace=False)],
                               y[draws.choice(8, 4, replace=False)]) for _ in range(3)]
    assert kid == pytest.approx(np.mean(values), rel=1e-9)
    assert sd == pytest.approx(np.std(values, ddof=1), rel=1e-9)


def test_kid_is_unbiased_near_zero_for_one_distribution_and_positive_for_a_shift():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    same, _ = kernel_inception_distance(a, b, subset=400)
    shifted, _ = kernel_inception_distance(a, b + 1.0, subset=400)
    assert abs(same) < 0.05 < shifted


def test_kid_needs_two_frames_per_set():
    with pytest.raises(EvalInputError, match="KID needs at least 2 frames per set, got 1 and 3"):
        mmd2_unbiased(np.ones((1, 2)), np.ones((3, 2)))


def test_share_closed():
    assert share_closed(10.0, 4.0, 2.0) == pytest.approx(0.75)
    assert share_closed(10.0, 12.0, 2.0) == pytest.approx(-0.25)  # farther than untranslated
    assert share_closed(2.0, 1.0, 2.0) is None  # nothing to close


# --- features -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A yolov5n checkpoint with seeded He-normal weights (evaluation.gap.seeded_checkpoint)."""
    return seeded_checkpoint(tmp_path_factory.mktemp("gap") / "y5n.pt")


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> dict[str, Path]:
    """Two folders of real JPEG files at vKITTI2's size: bright textured frames, dark ones."""
    root = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(0)
    for name, scale in (("bright", 255), ("dark", 90)):
        (root / name).mkdir()
        for i in range(6):
            noise = rng.integers(0, scale, (375, 1242, 3), dtype=np.uint8)
            cv2.imwrite(str(root / name / f"{i:02d}.jpg"), cv2.GaussianBlur(noise, (9, 9), 3))
    return {"bright": root / "bright", "dark": root / "dark"}


def test_features_of_a_frame_are_identical_in_two_cpu_runs(checkpoint, frames):
    cfg = GapConfig(batch=4, device="cpu")
    paths = frame_paths(frames["bright"])
    first = extract_features(load_extractor(checkpoint, "cpu"), paths, cfg, progress=False)
    second = extract_features(load_extractor(checkpoint, "cpu"), paths, cfg, progress=False)
    assert first.values.shape == (6, 256) and first.skipped == []
    assert np.array_equal(first.values, second.values)
    # frames are told apart: two frames' features differ by more than 1% somewhere
    assert not np.allclose(first.values[0], first.values[1], rtol=1e-2, atol=0)


def test_the_seeded_checkpoint_is_the_same_bytes_wherever_it_is_written(checkpoint, tmp_path):
    """No save date, no file name inside the archive: DVC hashes one reference file."""
    again = seeded_checkpoint(tmp_path / "elsewhere" / "other-name.pt")
    assert again.read_bytes() == checkpoint.read_bytes()
    assert not list(again.parent.glob(".*"))  # written atomically: no temp file left


def test_extractor_is_the_sppf_layer(checkpoint):
    extractor = load_extractor(checkpoint, "cpu")
    assert extractor.name == "YOLO SPPF (layer 9, 256 channels, global mean pool)"
    assert extractor.meta["layer"] == 9 and len(extractor.checkpoint_sha256) == 64


def test_a_torchvision_backbone_from_a_local_state_dict(frames, tmp_path):
    import torch
    import torchvision

    torch.manual_seed(0)
    weights = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    extractor = load_torchvision_extractor("resnet18", weights, "cpu")
    assert extractor.name == "torchvision resnet18 (head removed, 512 features)"
    cfg = GapConfig(batch=3, device="cpu")
    paths = frame_paths(frames["bright"])
    first = extract_features(extractor, paths, cfg, progress=False).values
    assert first.shape == (6, 512)
    assert np.array_equal(first, extract_features(extractor, paths, cfg, progress=False).values)
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(EvalInputError, match=r"junk\.pth: not a resnet18 state dict \("):
        load_torchvision_extractor("resnet18", tmp_path / "junk.pth", "cpu")


def test_frames_are_resized_to_the_width_in_proportion_to_the_stride():
    assert input_size(1242, 375, 320) == (320, 96)
    assert input_size(1280, 720, 320) == (320, 192)
    assert input_size(100, 1, 320) == (320, 32)


def test_frames_are_centre_cropped_to_one_aspect_before_resizing():
    """A 16:9 BDD100K frame keeps the middle band of KITTI's aspect (sky and bonnet go); a frame
    wider than the aspect keeps its middle columns; 0 keeps the whole frame."""
    tall = np.arange(720 * 1280).reshape(720, 1280)
    band = centre_crop(tall, 0.302)
    assert band.shape == (387, 1280) and np.array_equal(band, tall[166:553])
    wide = np.arange(100 * 1000).reshape(100, 1000)
    assert np.array_equal(centre_crop(wide, 0.5), wide[:, 400:600])
    assert centre_crop(tall, 0.0) is tall
    kitti = np.zeros((375, 1242))
    assert centre_crop(kitti, 0.302).shape == (375, 1242)  # already that aspect: whole
    assert input_size(1280, 387, 320) == input_size(1242, 375, 320) == (320, 96)


def test_a_missing_checkpoint_names_the_path_and_the_param(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"put a YOLO checkpoint at .*absent\.pt or set "
                                                r"gap\.reference_model"):
        load_extractor(tmp_path / "absent.pt", "cpu", hint="set gap.reference_model")


def test_evenly_spaced_keeps_the_ends():
    paths = [Path(f"{i}.jpg") for i in range(10)]
    assert evenly_spaced(paths, 4) == [Path("0.jpg"), Path("3.jpg"), Path("6.jpg"), Path("9.jpg")]
    assert evenly_spaced(paths, 0) == paths


def test_bad_config_is_one_line(tmp_path):
    with pytest.raises(ParamError, match="^imgsz: must be a multiple of 32, got 100$"):
        GapConfig(imgsz=100)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["gap"]["kid_subset"] = 1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamError) as caught:  # load_params names the section
        load_params(tmp_path / "params.yaml")
    assert str(caught.value) == "gap.kid_subset: must be a whole number >= 2, got 1"


# --- the CLI ------------------------------------------------------------------------------------

def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "YOLO_CONFIG_DIR": str(REPO / ".yolo"), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "evaluation", "gap", *args], cwd=REPO,
                          env=env, capture_output=True, text=True)


def test_cli_scores_two_folders_and_counts_an_unreadable_frame(checkpoint, frames, tmp_path):
    (frames["dark"] / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "gap.json"
    try:
        proc = cli("--model", str(checkpoint), "--a", str(frames["bright"]), "--b",
                   str(frames["dark"]), "--out", str(out), "--device", "cpu", "--quiet")
    finally:
        (frames["dark"] / "broken.jpg").unlink()
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["a"]["n_frames"] == 6 and result["b"]["n_frames"] == 6
    assert result["b"]["n_skipped"] == 1 and result["b"]["skipped"][0].endswith("broken.jpg")
    assert "skipped 1 unreadable frame(s) of --b" in proc.stderr
    # the CLI's numbers are the library's on the same frames (to float32 rounding: this process
    # may run torch on another number of threads than the CLI's)
    cfg = GapConfig(device="cpu")
    extractor = load_extractor(checkpoint, "cpu")
    a = extract_features(extractor, frame_paths(frames["bright"]), cfg, progress=False).values
    b = extract_features(extractor, frame_paths(frames["dark"]), cfg, progress=False).values
    assert result["fd"] == pytest.approx(frechet_distance(*gaussian(a), *gaussian(b)), rel=1e-5)
    assert result["fd"] > 0 and result["kid"] > 0 and result["kid_sd"] is None


def test_cli_twice_writes_byte_identical_json(checkpoint, frames, tmp_path):
    outputs = []
    for run in ("first", "second"):
        out = tmp_path / f"{run}.json"
        proc = cli("--model", str(checkpoint), "--a", str(frames["bright"]), "--b",
                   str(frames["dark"]), "--out", str(out), "--device", "cpu", "--quiet")
        assert proc.returncode == 0, proc.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_cli_missing_model_is_one_line_and_exit_2(frames, tmp_path):
    proc = cli("--model", str(tmp_path / "none.pt"), "--a", str(frames["bright"]), "--b",
               str(frames["dark"]), "--out", str(tmp_path / "g.json"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"evaluation gap: error: put a YOLO checkpoint at " \
                                  f"{tmp_path / 'none.pt'}"


def test_cli_missing_folder_is_one_line_and_exit_2(checkpoint, tmp_path):
    proc = cli("--model", str(checkpoint), "--a", str(tmp_path / "nowhere"), "--b",
               str(tmp_path), "--out", str(tmp_path / "g.json"), "--device", "cpu", "--quiet")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"evaluation gap: error: {tmp_path / 'nowhere'}: not a directory of images or a manifest")


def test_cli_with_one_readable_frame_is_one_line_and_exit_2(checkpoint, frames, tmp_path):
    (tmp_path / "one").mkdir()
    shutil.copy(frames["dark"] / "00.jpg", tmp_path / "one" / "00.jpg")
    proc = cli("--model", str(checkpoint), "--a", str(frames["bright"]), "--b",
               str(tmp_path / "one"), "--out", str(tmp_path / "g.json"), "--device", "cpu",
               "--quiet")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"evaluation gap: error: --b {tmp_path / 'one'}: 1 readable frame(s); both scores need "
        "at least 2")


def test_cli_warns_of_an_untrained_model_and_too_few_frames_for_fd(frames, tmp_path):
    """The reporter's case: an architecture yaml on 2 + 2 frames gives FD 0 and KID 0; both
    reasons are said, the scores are still written."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(2):
            shutil.copy(frames["bright" if name == "a" else "dark"] / f"0{i}.jpg",
                        tmp_path / name / f"0{i}.jpg")
    out = tmp_path / "gap.json"
    proc = cli("--model", "yolov5n.yaml", "--a", str(tmp_path / "a"), "--b",
               str(tmp_path / "b"), "--out", str(out), "--device", "cpu", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stderr.splitlines() if "warning" in line] == [
        "evaluation gap: warning: yolov5n.yaml is an architecture yaml, not a trained "
        "checkpoint: its freshly initialised layers give features of ~1e-8 whatever the frame, "
        "so FD and KID come out ~0 and say nothing; give a trained detector, e.g. "
        "outputs/detector/model/best.pt",
        "evaluation gap: warning: FD needs more frames per set than the 256 feature dimensions, "
        "got --a 2, --b 2: the covariance is singular and FD not meaningful (KID is unbiased at "
        "any count, but noisy with few frames)"]
    result = json.loads(out.read_text())
    assert abs(result["fd"]) < 1e-12 and abs(result["kid"]) < 1e-12
    assert proc.stdout.startswith("FD 0.0000  KID 0  (2 vs 2 frames;")


def test_fd_frame_count_warning_starts_at_the_feature_dimensions(checkpoint):
    """More frames than the SPPF's 256 channels per set: no warning; 256 (a singular
    covariance): the warning names the set."""
    extractor = load_extractor(checkpoint, "cpu")
    assert extractor.channels == 256 and extractor.trained
    assert gap_warnings(extractor, {"target": 257, "translated": 500}) == []
    assert gap_warnings(extractor, {"target": 257, "translated": 256}) == [
        "FD needs more frames per set than the 256 feature dimensions, got translated 256: the "
        "covariance is singular and FD not meaningful (KID is unbiased at any count, but noisy "
        "with few frames)"]
