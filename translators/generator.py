"""What the GAN translators (cyclegan, cut) ship and translate with: one sim -> real generator.

A fitted translator's `out` holds the generator's weights and config.json (the translator's
params under "config"), so `load` rebuilds the net without params.yaml. Inference runs as
training did on CUDA (bf16 autocast, channels_last) and at any frame size.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common.config import build
from common.errors import MissingInputError, UserError
from common.files import atomic_torch_save, atomic_write_json
from translators.base import Scorer
from translators.io import pad_to_multiple


def save_generator(generator: nn.Module, cfg: Any, out: Path, translator: str, weights: str,
                   info: dict[str, str]) -> None:
    """out/`weights` (the generator's state dict on the CPU) and out/config.json: `info` (what
    the generator is) and the params."""
    state = {k: v.detach().cpu().clone() for k, v in generator.state_dict().items()}
    atomic_torch_save(state, out / weights)
    atomic_write_json(out / "config.json", {"translator": translator, **info,
                                            "config": cfg.to_dict()})


def cuda_speedups(cfg: Any, device: torch.device) -> tuple[torch.memory_format, bool]:
    """(memory format of nets and batches, whether to autocast to bf16): the CUDA-only params."""
    on_cuda = device.type == "cuda"
    memory_format = (torch.channels_last if on_cuda and cfg.channels_last
                     else torch.contiguous_format)
    return memory_format, on_cuda and cfg.amp


def bf16_autocast(enabled: bool) -> contextlib.AbstractContextManager:
    if enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


class GeneratorTranslator:
    """fit, load and __call__ of a GAN translator that ships one generator; a subclass names
    the translator, its Config, its model (trained by translators/training.py), its weights
    file and how to build the generator from a Config."""

    name: str
    Config: type
    model_class: type
    weights: str
    frames = "clone"
    trains_distributed = True  # torchrun DDP: translators/training.py

    def __init__(self) -> None:
        self.generator: nn.Module | None = None
        self.device = torch.device("cpu")
        self.pad_multiple = 4
        self.bf16 = False
        self.memory_format = torch.contiguous_format

    @staticmethod
    def build_generator(cfg: Any) -> nn.Module:
        raise NotImplementedError

    def fit(self, source: list[Path], target: list[Path], out: Path, cfg: Any = None, *,
            weather: str | None = None, device: torch.device | str | None = None,
            checkpoint_dir: Path | None = None, scorer: Scorer | None = None) -> None:
        """Train sim (source) -> real (target); resumes from `checkpoint_dir` if it holds a
        checkpoint of the same params and frames (default out/checkpoints). `scorer` rates the
        generator every `score_every` epochs; without one the last epoch is published."""
        # here, not at the top: the loop imports the cyclegan package, which imports this module
        from translators.training import train

        train(self.name, self.model_class, source, target, out, cfg or self.Config(),
              device=device, checkpoint_dir=checkpoint_dir, scorer=scorer)

    def load(self, out: Path, device: torch.device) -> None:
        """Build the generator from out/config.json and load its weights (no params needed)."""
        config_path, weights_path = out / "config.json", out / self.weights
        for path in (config_path, weights_path):
            if not path.is_file():
                raise MissingInputError(f"{path} not found: train the {self.name} translator "
                                        "first")
        try:
            saved = json.loads(config_path.read_text(encoding="utf-8"))["config"]
        except (KeyError, TypeError, ValueError, RecursionError) as err:
            raise UserError(f"{config_path} is not a {self.name} config.json: {err}") from None
        cfg = build(self.Config, saved, f"{config_path}: config")
        generator = self.build_generator(cfg)
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        generator.load_state_dict(state)
        self.use(generator, cfg, device)

    def use(self, generator: nn.Module, cfg: Any, device: torch.device | str) -> None:
        """Translate with `generator` (built from `cfg`), put in eval mode on `device`: the
        loaded one, or the one in training when the loop scores it."""
        self.device = torch.device(device)
        # on CUDA, inference runs as training did: bf16 autocast, channels_last (the params)
        self.memory_format, self.bf16 = cuda_speedups(cfg, self.device)
        self.generator = generator.to(self.device, memory_format=self.memory_format).eval()
        self.pad_multiple = generator.pad_multiple

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """B×3×H×W in [0, 1] of any size -> same size: reflect-padded for the net, cropped back."""
        if self.generator is None:
            raise RuntimeError(f"{self.name}: call load() before translating")
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected B×3×H×W images, got shape {tuple(images.shape)}")
        h, w = images.shape[-2:]
        x = pad_to_multiple(images.to(self.device, torch.float32), self.pad_multiple)
        x = x.contiguous(memory_format=self.memory_format)
        with torch.inference_mode(), bf16_autocast(self.bf16):
            y = self.generator(x * 2 - 1).float()
        return y[..., :h, :w].add(1).div(2).clamp(0, 1).to(images.device)
