"""The `ideal` arm: a perfect appearance translator, for the sample world only.

Its frames for weather W are the sample world's renders of each vKITTI2 clone frame in W's real
(BDD100K-style) look: the same scene, tracks and camera, so the same boxes, painted by the same
photographic painter and physical weather as the real frames (data/sample, `ideal/`). No learned
translator can do better on appearance, so Δ mAP50(ideal − none) is the headroom that
translation can win on this world, and `gap` on its frames calibrates the gap score. On the real
datasets no such frames exist: params load refuses `translator: ideal` with `data.source: real`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from common.files import atomic_write_json


@dataclass
class IdealTranslatorConfig:
    """No params: the renders are part of the sample world (its own seed decides them)."""


class IdealTranslator:
    name = "ideal"
    Config = IdealTranslatorConfig
    frames = "ideal"  # the translate stage copies the world's renders; nothing is learned
    trains_distributed = False

    def fit(self, source: list[Path], target: list[Path], out: Path,
            cfg: IdealTranslatorConfig | None = None, *, weather: str | None = None,
            device: torch.device | None = None, checkpoint_dir: Path | None = None) -> None:
        """Nothing to learn; record what was (not) done so the stage has an output."""
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "config.json", {
            "translator": self.name,
            "config": {},
            "note": "the sample world's real-look renders of the clone frames (same geometry)",
            "source_frames": len(source),
            "target_frames": len(target),
        })

    def load(self, out: Path, device: torch.device) -> None:
        """Nothing to load."""

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("ideal: its frames are the sample world's renders, not a function of "
                           "the clone frames (the translate stage copies them)")
