"""The baseline `none`: no learned translation.

Its frames for weather W are vKITTI2's own rendered W variation (fog/rain/overcast), which the
pipeline picks because its `frames` is "rendered"; applied to images it is the identity.
"""

from __future__ import annotations

from pathlib import Path

import torch

from common.files import atomic_write_json
from translators.configs import NoTranslatorConfig


class NoTranslator:
    name = "none"
    Config = NoTranslatorConfig
    frames = "rendered"
    note = "identity; the baseline uses vKITTI2's rendered weather variations"
    trains_distributed = False

    def fit(self, source: list[Path], target: list[Path], out: Path,
            cfg: NoTranslatorConfig | None = None, *, weather: str | None = None,
            device: torch.device | None = None, checkpoint_dir: Path | None = None) -> None:
        """Nothing to learn; record what was (not) done so the stage has an output."""
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "config.json", {
            "translator": self.name,
            "config": {},
            "note": self.note,
            "source_frames": len(source),
            "target_frames": len(target),
        })

    def load(self, out: Path, device: torch.device) -> None:
        """Nothing to load: the identity needs no weights."""

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected B×3×H×W images, got shape {tuple(images.shape)}")
        return images
