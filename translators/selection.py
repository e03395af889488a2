"""Training to the target: the GAN loop's scored epochs and which generator it publishes.

Every `score_every` epochs (and at the last) the sim -> real generator translates a fixed set of
sim frames at full size, as the translate stage would, and a `Scorer` rates them (lower is
closer to the target); the best epoch's generator weights are kept. All of it is part of the
checkpoint, so a resumed run publishes what an uninterrupted one would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from translators.base import Scorer
from translators.cyclegan.config import GANConfig
from translators.cyclegan.data import evenly_spaced
from translators.generator import GeneratorTranslator
from translators.io import read_rgb, translate_frames


@dataclass
class Selection:
    """Each scored epoch's value and the best epoch's generator weights (CPU copies)."""

    scores: dict[int, float] = field(default_factory=dict)  # epoch (from 1) -> score
    best_epoch: int = 0  # 0: nothing scored yet
    best_weights: dict[str, torch.Tensor] = field(default_factory=dict)

    @staticmethod
    def due(cfg: GANConfig, epoch: int, epochs: int) -> bool:
        """Whether epoch `epoch` (from 1) of `epochs` is scored."""
        return cfg.score_every > 0 and (epoch % cfg.score_every == 0 or epoch == epochs)

    def record(self, epoch: int, score: float, generator: nn.Module) -> None:
        """Epoch `epoch` scored `score`; keep its weights if it is the best so far (the earlier
        epoch wins a tie; a NaN score never wins over a number)."""
        self.scores[epoch] = score
        best = self.scores.get(self.best_epoch, math.nan)
        if not self.best_epoch or score < best or (math.isnan(best) and not math.isnan(score)):
            self.best_epoch = epoch
            self.best_weights = {k: v.detach().cpu().clone()
                                 for k, v in generator.state_dict().items()}

    def publish(self, select: str, generator: nn.Module) -> None:
        """Load the best epoch's weights into `generator` when `select` is best (and any epoch
        was scored): `model.save` then writes them."""
        if select == "best" and self.best_epoch:
            generator.load_state_dict(self.best_weights)

    def summary(self, select: str, name: str, epochs: int) -> dict[str, Any]:
        """train_summary.json's `selection`: what was published, and every scored epoch."""
        epoch = self.best_epoch if select == "best" and self.best_epoch else epochs
        return {"select": select, "score": name, "published_epoch": epoch,
                "published_score": self.scores.get(epoch),
                "scores": [{"epoch": e, name: v} for e, v in sorted(self.scores.items())]}

    def state_dict(self) -> dict[str, Any]:
        return {"scores": [[e, v] for e, v in sorted(self.scores.items())],
                "best_epoch": self.best_epoch, "best_weights": self.best_weights}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Selection:
        return cls({int(e): float(v) for e, v in state["scores"]}, state["best_epoch"],
                   state["best_weights"])


def score_generator(generator: nn.Module, cfg: GANConfig, device: torch.device,
                    frames: list[Path], scorer: Scorer) -> float:
    """`scorer` of `frames` translated by `generator` (in eval mode for the call) at full size,
    one frame at a time, into the uint8 frames the translate stage would write."""
    translator = GeneratorTranslator()
    was_training = generator.training
    translator.use(generator, cfg, device)
    try:
        translated = [translate_frames(translator, [read_rgb(path)], device)[0]
                      for path in frames]
    finally:
        generator.train(was_training)
    return float(scorer(translated))


def held_out(source: list[Path], cfg: GANConfig) -> list[Path]:
    """The fixed frames every scored epoch translates: `score_frames` evenly spaced sim frames."""
    return evenly_spaced(source, cfg.score_frames)
