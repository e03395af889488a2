"""The pinhole camera over a flat road, and the KITTI / vKITTI2 / BDD100K cameras (image sizes,
intrinsics and mount heights, scaled to the configured width)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.sample.config import NEAR_PLANE


@dataclass(frozen=True)
class Camera:
    """Pinhole camera over a flat road. World: X right, Y up from the ground, Z forward (metres).

    Pixel coordinates are pixel-centre indices (KITTI's and BDD's convention: the last column of a
    1242-wide frame is 1241)."""

    width: int
    height: int
    focal: float
    cx: float
    cy: float  # the horizon row (the camera looks level)
    mount_height: float

    def project(self, xyz: np.ndarray) -> np.ndarray:
        z = np.maximum(xyz[:, 2], NEAR_PLANE)
        u = self.cx + self.focal * xyz[:, 0] / z
        v = self.cy + self.focal * (self.mount_height - xyz[:, 1]) / z
        return np.stack([u, v], axis=1)


def kitti_size(width: int) -> tuple[int, int]:
    return width, round(width * 375 / 1242)


def bdd_size(width: int) -> tuple[int, int]:
    return width, round(width * 9 / 16)


def kitti_camera(width: int) -> Camera:
    """KITTI's left colour camera (P2 of the object benchmark), scaled to `width`."""
    w, h = kitti_size(width)
    s = w / 1242
    return Camera(w, h, 721.5377 * s, 609.5593 * s, 172.854 * s, 1.65)


def vkitti2_camera(width: int) -> Camera:
    """vKITTI2's Camera_0 intrinsics (fx 725.0087, cx 620.5, cy 187.0), scaled to `width`."""
    w, h = kitti_size(width)
    s = w / 1242
    return Camera(w, h, 725.0087 * s, 620.5 * s, 187.0 * s, 1.58)


def bdd_camera(width: int, rng: np.random.Generator, tall: bool = False) -> Camera:
    """A dashcam: horizon near the middle, slightly varying pitch; mounted in a car, or (tall)
    in an SUV / van, which sees further over the traffic."""
    w, h = bdd_size(width)
    mount = rng.uniform(1.55, 1.95) if tall else rng.uniform(1.35, 1.75)
    return Camera(w, h, 0.82 * w, w / 2, h * rng.uniform(0.45, 0.52), mount)
