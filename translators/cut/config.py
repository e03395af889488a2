"""CUT params (`translators.cut` in params.yaml).

The nets, data, optimiser and run keys are CycleGAN's (GANConfig, with the same reference
defaults); the keys below are CUT's (Park et al. 2020: 256 patches per layer, 256-dim
projections, tau 0.07). `mode` picks the paper's two settings:
- cut: lambda_X = lambda_Y = 1, i.e. PatchNCE on sim frames and the identity PatchNCE on real
  frames (G(y) against y), which keeps G from changing what is already real;
- fastcut: lambda_X = 10 and no identity term (one G pass per step instead of two), with
  flip-equivariance augmentation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from common.config import ParamError, check_int, check_range
from translators.cyclegan.config import GANConfig

MODES = ("cut", "fastcut")


@dataclass
class CUTConfig(GANConfig):
    mode: Literal["cut", "fastcut"] = "cut"
    lambda_nce: float | None = None   # weight of PatchNCE on sim frames; null = the mode's (1, 10)
    flip_equivariance: bool | None = None  # null = the mode's (off for cut, on for fastcut)
    num_patches: int = 256            # sampled positions per encoder layer
    nce_dim: int = 256                # width of the projection heads' output
    nce_temperature: float = 0.07

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode not in MODES:
            raise ParamError(f"mode: must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.lambda_nce is not None:
            check_range("lambda_nce", self.lambda_nce, 0.0, float("inf"), low_open=True)
        if self.flip_equivariance is not None and not isinstance(self.flip_equivariance, bool):
            raise ParamError(f"flip_equivariance: must be true, false or null, got "
                             f"{self.flip_equivariance!r}")
        check_int("num_patches", self.num_patches, minimum=1)
        check_int("nce_dim", self.nce_dim, minimum=1)
        check_range("nce_temperature", self.nce_temperature, 0.0, float("inf"), low_open=True)

    @property
    def nce_weight(self) -> float:
        """lambda_X: the weight of PatchNCE between sim frames and their translations."""
        if self.lambda_nce is not None:
            return self.lambda_nce
        return 1.0 if self.mode == "cut" else 10.0

    @property
    def identity_weight(self) -> float:
        """lambda_Y: the weight of PatchNCE between real frames and G of them (0 = not computed)."""
        return self.nce_weight if self.mode == "cut" else 0.0

    @property
    def flips(self) -> bool:
        if self.flip_equivariance is not None:
            return self.flip_equivariance
        return self.mode == "fastcut"
