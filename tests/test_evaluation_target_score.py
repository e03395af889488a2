"""The score a GAN translator picks its best epoch by (evaluation/target_score.py): one fixed
seeded extractor, the same features in every process; decoded frames scored as their files
would be; closer frames score lower; the caller's RNG untouched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from evaluation.config import GapConfig
from evaluation.errors import EvalInputError
from evaluation.gap import extract_features, frame_features, load_extractor, seeded_checkpoint
from evaluation.target_score import REFERENCE_ARCH, REFERENCE_SEED, TargetKID

REPO = Path(__file__).resolve().parents[1]
CFG = GapConfig(batch=2, device="cpu")
# one process: build the reference extractor in its own temp dir, features of the frames given
FEATURES = """
import sys, tempfile
from pathlib import Path
import numpy as np
from evaluation.config import GapConfig
from evaluation.errors import EvalInputError
from evaluation.gap import extract_features, load_extractor, seeded_checkpoint
with tempfile.TemporaryDirectory() as tmp:
    extractor = load_extractor(seeded_checkpoint(Path(tmp) / "r.pt", sys.argv[2], 0), "cpu")
paths = [Path(p) for p in sys.argv[3:]]
np.save(sys.argv[1], extract_features(extractor, paths, GapConfig(batch=2, device="cpu"),
                                      progress=False).values)
"""


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> dict[str, list[Path]]:
    """PNG frames of vKITTI2's shape: 3 bright textured ones, 3 dark ones."""
    root = tmp_path_factory.mktemp("target")
    rng = np.random.default_rng(1)
    out: dict[str, list[Path]] = {}
    for name, scale in (("bright", 255), ("dark", 70)):
        out[name] = []
        for i in range(3):
            noise = rng.integers(0, scale, (375, 1242, 3), dtype=np.uint8)
            path = root / f"{name}_{i}.png"
            cv2.imwrite(str(path), cv2.GaussianBlur(noise, (9, 9), 3))
            out[name].append(path)
    return out


def rgb(path: Path) -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(path))[:, :, ::-1])


def test_the_reference_extractor_gives_identical_features_in_two_processes(frames, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    outputs = [tmp_path / f"features_{i}.npy" for i in range(2)]
    for output in outputs:
        run = subprocess.run([sys.executable, "-c", FEATURES, str(output), REFERENCE_ARCH,
                              *map(str, frames["bright"])], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
    first, second = (np.load(output) for output in outputs)
    assert first.shape == (3, 256) and np.array_equal(first, second)
    assert not np.allclose(first[0], first[1], rtol=1e-2, atol=0)  # frames are told apart


def test_decoded_frames_are_featured_as_their_files_and_closer_frames_score_lower(frames,
                                                                                  tmp_path):
    extractor = load_extractor(seeded_checkpoint(tmp_path / "r.pt", REFERENCE_ARCH,
                                                 REFERENCE_SEED), "cpu")
    files = extract_features(extractor, frames["bright"], CFG, progress=False).values
    decoded = frame_features(extractor, [rgb(p) for p in frames["bright"]], CFG)
    assert np.array_equal(files, decoded)

    score = TargetKID(frames["bright"], CFG, "cpu")
    torch.manual_seed(5)
    expected_draw = torch.rand(3)
    torch.manual_seed(5)
    bright = score([rgb(p) for p in frames["bright"][::-1]])  # builds its extractor first
    assert torch.equal(torch.rand(3), expected_draw)  # the caller's RNG stream is untouched
    dark = score([rgb(p) for p in frames["dark"]])
    # the target's own frames: the unbiased estimate is near 0, far below the dark frames'
    assert dark > 0 and abs(bright) < dark / 10


def test_the_description_names_what_the_score_depends_on(frames):
    base = TargetKID(frames["bright"], CFG, "cpu").description
    assert "yolov5n.yaml seed 0" in base and '"target_frames": 3' in base
    assert TargetKID(frames["bright"], GapConfig(crop_aspect=0.5), "cpu").description != base
    assert TargetKID(frames["dark"], CFG, "cpu").description != base
    assert TargetKID(frames["bright"], GapConfig(max_frames=2), "cpu").target == [
        frames["bright"][0], frames["bright"][2]]
    with pytest.raises(EvalInputError, match=r"needs at least 2 target frames, got 1; set the "
                                             r"translator's score_every: 0"):
        TargetKID(frames["bright"][:1], CFG, "cpu")
