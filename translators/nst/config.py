"""NST params (`translators.nst` in params.yaml) and the VGG19 layers they may name: without
torch, because every stage checks every translator's section when it loads params.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from common.config import ParamError, check_int, check_range

# torchvision's VGG19 ("E"): conv output channels per block; max-pool after each block.
VGG19_BLOCKS: list[list[int]] = [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4]
DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.01}  # adam: pixel units, [0, 1] images


def layer_names() -> list[str]:
    """All selectable layer names, shallow to deep."""
    return [f"block{b + 1}_conv{c + 1}"
            for b, convs in enumerate(VGG19_BLOCKS) for c in range(len(convs))]


@dataclass
class NSTConfig:
    weights: str = "imagenet"  # imagenet | random | path to a VGG19 state dict
    # The original study's choice (Keras layer names).
    content_layers: list[str] = field(default_factory=lambda: ["block2_conv2"])
    style_layers: list[str] = field(
        default_factory=lambda: [
            "block1_conv2",
            "block2_conv2",
            "block3_conv3",
            "block4_conv3",
            "block5_conv3",
        ]
    )
    content_weight: float = 0.01
    style_weight: float = 4.0
    tv_weight: float = 1.0
    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    steps: int = 200  # loss evaluations per batch (the Keras recipe: 10 × 20 L-BFGS evaluations)
    lr: float | None = None  # None: 1.0 for lbfgs, 0.01 for adam
    max_size: int | None = None  # cap on the longer side of the optimisation resolution
    n_style_images: int = 1  # style frames; their Gram matrices are averaged

    def __post_init__(self) -> None:
        known = layer_names()
        for key in ("content_layers", "style_layers"):
            layers = getattr(self, key)
            bad = [layer for layer in layers if layer not in known]
            if not layers or bad:
                raise ParamError(f"{key}: {bad or 'empty'}; choose from {', '.join(known)}")
        if self.optimizer not in DEFAULT_LR:
            raise ParamError(f"optimizer: must be lbfgs or adam, got {self.optimizer!r}")
        check_int("steps", self.steps, minimum=1)
        check_int("n_style_images", self.n_style_images, minimum=1)
        if self.max_size is not None:
            check_int("max_size", self.max_size, minimum=32)
        if self.lr is not None and not self.lr > 0:
            raise ParamError(f"lr: must be > 0 or null, got {self.lr!r}")
        for key in ("content_weight", "style_weight", "tv_weight"):
            check_range(key, getattr(self, key), 0.0, float("inf"))
