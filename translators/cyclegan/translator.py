"""The `cyclegan` translator: fit trains (resumably), load + __call__ run G_A at any size."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from common.config import build
from common.errors import MissingInputError, UserError
from translators.cyclegan.config import CycleGANConfig
from translators.cyclegan.networks import build_discriminator, build_generator
from translators.cyclegan.train import train
from translators.io import pad_to_multiple


class CycleGAN:
    name = "cyclegan"
    Config = CycleGANConfig
    frames = "clone"
    trains_distributed = True  # torchrun DDP: translators/cyclegan/train.py

    def __init__(self) -> None:
        self.generator: nn.Module | None = None
        self.device = torch.device("cpu")
        self.pad_multiple = 4
        self.bf16 = False
        self.memory_format = torch.contiguous_format

    def fit(self, source: list[Path], target: list[Path], out: Path,
            cfg: CycleGANConfig | None = None, *, weather: str | None = None,
            device: torch.device | str | None = None,
            checkpoint_dir: Path | None = None) -> None:
        """Train sim (source) -> real (target); resumes from `checkpoint_dir` if it holds a
        checkpoint of the same params and frames (default out/checkpoints)."""
        train(source, target, out, cfg or CycleGANConfig(), device=device,
              checkpoint_dir=checkpoint_dir)

    def load(self, out: Path, device: torch.device) -> None:
        """Build G_A from out/config.json and load out/G_A.pt (no params needed)."""
        config_path, weights_path = out / "config.json", out / "G_A.pt"
        for path in (config_path, weights_path):
            if not path.is_file():
                raise MissingInputError(f"{path} not found: train the cyclegan translator first")
        try:
            saved = json.loads(config_path.read_text(encoding="utf-8"))["config"]
        except (KeyError, TypeError, ValueError, RecursionError) as err:
            raise UserError(f"{config_path} is not a cyclegan config.json: {err}") from None
        cfg = build(CycleGANConfig, saved, f"{config_path}: config")
        generator = build_generator(cfg)
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        generator.load_state_dict(state)
        self.device = torch.device(device)
        # on CUDA, inference runs as training did: bf16 autocast, channels_last (the params)
        on_cuda = self.device.type == "cuda"
        self.bf16 = on_cuda and cfg.amp
        self.memory_format = (torch.channels_last if on_cuda and cfg.channels_last
                              else torch.contiguous_format)
        self.generator = generator.to(self.device, memory_format=self.memory_format).eval()
        self.pad_multiple = generator.pad_multiple

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """B×3×H×W in [0, 1] of any size -> same size: reflect-padded for the net, cropped back."""
        if self.generator is None:
            raise RuntimeError("cyclegan: call load() before translating")
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected B×3×H×W images, got shape {tuple(images.shape)}")
        h, w = images.shape[-2:]
        x = pad_to_multiple(images.to(self.device, torch.float32), self.pad_multiple)
        x = x.contiguous(memory_format=self.memory_format)
        with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16, enabled=self.bf16):
            y = self.generator(x * 2 - 1).float()
        return y[..., :h, :w].add(1).div(2).clamp(0, 1).to(images.device)

    @staticmethod
    def networks(cfg: CycleGANConfig) -> dict[str, nn.Module]:
        """The nets for `python -m translators summary` (each is built twice in training)."""
        return {"generator (G_A, G_B)": build_generator(cfg),
                "discriminator (D_A, D_B)": build_discriminator(cfg)}
