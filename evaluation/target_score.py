"""How close a translator's frames come to its target weather, for picking its best checkpoint
while it trains (translator_train hands it to translators/training.py; translators cannot import
evaluation, so the loop sees only the `translators.base.Scorer` protocol).

The score is KID between the translated frames and the target's real frames in the features of
ONE fixed reference extractor: a yolov5n with seeded weights (`seeded_checkpoint`), built the same
in every process and every run, so scores of different epochs, runs and ranks compare; the gap
stage's default reference is the same network. A trained detector cannot serve: none exists
before the detector trains. With gap.crop_aspect's matched framing this extractor ranks the sample
world's ideal frames above vKITTI2's rendered weather in every weather
(tests/test_gap_calibration.py).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from detection.env import configure_ultralytics
from evaluation.config import GapConfig
from evaluation.errors import EvalInputError
from evaluation.gap import (
    REFERENCE_ARCH,
    REFERENCE_SEED,
    Extractor,
    evenly_spaced,
    extract_features,
    frame_features,
    kernel_inception_distance,
    load_extractor,
    seeded_checkpoint,
)


class TargetKID:
    """KID (lower is closer) of translated RGB frames against `target`'s frames (at most
    gap.max_frames, evenly spaced), prepared and scored as the gap stage does (`cfg`). The
    extractor and the target's features are made on the first call, so ranks that never score
    never load them."""

    name = "kid"

    def __init__(self, target: list[Path], cfg: GapConfig, device: str | torch.device) -> None:
        self.target = evenly_spaced([Path(p) for p in target], cfg.max_frames)
        if len(self.target) < 2:  # said before training starts, not at its first scored epoch
            raise EvalInputError(f"the target score (KID) needs at least 2 target frames, got "
                                 f"{len(self.target)}; set the translator's score_every: 0 and "
                                 "select: last to train without it")
        self.cfg, self.device = cfg, device
        # what the score depends on: a checkpoint made with another one is not resumed
        frames = hashlib.sha256("\n".join(map(str, self.target)).encode()).hexdigest()
        self.description = json.dumps({
            "score": self.name, "extractor": f"{REFERENCE_ARCH} seed {REFERENCE_SEED}",
            "imgsz": cfg.imgsz, "crop_aspect": cfg.crop_aspect, "batch": cfg.batch,
            "kid_subset": cfg.kid_subset, "kid_subsets": cfg.kid_subsets,
            "target_frames": len(self.target), "target_sha256": frames}, sort_keys=True)
        self._extractor: Extractor | None = None
        self._target_features: np.ndarray | None = None
        # import ultralytics now, before a DDP job initialises torch.distributed: imported
        # later, on rank 0 alone, it creates its settings under a dist.barrier() that the other
        # ranks never reach (a deadlock)
        configure_ultralytics()
        import ultralytics  # noqa: F401

    def __call__(self, frames: list[np.ndarray]) -> float:
        if self._extractor is None:
            self._extractor, self._target_features = self._reference()
        ours = frame_features(self._extractor, frames, self.cfg)
        return kernel_inception_distance(ours, self._target_features, self.cfg.kid_subset,
                                         self.cfg.kid_subsets)[0]

    def _reference(self) -> tuple[Extractor, np.ndarray]:
        # seeded_checkpoint reseeds torch's global RNG: keep the caller's stream untouched
        with tempfile.TemporaryDirectory() as tmp, torch.random.fork_rng(devices=[]):
            extractor = load_extractor(seeded_checkpoint(Path(tmp) / "reference.pt",
                                                         REFERENCE_ARCH, REFERENCE_SEED),
                                       self.device)
        features = extract_features(extractor, self.target, self.cfg, "target", progress=False)
        if len(features.paths) < 2:
            raise EvalInputError(f"the target score needs at least 2 readable target frames, got "
                                 f"{len(features.paths)} of {len(self.target)}")
        return extractor, features.values
