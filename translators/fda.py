"""Fourier Domain Adaptation (Yang & Soatto, CVPR 2020): a training-free weather look.

Each source frame keeps its Fourier phase (which carries edges and geometry) and takes the
centred low-frequency amplitude (global colour, brightness, haze) of a real frame of the
target weather, resized to the source size. `fit` only picks and stores the reference frames
(with the helpers in translators/io.py that NST shares).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from common.config import build
from common.files import atomic_write_json
from translators.configs import FDAConfig
from translators.io import (
    CONFIG_FILE,
    load_image,
    model_files,
    pick_references,
    read_config,
    save_references,
)

# ---------------------------------------------------------------------------------- the method


def low_frequency_swap(source: torch.Tensor, target: torch.Tensor, beta: float) -> torch.Tensor:
    """FDA's amplitude swap. source, target: B×C×H×W (same size) -> B×C×H×W, not clamped.

    The swapped window is the centred (2b+1)×(2b+1) square of the shifted spectrum, with
    b = floor(min(H, W)·β), as in the paper's code; unlike that code, β = 0 swaps nothing
    (the paper's code would still swap the DC term), so β = 0 is the identity. The window is
    symmetric about DC, so working on the half spectrum of a real image (rfft2) is exact.
    """
    if source.shape != target.shape:
        raise ValueError(f"source {tuple(source.shape)} and target {tuple(target.shape)} differ")
    height, width = source.shape[-2:]
    spectrum = torch.fft.rfft2(source.double())
    if beta > 0:
        half = math.floor(min(height, width) * beta)
        centre_h, centre_w = height // 2, width // 2  # where fftshift puts the DC term
        window = torch.zeros(height, width, dtype=torch.bool, device=source.device)
        window[centre_h - half : centre_h + half + 1, centre_w - half : centre_w + half + 1] = True
        window = torch.fft.ifftshift(window)[:, : width // 2 + 1]  # the rfft2 layout
        amplitude = torch.where(window, torch.fft.rfft2(target.double()).abs(), spectrum.abs())
        spectrum = torch.polar(amplitude, spectrum.angle())
    return torch.fft.irfft2(spectrum, s=(height, width)).to(source.dtype)


class FourierDomainAdaptation:
    """FDA translator: reference frames chosen at fit, one drawn per image at translate time."""

    name = "fda"
    Config = FDAConfig
    frames = "clone"
    trains_distributed = False

    def __init__(self) -> None:
        self.cfg = FDAConfig()
        self.references: list[Path] = []
        self.device = torch.device("cpu")
        self._resized: dict[tuple[int, int, int], torch.Tensor] = {}

    def fit(self, source: list[Path], target: list[Path], out: Path, cfg: Any = None, *,
            weather: str | None = None, device: torch.device | None = None,
            checkpoint_dir: Path | None = None) -> None:
        cfg = cfg if cfg is not None else FDAConfig()
        names = save_references(pick_references(target, cfg.n_references), out)
        atomic_write_json(
            out / CONFIG_FILE, {"translator": self.name, "config": asdict(cfg), "references": names}
        )

    def load(self, out: Path, device: torch.device | str = "cpu") -> None:
        saved = read_config(out)
        self.cfg = build(FDAConfig, saved["config"], f"{out / CONFIG_FILE}: config")
        self.references = model_files(out, saved.get("references"), "references")
        self.device = torch.device(device)
        self._resized.clear()

    def _resized_reference(self, index: int, height: int, width: int) -> torch.Tensor:
        """Reference `index` resized to the source size; a few recent ones are kept."""
        key = (index, height, width)
        if key not in self._resized:
            if len(self._resized) >= 32:
                self._resized.pop(next(iter(self._resized)))  # drop the oldest
            image = load_image(self.references[index]).to(self.device)
            self._resized[key] = F.interpolate(
                image[None],
                size=(height, width),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )[0]
        return self._resized[key]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if not self.references:
            raise RuntimeError("FourierDomainAdaptation: call load(out, device) first")
        batch, _, height, width = images.shape
        choice = torch.randint(len(self.references), (batch,))  # seeded by the pipeline
        target = torch.stack([self._resized_reference(int(i), height, width) for i in choice])
        out = low_frequency_swap(images.to(self.device), target, self.cfg.beta)
        return out.clamp(0.0, 1.0).to(images.device, images.dtype)
