"""The `cyclegan` translator: fit trains (resumably), load + __call__ run G_A at any size."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from translators.cyclegan.config import CycleGANConfig
from translators.cyclegan.model import WEIGHTS, CycleGANModel
from translators.cyclegan.networks import build_discriminator, build_generator
from translators.generator import GeneratorTranslator
from translators.training import train


class CycleGAN(GeneratorTranslator):
    name = "cyclegan"
    Config = CycleGANConfig
    weights = WEIGHTS  # G_A, the sim -> real generator
    build_generator = staticmethod(build_generator)

    def fit(self, source: list[Path], target: list[Path], out: Path,
            cfg: CycleGANConfig | None = None, *, weather: str | None = None,
            device: torch.device | str | None = None,
            checkpoint_dir: Path | None = None) -> None:
        """Train sim (source) -> real (target); resumes from `checkpoint_dir` if it holds a
        checkpoint of the same params and frames (default out/checkpoints)."""
        train(self.name, CycleGANModel, source, target, out, cfg or CycleGANConfig(),
              device=device, checkpoint_dir=checkpoint_dir)

    @staticmethod
    def networks(cfg: CycleGANConfig) -> dict[str, nn.Module]:
        """The nets for `python -m translators summary` (each is built twice in training)."""
        return {"generator (G_A, G_B)": build_generator(cfg),
                "discriminator (D_A, D_B)": build_discriminator(cfg)}
