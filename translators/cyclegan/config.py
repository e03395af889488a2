"""CycleGAN params (`translators.cyclegan` in params.yaml), and the fields it shares with CUT.

Defaults are the REFERENCE design (Zhu et al. 2017, the official pytorch-CycleGAN-and-pix2pix
defaults); params.yaml holds small demo values for the 2-core sample world.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from common.config import ParamError, check_int, check_range

# Keys that change how a run is executed or logged, not what it learns: changing them must not
# invalidate a checkpoint (so a resumed run may, e.g., checkpoint more often).
# `select` only picks which of the tracked generators is published.
RUN_ONLY_KEYS = frozenset({"checkpoint_every", "keep_checkpoints", "sample_every", "n_samples",
                           "num_workers", "compile", "select"})
SELECT = ("best", "last")


@dataclass
class GANConfig:
    """What every GAN translator trained by translators/training.py has: a ResNet generator, a
    PatchGAN, the data pipeline, Adam with a linear decay, and how a run is executed."""

    # generator: ResNet-9 (11,378,179 params at ngf 64)
    ngf: int = 64
    n_blocks: int = 9                 # residual blocks of the resnet generator
    # discriminator: 70×70 PatchGAN (2,764,737 params at ndf 64), deeper, or pix2pixHD multi-scale
    netD: Literal["basic", "n_layers", "multiscale"] = "basic"
    ndf: int = 64
    n_layers_D: int = 3               # used by n_layers and multiscale; basic is always 3
    num_D: int = 2                    # scales of the multiscale discriminator
    leaky_slope: float = 0.2          # LeakyReLU slope in D
    norm: Literal["instance", "batch", "none"] = "instance"
    init_gain: float = 0.02           # std of the normal init
    # data
    preprocess: Literal["resize_and_crop", "scale_width_and_crop", "crop", "none"] = (
        "resize_and_crop")
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True                 # random horizontal flips
    max_images: int | None = None     # per domain, evenly spaced over the given frames
    gan_mode: Literal["lsgan", "vanilla"] = "lsgan"
    # optimisation
    batch_size: int = 1
    lr: float = 0.0002
    beta1: float = 0.5
    beta2: float = 0.999
    n_epochs: int = 100               # epochs at the initial lr
    n_epochs_decay: int = 100         # epochs of linear decay to zero
    # running
    num_workers: int = 4              # DataLoader decode workers
    checkpoint_every: int = 1000      # iterations; also one at every epoch end
    keep_checkpoints: bool = False    # keep the last checkpoint after a finished run
    sample_every: int = 1             # epochs between sample grids (0 = never)
    n_samples: int = 4                # frames per domain in a sample grid
    amp: bool = True                  # CUDA only: bf16 autocast
    channels_last: bool = True        # CUDA only
    compile: bool = False             # CUDA only: torch.compile the training modules
    # training to the target: every score_every epochs, and at the last, the sim -> real
    # generator translates score_frames evenly spaced sim frames at full size and a scorer
    # rates them against the target's real frames (translator_train: KID in a fixed
    # extractor's features, evaluation/target_score.py); 0 = never score
    score_every: int = 10
    score_frames: int = 100
    # which generator is published: best = the epoch with the lowest score, last = the final
    # one (the only choice with score_every 0, or without a scorer: `python -m translators`)
    select: Literal["best", "last"] = "best"

    def __post_init__(self) -> None:
        for key in ["ngf", "ndf", "n_blocks", "n_layers_D", "num_D", "load_size", "crop_size",
                    "batch_size", "n_samples"]:
            check_int(key, getattr(self, key), minimum=1)
        for key in ["n_epochs", "n_epochs_decay", "num_workers", "checkpoint_every",
                    "sample_every", "score_every"]:
            check_int(key, getattr(self, key), minimum=0)
        check_int("score_frames", self.score_frames, minimum=2)  # KID needs two per set
        if self.select not in SELECT:
            raise ParamError(f"select: must be best or last, got {self.select!r}")
        if self.select == "best" and not self.score_every:
            raise ParamError("select: best needs scores; with score_every 0 set select: last")
        if self.n_epochs + self.n_epochs_decay < 1:
            raise ParamError("n_epochs + n_epochs_decay: must be >= 1")
        if self.max_images is not None:
            check_int("max_images", self.max_images, minimum=1)
        if self.preprocess in ("resize_and_crop", "scale_width_and_crop") and (
                self.load_size < self.crop_size):
            raise ParamError(f"load_size: ({self.load_size}) must be >= crop_size "
                             f"({self.crop_size}) with preprocess {self.preprocess}")
        for key in ["lr", "init_gain"]:
            if not getattr(self, key) > 0:
                raise ParamError(f"{key}: must be > 0, got {getattr(self, key)!r}")
        for key in ["beta1", "beta2"]:
            check_range(key, getattr(self, key), 0.0, 1.0, high_open=True)
        check_range("leaky_slope", self.leaky_slope, 0.0, float("inf"))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def learning_dict(self) -> dict:
        """The keys that decide what is learned (a checkpoint is only resumed if they match)."""
        return {k: v for k, v in self.to_dict().items() if k not in RUN_ONLY_KEYS}


@dataclass
class CycleGANConfig(GANConfig):
    # generator: the ResNet above or the pix2pix U-Net
    netG: Literal["resnet", "unet"] = "resnet"
    unet_downs: int = 8               # U-Net depth; frames are padded to a multiple of 2**downs
    # objective
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5      # relative to lambda_cycle, as in the paper's code
    lambda_feature_matching: float = 0.0  # pix2pixHD-style D-feature loss (0 = off)
    pool_size: int = 50

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("unet_downs", self.unet_downs, minimum=1)
        check_int("pool_size", self.pool_size, minimum=0)
        for key in ["lambda_cycle", "lambda_identity", "lambda_feature_matching"]:
            check_range(key, getattr(self, key), 0.0, float("inf"))
