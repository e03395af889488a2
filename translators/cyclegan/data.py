"""Unaligned sim/real training pairs: cv2 decoding, the reference preprocessing, random flips.

All randomness of an epoch is drawn up front into a plan of `Sample`s (which A frame, which B
frame, an augmentation seed) from a generator seeded by (seed, epoch). A resumed run rebuilds
the same plan and skips the batches already done without decoding them, and the result does
not depend on the number of DataLoader workers.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from common.errors import UserError
from translators.cyclegan.config import GANConfig
from translators.io import read_rgb


class Sample(NamedTuple):
    a_index: int
    b_index: int
    seed: int


def evenly_spaced(paths: list[Path], limit: int | None) -> list[Path]:
    """At most `limit` paths spread over the whole list (covers every sequence, not the first)."""
    if limit is None or len(paths) <= limit:
        return list(paths)
    picks = np.linspace(0, len(paths) - 1, num=limit).round().astype(int)
    return [paths[i] for i in picks]


def epoch_plan(n_a: int, n_b: int, seed: int, epoch: int, batch_size: int,
               rank: int = 0, world_size: int = 1) -> list[list[Sample]]:
    """This rank's batches for one epoch: every A frame once (the longer domain sets the
    epoch length, as in the reference), each with a random B frame."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    length = max(n_a, n_b)
    order = torch.randperm(length, generator=generator)
    b_random = torch.randint(n_b, (length,), generator=generator)
    seeds = torch.randint(2**31 - 1, (length,), generator=generator)
    samples = [Sample(int(order[i]) % n_a, int(b_random[i]), int(seeds[i])) for i in range(length)]
    per_rank = math.ceil(length / world_size)
    samples += samples[: per_rank * world_size - length]  # equal shares, as DistributedSampler
    mine = samples[rank::world_size]
    return [mine[i:i + batch_size] for i in range(0, len(mine), batch_size)]


def iterations_per_epoch(n_a: int, n_b: int, batch_size: int, world_size: int = 1) -> int:
    return math.ceil(math.ceil(max(n_a, n_b) / world_size) / batch_size)


def preprocess(rgb: np.ndarray, cfg: GANConfig, rng: np.random.Generator | None,
               path: Path | str = "") -> np.ndarray:
    """Resize/crop as `cfg.preprocess` says; random crop (and flip) with `rng`, centred without.

    resize_and_crop: square load_size then crop; scale_width_and_crop: width to load_size
    keeping the aspect (height at least crop_size, as the reference does for wide frames),
    then crop; crop: crop at native scale; none: sides rounded down to a multiple of 4.
    """
    h, w = rgb.shape[:2]
    if cfg.preprocess == "resize_and_crop":
        rgb = _resize(rgb, cfg.load_size, cfg.load_size)
    elif cfg.preprocess == "scale_width_and_crop":
        height = max(round(cfg.load_size * h / w), cfg.crop_size)
        rgb = _resize(rgb, cfg.load_size, height)
    elif cfg.preprocess == "none":
        rgb = rgb[: h - h % 4, : w - w % 4]
        if min(rgb.shape[:2]) < 4:
            raise UserError(f"image {path} is {w}×{h}, too small to train on")
    if cfg.preprocess != "none":
        rgb = _crop(rgb, cfg.crop_size, rng, path)
    if cfg.flip and rng is not None and rng.random() < 0.5:
        rgb = rgb[:, ::-1]
    return rgb


def _resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    if rgb.shape[1] == width and rgb.shape[0] == height:
        return rgb
    shrink = width * height < rgb.shape[0] * rgb.shape[1]
    return cv2.resize(rgb, (width, height),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def _crop(rgb: np.ndarray, size: int, rng: np.random.Generator | None,
          path: Path | str) -> np.ndarray:
    h, w = rgb.shape[:2]
    if h < size or w < size:
        raise UserError(f"image {path} is {w}×{h} after preprocessing, smaller than "
                         f"crop_size {size}; lower crop_size or use another preprocess")
    if rng is None:
        top, left = (h - size) // 2, (w - size) // 2
    else:
        top, left = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
    return rgb[top:top + size, left:left + size]


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """H×W×3 uint8 -> 3×H×W float in [-1, 1] (the generators' tanh range)."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div(127.5).sub(1)


class UnalignedDataset(Dataset):
    """Indexed by `Sample`s from `epoch_plan`: returns (A image, B image) in [-1, 1]."""

    def __init__(self, source: list[Path], target: list[Path], cfg: GANConfig) -> None:
        if not source:
            raise UserError("no source (sim) frames to train on")
        if not target:
            raise UserError("no target (real) frames to train on")
        self.source, self.target, self.cfg = source, target, cfg

    def __len__(self) -> int:
        return max(len(self.source), len(self.target))

    def __getitem__(self, sample: Sample) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng(sample.seed)
        a_path, b_path = self.source[sample.a_index], self.target[sample.b_index]
        a = preprocess(read_rgb(a_path), self.cfg, rng, a_path)
        b = preprocess(read_rgb(b_path), self.cfg, rng, b_path)
        return to_tensor(a), to_tensor(b)

    def fixed(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n evenly spaced frames per domain, centre-cropped without flips: the sample grids."""
        def centred(path: Path) -> torch.Tensor:
            return to_tensor(_tile(preprocess(read_rgb(path), self.cfg, None, path), self.cfg))

        a = [centred(p) for p in evenly_spaced(self.source, n)]
        b = [centred(p) for p in evenly_spaced(self.target, n)]
        return torch.stack(a), torch.stack(b)


def _tile(rgb: np.ndarray, cfg: GANConfig) -> np.ndarray:
    """With preprocess none frames keep their size; grids need one: crop_size squares."""
    if cfg.preprocess != "none":
        return rgb
    return _resize(rgb, cfg.crop_size, cfg.crop_size)
