"""The built-in procedural sample world: tiny KITTI, vKITTI2 and BDD100K look-alikes on disk.

Why it exists: the whole graph (ingest -> translate -> train -> evaluate) must run end to end
without the real downloads, and the demo must still mean something. So the three datasets are
written in their exact real formats and layouts (the real readers read them) from one 3-D road
world seen by a pinhole camera:

- geometry: vehicles are a few 3-D boxes each (car: low body + narrower cabin; van: tall box +
  short bonnet; truck: cab + long cargo box; bus: long box with a row of windows), drawn far to
  near, so they occlude each other the way real traffic does;
- labels: the amodal box of each drawn silhouette, clipped to the image; occlusion comes from the
  fraction of the silhouette still visible once everything nearer has been drawn;
- looks: vKITTI2 is flat-shaded "sim" with its own cheap weather variations; KITTI and BDD100K are
  "photographic" (textures, shading, sensor noise, blur, JPEG) and BDD's weather is physical
  (depth haze, slanted rain streaks + lens droplets + wet reflections, flat overcast light).

Everything is drawn from numpy Generators seeded per frame, so the same seed gives byte-identical
files, and changing one count does not reshuffle the other datasets.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

Color = tuple[float, float, float]  # BGR in 0..1

# ---------------------------------------------------------------------------------------------
# Configuration and result
# ---------------------------------------------------------------------------------------------


@dataclass
class SampleConfig:
    """params.yaml `data.sample`: how much of each dataset to write, and how wide the frames are."""

    kitti_frames: int = 48
    vkitti2_scenes: int = 2
    vkitti2_frames_per_scene: int = 24
    bdd_train_frames_per_weather: int = 12
    bdd_val_frames_per_weather: int = 16
    # KITTI/vKITTI2 frames are width x round(width*375/1242); BDD frames width x width*9/16
    width: int = 320

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"data.sample.{f.name} must be an integer >= 0, got {value!r}")
        if self.width < 64:
            raise ValueError(f"data.sample.width must be >= 64 pixels, got {self.width}")


@dataclass
class SampleWorld:
    """Where each dataset root of a written sample world is (the paths the real readers take)."""

    kitti_root: Path  # holds training/image_2 and training/label_2
    vkitti2_root: Path  # holds SceneXX/<variation>/...
    bdd100k_images: Path  # holds train/ and val/
    bdd100k_labels_train: Path
    bdd100k_labels_val: Path


# Label rules shared by all three datasets.
OCCLUDED_BELOW = 0.85  # visible fraction below which a vehicle is "occluded" (BDD, KITTI level 1)
LARGELY_OCCLUDED_BELOW = 0.5  # KITTI occlusion level 2
MIN_VISIBLE_FRACTION = 0.15  # less visible than this: not labelled at all
MIN_BOX_HEIGHT = 8.0  # pixels; smaller: not labelled (KITTI: a DontCare region instead, sometimes)

VKITTI2_VARIATIONS = ("clone", "fog", "rain", "overcast", "morning", "sunset")
BDD_WEATHERS = ("clear", "foggy", "rainy", "overcast")
BDD_BUCKETS = ((0, 5), (6, 10), (11, 1_000_000))  # occluded vehicles per frame, disjoint
BDD_COUNTED = ("car", "truck")  # the classes that count towards n_occluded_vehicles
JPEG_QUALITY_SIM = 95
JPEG_QUALITY_BDD = 88
PNG_COMPRESSION = 3
NEAR_PLANE = 1.0  # metres; geometry closer than this is clamped (it is off-screen anyway)

# Seed streams: every frame has its own Generator, keyed by (seed, stream, index).
STREAM_KITTI, STREAM_VKITTI2, STREAM_BDD_TRAIN, STREAM_BDD_VAL = 1, 2, 3, 4

# ---------------------------------------------------------------------------------------------
# Camera
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Things: vehicles, pedestrians and scenery as a few 3-D parts each
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Detail:
    """A flat patch on one face of a part (window, lamp, wheel disc).

    face "back"/"front": u runs across the part (0 = left), v up; face "side": u runs along the
    body (0 = rear), v up. u, v are fractions of the part's extent (may leave 0..1, e.g. a wheel
    disc that reaches below the body)."""

    face: str
    u0: float
    u1: float
    v0: float
    v1: float
    role: str
    disc: bool = False


@dataclass(frozen=True)
class Part:
    """An axis-aligned box (or an ellipsoid blob) in the thing's own frame: x lateral from its
    centre line, y height above the ground, s along the body from its rear end."""

    x0: float
    x1: float
    y0: float
    y1: float
    s0: float
    s1: float
    role: str
    group: int = 0  # position along the body (0 = rear); the farthest group is drawn first
    layer: int = 0  # bottom-up drawing order inside a group
    details: tuple[Detail, ...] = ()
    blob: bool = False


@dataclass
class Thing:
    """One placed object. heading +1 drives away from the camera (rear visible), -1 comes towards
    it (front visible). z is the distance of its nearest end; label None = scenery/occluder."""

    kind: str
    x: float
    z: float
    heading: int
    h: float
    w: float
    l: float  # noqa: E741 (KITTI's name for the length)
    parts: list[Part]
    colors: dict[str, Color] = field(default_factory=dict)
    label: str | None = None
    track_id: int = -1
    moving: bool = True
    model: str = ""
    color_name: str = ""
    base: float = 0.0  # height of the ground under it (a road climbing ahead)

    def z_of(self, s: np.ndarray | float) -> np.ndarray | float:
        return self.z + (s if self.heading >= 0 else self.l - s)


def _tyres(w: float, axles: tuple[float, ...], r: float, group: int = 0, tyre_w: float = 0.24
           ) -> list[Part]:
    """Wheel blocks at the body corners: what the rear/front view shows below the bumper."""
    return [Part(x0, x0 + tyre_w, 0.0, 2 * r, a - r, a + r, "tyre", group, 0)
            for a in axles for x0 in (-w / 2, w / 2 - tyre_w)]


def _disc(y0: float, y1: float, s0: float, s1: float, axle: float, r: float) -> Detail:
    """A wheel disc (on a part's side face) at `axle` along the body, touching the ground."""
    return Detail("side", (axle - r - s0) / (s1 - s0), (axle + r - s0) / (s1 - s0),
                  (0.0 - y0) / (y1 - y0), (2 * r - y0) / (y1 - y0), "tyre", disc=True)


def _pair(face: str, u0: float, u1: float, v0: float, v1: float, role: str) -> tuple[Detail, ...]:
    """A detail and its mirror image across the face (lamps, windows)."""
    return Detail(face, u0, u1, v0, v1, role), Detail(face, 1 - u1, 1 - u0, v0, v1, role)


def car_parts(h: float, w: float, l: float, hatch: bool) -> list[Part]:  # noqa: E741
    """Low body with lamps and plate, narrower glazed cabin on top, two wheels per side."""
    r, sill, belt = 0.31, 0.28, 0.62 * h
    axles = (0.8, l - 0.9)
    cabin_s = (0.08 * l, 0.72 * l) if hatch else (0.24 * l, 0.76 * l)
    body = Part(-w / 2, w / 2, sill, belt, 0.0, l, "paint", 0, 1, (
        *_pair("back", 0.03, 0.21, 0.5, 0.82, "tail"),
        Detail("back", 0.38, 0.62, 0.25, 0.5, "plate"), Detail("back", 0.0, 1.0, 0.0, 0.18, "trim"),
        *_pair("front", 0.04, 0.22, 0.5, 0.78, "head"),
        Detail("front", 0.3, 0.7, 0.35, 0.7, "trim"),
        *(_disc(sill, belt, 0.0, l, a, r) for a in axles)))
    cabin = Part(-w / 2 + 0.1, w / 2 - 0.1, belt, h, *cabin_s, "paint", 0, 2, (
        Detail("back", 0.08, 0.92, 0.12, 0.86, "glass"),
        Detail("front", 0.05, 0.95, 0.1, 0.9, "glass"),
        Detail("side", 0.06, 0.94, 0.14, 0.84, "glass")))
    return [*_tyres(w, axles, r), body, cabin]


def van_parts(h: float, w: float, l: float, glazed: bool) -> list[Part]:  # noqa: E741
    """A tall box with a short bonnet in front; two rear windows, big lamps."""
    r, sill = 0.33, 0.3
    box_end = l - 0.95
    bonnet_top = sill + 0.4 * (h - sill)
    side_windows = (Detail("side", 0.05, 0.72, 0.55, 0.86, "glass"),) if glazed else ()
    box = Part(-w / 2, w / 2, sill, h, 0.0, box_end, "paint", 0, 1, (
        *_pair("back", 0.05, 0.47, 0.55, 0.87, "glass"),
        *_pair("back", 0.0, 0.07, 0.22, 0.55, "tail"),
        Detail("back", 0.4, 0.6, 0.1, 0.22, "plate"), Detail("back", 0.0, 1.0, 0.0, 0.08, "trim"),
        Detail("front", 0.05, 0.95, 0.5, 0.92, "glass"),
        Detail("side", 0.8, 0.98, 0.55, 0.88, "glass"), *side_windows,
        _disc(sill, h, 0.0, box_end, 0.85, r)))
    bonnet = Part(-w / 2 + 0.03, w / 2 - 0.03, sill, bonnet_top, box_end, l, "paint", 1, 1, (
        *_pair("front", 0.04, 0.22, 0.5, 0.8, "head"),
        Detail("front", 0.28, 0.72, 0.3, 0.75, "trim"),
        _disc(sill, bonnet_top, box_end, l, l - 0.7, r)))
    return [*_tyres(w, (0.85,), r, 0), *_tyres(w, (l - 0.7,), r, 1), box, bonnet]


def truck_parts(h: float, w: float, l: float) -> list[Part]:  # noqa: E741
    """Cab in front, gap, long cargo box on a dark chassis; big double rear wheels."""
    r, cab_len, gap = 0.5, 2.1, 0.25
    cargo_end = l - cab_len - gap
    rear_axles, front_axle = (0.9, 2.1), l - 1.1
    cargo = Part(-w / 2, w / 2, 1.05, h, 0.0, cargo_end, "cargo", 0, 2, (
        Detail("back", 0.495, 0.505, 0.03, 0.97, "seam"),
        Detail("back", 0.02, 0.98, 0.0, 0.04, "seam"),
        Detail("side", 0.02, 0.98, 0.38, 0.52, "stripe"),
        *(_disc(1.05, h, 0.0, cargo_end, a, r) for a in rear_axles)))
    chassis = Part(-w / 2 + 0.15, w / 2 - 0.15, 0.45, 1.05, 0.0, cargo_end + gap, "trim", 0, 1, (
        *_pair("back", 0.02, 0.16, 0.25, 0.8, "tail"),
        Detail("back", 0.4, 0.6, 0.2, 0.7, "plate")))
    cab_top = h - 0.35
    cab = Part(-w / 2 + 0.05, w / 2 - 0.05, 0.5, cab_top, cargo_end + gap, l, "paint", 1, 1, (
        Detail("front", 0.05, 0.95, 0.55, 0.9, "glass"),
        Detail("front", 0.25, 0.75, 0.1, 0.42, "trim"),
        *_pair("front", 0.03, 0.2, 0.1, 0.25, "head"),
        Detail("side", 0.5, 0.92, 0.55, 0.88, "glass"),
        _disc(0.5, cab_top, cargo_end + gap, l, front_axle, r)))
    return [*_tyres(w, rear_axles, r, 0, 0.4), *_tyres(w, (front_axle,), r, 1, 0.3),
            chassis, cargo, cab]


def bus_parts(h: float, w: float, l: float) -> list[Part]:  # noqa: E741
    """One long box: a row of side windows, big windscreen, rear window, destination sign."""
    r, sill = 0.5, 0.3
    axles = (2.6, l - 2.4)
    windows = tuple(Detail("side", 0.05 + k * 0.115, 0.14 + k * 0.115, 0.52, 0.86, "glass")
                    for k in range(8))
    body = Part(-w / 2, w / 2, sill, h, 0.0, l, "paint", 0, 1, (
        Detail("back", 0.12, 0.88, 0.6, 0.88, "glass"), Detail("back", 0.3, 0.7, 0.1, 0.3, "trim"),
        *_pair("back", 0.02, 0.1, 0.08, 0.35, "tail"),
        Detail("front", 0.04, 0.96, 0.36, 0.9, "glass"),
        Detail("front", 0.2, 0.8, 0.91, 0.97, "sign"),
        *_pair("front", 0.04, 0.17, 0.07, 0.17, "head"),
        Detail("side", 0.0, 1.0, 0.3, 0.38, "stripe"), *windows,
        *(_disc(sill, h, 0.0, l, a, r) for a in axles)))
    return [*_tyres(w, axles, r), body]


def trailer_parts(h: float, w: float, l: float) -> list[Part]:  # noqa: E741
    """BDD's "other vehicle": an open box trailer with a draw bar, no cab, no windows."""
    r = 0.3
    bed = Part(-w / 2, w / 2, 0.42, h, 0.0, l, "cargo", 0, 1, (
        *_pair("back", 0.02, 0.14, 0.1, 0.35, "tail"),
        Detail("side", 0.0, 1.0, 0.85, 1.0, "trim"), _disc(0.42, h, 0.0, l, l / 2, r)))
    bar = Part(-0.06, 0.06, 0.35, 0.47, l, l + 0.9, "trim", 1, 1)
    return [*_tyres(w, (l / 2,), r), bed, bar]


def pedestrian_parts(h: float) -> list[Part]:
    legs = [Part(x - 0.07, x + 0.07, 0.0, 0.47 * h, 0.3, 0.46, "pants") for x in (-0.09, 0.09)]
    torso = Part(-0.21, 0.21, 0.46 * h, 0.82 * h, 0.26, 0.5, "shirt", 0, 1)
    head = Part(-0.1, 0.1, 0.83 * h, h, 0.28, 0.48, "skin", 0, 2, blob=True)
    return [*legs, torso, head]


def building_parts(h: float, w: float, l: float, floors: int) -> list[Part]:  # noqa: E741
    cols = max(1, int(l / 3.2))
    windows = [Detail("side", (j + 0.25) / cols, (j + 0.75) / cols, (i + 0.35) / floors,
                      (i + 0.8) / floors, "bwindow") for i in range(floors) for j in range(cols)]
    ends = max(1, int(w / 3.2))
    windows += [Detail(face, (j + 0.25) / ends, (j + 0.75) / ends, (i + 0.35) / floors,
                       (i + 0.8) / floors, "bwindow")
                for face in ("back", "front") for i in range(floors) for j in range(ends)]
    return [Part(-w / 2, w / 2, 0.0, h, 0.0, l, "wall", details=tuple(windows))]


def tree_parts(h: float, crown: float) -> list[Part]:
    trunk = Part(-0.13, 0.13, 0.0, h * 0.55, 0.0, 0.26, "trunk")
    top = Part(-crown, crown, h * 0.4, h, 0.13 - crown, 0.13 + crown, "leaves", 0, 1, blob=True)
    return [trunk, top]


# Vehicle catalogue: dims ranges (h, w, l) in metres and the dataset names of each kind.
KIND_DIMS = {
    "car": ((1.4, 1.6), (1.7, 1.85), (3.9, 4.7)),
    "van": ((1.95, 2.3), (1.9, 2.05), (4.8, 5.5)),
    "truck": ((3.1, 3.6), (2.4, 2.55), (7.5, 10.0)),
    "bus": ((2.95, 3.2), (2.5, 2.55), (10.5, 12.0)),
    "other": ((1.0, 1.3), (1.7, 2.0), (2.8, 3.6)),
}
KITTI_TYPE = {"car": "Car", "van": "Van", "truck": "Truck", "pedestrian": "Pedestrian"}
BDD_CATEGORY = {"car": "car", "van": "car", "truck": "truck", "bus": "bus",
                "other": "other vehicle", "pedestrian": "pedestrian"}
CAR_MODELS = ("Sedan4Door", "Sedan2Door", "Hatchback", "SUV", "MPV")
VEHICLE_KINDS = frozenset(KIND_DIMS)

# Paint: photographic (muted, what real traffic looks like) and sim (saturated game colours).
REAL_PAINTS: dict[str, Color] = {
    "White": (0.9, 0.9, 0.9), "Silver": (0.7, 0.7, 0.68), "Black": (0.11, 0.11, 0.12),
    "Grey": (0.42, 0.42, 0.43), "Blue": (0.45, 0.24, 0.14), "Red": (0.13, 0.12, 0.6),
    "Green": (0.22, 0.33, 0.17), "Brown": (0.45, 0.58, 0.68)}
SIM_PAINTS: dict[str, Color] = {
    "White": (0.97, 0.97, 0.97), "Black": (0.08, 0.08, 0.08), "Red": (0.05, 0.05, 0.9),
    "Blue": (0.9, 0.3, 0.05), "Yellow": (0.05, 0.85, 0.95), "Green": (0.1, 0.75, 0.1),
    "Orange": (0.05, 0.5, 1.0), "Purple": (0.7, 0.1, 0.55), "Cyan": (0.85, 0.8, 0.1)}
REAL_CARGO: tuple[Color, ...] = ((0.88, 0.88, 0.87), (0.75, 0.76, 0.76), (0.55, 0.35, 0.2),
                                 (0.2, 0.45, 0.7))
REAL_BUS: tuple[Color, ...] = ((0.1, 0.75, 0.92), (0.88, 0.88, 0.88), (0.15, 0.15, 0.65),
                               (0.6, 0.35, 0.15))


def make_vehicle(rng: np.random.Generator, kind: str, x: float, z: float, heading: int,
                 sim: bool) -> Thing:
    """A vehicle of `kind` with random dims/paint; its label is filled in by the dataset writer."""
    (h0, h1), (w0, w1), (l0, l1) = KIND_DIMS[kind]
    h, w, length = rng.uniform(h0, h1), rng.uniform(w0, w1), rng.uniform(l0, l1)
    paints = SIM_PAINTS if sim else REAL_PAINTS
    color_name = str(rng.choice(list(paints)))
    colors: dict[str, Color] = {"paint": paints[color_name]}
    model = {"van": "Van", "truck": "BoxTruck", "bus": "Bus", "other": "Trailer"}.get(kind, "")
    if kind == "car":
        model = str(rng.choice(CAR_MODELS))
        if model == "SUV":
            h = max(h, 1.62)
        parts = car_parts(h, w, length, hatch=model in ("Hatchback", "MPV", "SUV"))
    elif kind == "van":
        parts = van_parts(h, w, length, glazed=bool(rng.random() < 0.5))
    elif kind == "truck":
        cargo = list(SIM_PAINTS.values()) if sim else list(REAL_CARGO)
        colors["cargo"] = cargo[rng.integers(len(cargo))]
        colors["stripe"] = paints[str(rng.choice(list(paints)))]
        parts = truck_parts(h, w, length)
    elif kind == "bus":
        if not sim:
            colors["paint"] = REAL_BUS[rng.integers(len(REAL_BUS))]
        colors["stripe"] = (0.2, 0.2, 0.2) if sim else (0.25, 0.25, 0.26)
        parts = bus_parts(h, w, length)
    elif kind == "other":
        colors["cargo"] = (0.05, 0.45, 0.95) if sim else (0.35, 0.4, 0.45)
        parts = trailer_parts(h, w, length)
    else:
        raise ValueError(f"unknown vehicle kind {kind!r}")
    return Thing(kind, x, z, heading, h, w, length, parts, colors, model=model,
                 color_name=color_name)


def make_pedestrian(rng: np.random.Generator, x: float, z: float, sim: bool) -> Thing:
    h = rng.uniform(1.55, 1.9)
    shirts = [(0.55, 0.2, 0.1), (0.15, 0.15, 0.6), (0.8, 0.8, 0.8), (0.2, 0.5, 0.2),
              (0.15, 0.15, 0.15)]
    colors = {"shirt": shirts[rng.integers(len(shirts))],
              "pants": (0.35, 0.2, 0.1) if rng.random() < 0.5 else (0.12, 0.12, 0.14),
              "skin": (0.55, 0.65, 0.8) if rng.random() < 0.7 else (0.25, 0.35, 0.45)}
    heading = 1 if rng.random() < 0.5 else -1
    return Thing("pedestrian", x, z, heading, h, rng.uniform(0.5, 0.7), rng.uniform(0.6, 1.0),
                 pedestrian_parts(h), colors)


# ---------------------------------------------------------------------------------------------
# Projection of things to image polygons
# ---------------------------------------------------------------------------------------------

Polygon = tuple[list[np.ndarray], str, str, float | None, bool]
"""(convex N x 2 pixel polygons that never overlap each other, role, face end|side|top|blob,
the X of a side face's plane, is a detail). One entry is one fill: a face, or all same-role
details of a face. The non-detail entries are exactly the silhouette (details lie on faces,
wheel discs inside the tyre blocks)."""

DISC = [(math.cos(a), math.sin(a)) for a in np.linspace(0, 2 * np.pi, 10, endpoint=False)]


def _ellipse(cu: float, cv: float, ru: float, rv: float, n: int = 12) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cu + ru * np.cos(a), cv + rv * np.sin(a)], axis=1)


def thing_polygons(thing: Thing, cam: Camera, details: bool = True) -> list[Polygon]:
    """The thing's visible faces (and face details) as image polygons, in painting order.

    This runs for every thing of every frame, so the 3-D corners are gathered as plain floats
    and projected in one numpy call."""
    if thing.kind == "hood":  # the ego car's bonnet at the bottom of a dashcam frame
        return [([_ellipse(cam.width / 2, cam.height * 1.13, cam.width * 0.8, cam.height * 0.17,
                           24)], "hood", "end", None, False)]
    order = sorted(thing.parts, key=lambda p: (-p.group if thing.heading >= 0 else p.group,
                                               p.layer))
    near_face = "back" if thing.heading >= 0 else "front"
    corners: list[tuple[float, float, float]] = []
    entries: list[tuple[int, str, str, float | None, bool]] = []  # (n corners, role, face, ...)
    blobs: dict[int, tuple[float, float, float]] = {}  # entry index -> radii (m), depth

    def add(points: list[tuple[float, float, float]], role: str, face: str,
            plane_x: float | None = None, detail: bool = False) -> None:
        corners.extend(points)
        entries.append((len(points), role, face, plane_x, detail))

    away = thing.heading >= 0
    for part in order:
        x0, x1 = thing.x + part.x0, thing.x + part.x1
        y0, y1 = part.y0 + thing.base, part.y1 + thing.base
        if part.blob:
            zc = thing.z + ((part.s0 + part.s1) / 2 if away else thing.l - (part.s0 + part.s1) / 2)
            blobs[len(entries)] = ((x1 - x0) / 2, (y1 - y0) / 2, max(zc, NEAR_PLANE))
            add([((x0 + x1) / 2, (y0 + y1) / 2, zc)], part.role, "blob")
            continue
        za, zb = (thing.z + part.s0, thing.z + part.s1) if away else (
            thing.z + thing.l - part.s0, thing.z + thing.l - part.s1)
        zn, zf = min(za, zb), max(za, zb)
        side_x = x0 if x0 > 0 else (x1 if x1 < 0 else None)
        if side_x is not None:
            add([(side_x, y0, zn), (side_x, y1, zn), (side_x, y1, zf), (side_x, y0, zf)],
                part.role, "side", side_x)
        if y1 < cam.mount_height:
            add([(x0, y1, zn), (x1, y1, zn), (x1, y1, zf), (x0, y1, zf)], part.role, "top")
        add([(x0, y0, zn), (x1, y0, zn), (x1, y1, zn), (x0, y1, zn)], part.role, "end")
        if not details:
            continue
        dy = y1 - y0
        for d in part.details:
            if d.face == "side" and side_x is not None:
                if d.disc:
                    cu, cv, ru, rv = (d.u0 + d.u1) / 2, (d.v0 + d.v1) / 2, (d.u1 - d.u0) / 2, (
                        d.v1 - d.v0) / 2
                    uv = [(cu + ru * c, cv + rv * s) for c, s in DISC]
                else:
                    uv = [(d.u0, d.v0), (d.u1, d.v0), (d.u1, d.v1), (d.u0, d.v1)]
                pts = []
                for u, v in uv:
                    sv = part.s0 + u * (part.s1 - part.s0)
                    pts.append((side_x, y0 + v * dy, thing.z + (sv if away else thing.l - sv)))
                add(pts, d.role, "side", side_x, True)
            elif d.face == near_face:
                u0, u1 = (d.u0, d.u1) if away else (1 - d.u1, 1 - d.u0)
                xa, xb = x0 + u0 * (x1 - x0), x0 + u1 * (x1 - x0)
                ya, yb = y0 + d.v0 * dy, y0 + d.v1 * dy
                add([(xa, ya, zn), (xb, ya, zn), (xb, yb, zn), (xa, yb, zn)], d.role, "end",
                    None, True)
    projected = cam.project(np.array(corners))
    polygons: list[Polygon] = []
    start = 0
    for index, (count, role, face, plane_x, detail) in enumerate(entries):
        pts = projected[start:start + count]
        start += count
        if index in blobs:
            rx, ry, z = blobs[index]
            pts = _ellipse(pts[0, 0], pts[0, 1], cam.focal * rx / z, cam.focal * ry / z)
        previous = polygons[-1] if polygons else None
        if detail and previous is not None and previous[1:] == (role, face, plane_x, True):
            previous[0].append(pts)  # same-role details of a face never overlap: one fill
        else:
            polygons.append(([pts], role, face, plane_x, detail))
    return polygons


def footprint(thing: Thing, cam: Camera, dx: float) -> np.ndarray:
    """The ground polygon under a thing (its shadow), shifted sideways by dx metres."""
    x0, x1 = thing.x - thing.w / 2 - 0.12 + dx, thing.x + thing.w / 2 + 0.12 + dx
    zn, zf, y = thing.z - 0.25, thing.z + thing.l + 0.3, thing.base
    return cam.project(np.array([(x0, y, zn), (x1, y, zn), (x1, y, zf), (x0, y, zf)], float))


# ---------------------------------------------------------------------------------------------
# Label pass: what each thing's box is and how much of it stays visible
# ---------------------------------------------------------------------------------------------


@dataclass
class Seen:
    """A drawn thing as the camera sees it (boxes in pixel-centre coordinates)."""

    thing: Thing
    box: tuple[float, float, float, float]  # amodal, not clipped
    clipped: tuple[float, float, float, float]
    pixels: int  # silhouette pixels inside the image if nothing were in front
    visible: int  # silhouette pixels left after everything nearer was drawn

    @property
    def visible_fraction(self) -> float:
        return self.visible / self.pixels if self.pixels else 0.0

    @property
    def truncation(self) -> float:
        """Share of the amodal box area outside the image."""
        (a0, b0, a1, b1), (c0, d0, c1, d1) = self.box, self.clipped
        full = max(a1 - a0, 1e-6) * max(b1 - b0, 1e-6)
        return float(min(max(1 - (c1 - c0) * (d1 - d0) / full, 0.0), 1.0))

    @property
    def labelled(self) -> bool:
        return (self.thing.label is not None and self.pixels > 0
                and self.visible_fraction >= MIN_VISIBLE_FRACTION
                and self.clipped[3] - self.clipped[1] >= MIN_BOX_HEIGHT)

    @property
    def occluded(self) -> bool:
        return self.visible_fraction < OCCLUDED_BELOW


def paint_order(things: list[Thing]) -> list[Thing]:
    """Scenery first, then objects far to near (so nearer ones cover farther ones)."""
    scenery = sorted((t for t in things if t.kind not in VEHICLE_KINDS | {"pedestrian", "hood"}),
                     key=lambda t: -t.z)
    objects = sorted((t for t in things if t.kind in VEHICLE_KINDS | {"pedestrian", "hood"}),
                     key=lambda t: -t.z)
    return scenery + objects


def _side_depth(depth: np.ndarray, faces: list[Polygon], cam: Camera, c0: int, r0: int,
                thing: Thing) -> None:
    """Depth of side-face pixels: the plane X = x seen at column u lies at Z = f x / (u - cx)."""
    cols = np.arange(c0, c0 + depth.shape[1], dtype=np.float32) - cam.cx
    for pts, _, face, plane_x, detail in faces:
        if face != "side" or plane_x is None or detail:
            continue
        mask = np.zeros(depth.shape, np.uint8)
        for p in pts:  # 4 fractional bits keep sub-pixel positions
            cv2.fillConvexPoly(mask, np.round((p - (c0, r0)) * 16).astype(np.int32), 1,
                               cv2.LINE_8, shift=4)
        with np.errstate(divide="ignore"):
            z = cam.focal * plane_x / np.where(np.abs(cols) < 1e-3, 1e-3, cols)
        z = np.clip(z, max(thing.z, NEAR_PLANE), thing.z + thing.l)
        depth[:] = np.where(mask.astype(bool), z[None, :], depth)


def _split(array: np.ndarray, lengths: list[int]) -> list[np.ndarray]:
    ends = np.cumsum(lengths).tolist()
    return [array[end - n:end] for n, end in zip(lengths, ends, strict=True)]


def label_pass(things: list[Thing], cam: Camera, road: Road | None = None
               ) -> tuple[list[Seen], np.ndarray, np.ndarray]:
    """Rasterise silhouettes far to near at 1x: per-thing visibility, an id map and a depth map.

    `things` must already be in paint order; ids are index + 1 (0 = ground/sky); depth is metres
    (1e4 for the sky)."""
    w, h = cam.width, cam.height
    ids = np.zeros((h, w), np.int32)
    depth = np.ascontiguousarray(np.broadcast_to((road or Road([], 0, 0, 0, "")).ground_depth(cam),
                                                 (h, w)))
    boxes, counts = [], []
    for index, thing in enumerate(things):
        faces = thing_polygons(thing, cam, details=False)
        polygons = [p for group, _, _, _, _ in faces for p in group]
        allpts = np.concatenate(polygons)
        box = (float(allpts[:, 0].min()), float(allpts[:, 1].min()),
               float(allpts[:, 0].max()), float(allpts[:, 1].max()))
        c0, r0 = max(math.floor(box[0]), 0), max(math.floor(box[1]), 0)
        c1, r1 = min(math.ceil(box[2]), w - 1), min(math.ceil(box[3]), h - 1)
        boxes.append(box)
        if c1 < c0 or r1 < r0:
            counts.append(0)
            continue
        mask = np.zeros((r1 - r0 + 1, c1 - c0 + 1), np.uint8)
        fixed = np.round((allpts - (c0, r0)) * 16).astype(np.int32)
        for pts in _split(fixed, [len(p) for p in polygons]):
            cv2.fillConvexPoly(mask, pts, 1, cv2.LINE_8, shift=4)  # faces overlap: one by one
        inside = mask.astype(bool)
        counts.append(int(inside.sum()))
        ids[r0:r1 + 1, c0:c1 + 1][inside] = index + 1
        depth[r0:r1 + 1, c0:c1 + 1][inside] = max(thing.z, NEAR_PLANE)
        if thing.label is None and thing.l > 3:  # long walls/rails recede: depth along the face
            _side_depth(depth[r0:r1 + 1, c0:c1 + 1], faces, cam, c0, r0, thing)
    visible = np.bincount(ids.ravel(), minlength=len(things) + 1)
    seen = []
    for index, (thing, box, count) in enumerate(zip(things, boxes, counts, strict=True)):
        clipped = (min(max(box[0], 0.0), w - 1.0), min(max(box[1], 0.0), h - 1.0),
                   min(max(box[2], 0.0), w - 1.0), min(max(box[3], 0.0), h - 1.0))
        seen.append(Seen(thing, box, clipped, count, int(visible[index + 1])))
    return seen, ids, depth


# ---------------------------------------------------------------------------------------------
# Road layouts, traffic and scenery
# ---------------------------------------------------------------------------------------------


@dataclass
class Road:
    """Lanes (centre x, heading), road edges, sidewalks, what lines separate them."""

    lanes: list[tuple[float, int]]
    left: float
    right: float
    walk: float  # sidewalk width beyond each edge (0: grass shoulder)
    kind: str  # urban | residential | highway
    yellow_centre: bool = False  # US (BDD) style centre line
    parking: list[float] = field(default_factory=list)  # x of parked-car rows
    bend: float = 0.0  # the road curves: everything at distance z shifts sideways by bend * z^2
    rise: float = 0.0  # the road climbs ahead by this much (m), half of it at `rise_at` metres
    rise_at: float = 30.0

    def shift(self, z: np.ndarray | float) -> np.ndarray | float:
        return self.bend * np.square(z)

    def lift(self, z: np.ndarray | float) -> np.ndarray | float:
        """Ground height at distance z: a smooth climb that levels off (the horizon stays)."""
        x2 = np.square(np.maximum(z, 0.0) / self.rise_at)
        return self.rise * x2 / (1 + x2)

    def ground_depth(self, cam: Camera, scale: int = 1) -> np.ndarray:
        """Distance of the road surface seen in each image row (1e4 above it): a column."""
        rows = (np.arange(cam.height * scale, dtype=np.float64) + 0.5) / scale - 0.5
        zs = np.geomspace(0.5, 3000.0, 1024)
        vs = cam.cy + cam.focal * (cam.mount_height - self.lift(zs)) / zs
        vs = np.minimum.accumulate(vs)  # past a crest the road hides itself
        depth = np.interp(rows, vs[::-1], zs[::-1], left=1e4, right=zs[0])
        return np.where(rows < vs[-1], 1e4, depth).astype(np.float32)[:, None]


def bent(things: list[Thing], road: Road) -> list[Thing]:
    """Things placed on the straight, flat road, moved onto the curved, climbing one."""
    moved = []
    for t in things:
        middle = max(t.z + t.l / 2, 0.0)
        moved.append(replace(t, x=t.x + float(road.shift(middle)), base=float(road.lift(middle))))
    return moved


@dataclass
class Frame:
    road: Road
    things: list[Thing]
    skyline: np.ndarray  # heights (pixels at 97 rows) of the distant tree line / hills
    dash_phase: float = 0.0  # metres the lane dashes have moved (ego motion in a sequence)


def skyline(rng: np.random.Generator, n: int = 48) -> np.ndarray:
    return np.abs(np.cumsum(rng.normal(0, 0.6, n))) + rng.uniform(1.0, 3.0)


def urban_road(rng: np.random.Generator, kind: str, yellow: bool, bend: float = 0.0) -> Road:
    """Ego lane + oncoming lane, parking on one or both sides (KITTI/vKITTI2 streets)."""
    lw = rng.uniform(3.0, 3.5)
    park_r, park_l = rng.random() < 0.75, rng.random() < 0.5
    right = lw / 2 + (2.2 if park_r else 0.3)
    left = -1.5 * lw - (2.2 if park_l else 0.3)
    parking = ([right - 1.1] if park_r else []) + ([left + 1.1] if park_l else [])
    return Road([(0.0, 1), (-lw, -1)], left, right, rng.uniform(1.8, 3.0), kind, yellow, parking,
                bend)


def multilane_road(rng: np.random.Generator, kind: str, same: int, oncoming: int, yellow: bool,
                   bend: float = 0.0, park: bool = False) -> Road:
    """`same` lanes in our direction (ego in one of them), `oncoming` lanes on the left, parked
    cars along the kerbs if `park`."""
    lw = rng.uniform(3.3, 3.7)
    ego = int(rng.integers(0, same))
    lanes = [((k - ego) * lw, 1) for k in range(same)]
    lanes += [((-ego - 1 - k) * lw, -1) for k in range(oncoming)]
    xs = [x for x, _ in lanes]
    walk = 0.0 if kind == "highway" else rng.uniform(2.0, 3.5)
    left, right = min(xs) - lw / 2 - 0.6, max(xs) + lw / 2 + 0.6
    parking = []
    if park:
        left, right = left - 1.8, right + 1.8
        parking = [left + 1.1, right - 1.1]
    return Road(lanes, left, right, walk, kind, yellow, parking, bend)


def place_traffic(rng: np.random.Generator, road: Road, density: float, kinds: dict[str, float],
                  sim: bool, z_max: float = 70.0, ego_start: float | None = None) -> list[Thing]:
    """Queues of vehicles in every lane; density 1 = a traffic jam (1-3 m gaps).

    ego_start: where the ego lane's queue may begin (behind a vehicle placed by the caller)."""
    names, probs = list(kinds), np.array(list(kinds.values()), float)
    probs /= probs.sum()
    things = []
    for lane_x, heading in road.lanes:
        if density >= 0.8:  # a jam: the first row keeps some distance, or it hides everything
            z = rng.uniform(7.0, 12.0) if lane_x == 0 else rng.uniform(6.0, 12.0)
        else:
            z = rng.uniform(6.0, 10.0) if lane_x == 0 else rng.uniform(2.5, 9.0)
        if lane_x == 0 and ego_start is not None:
            z = ego_start
        if density < 0.8:
            z += rng.exponential(3 + 25 * (1 - density))
        while z < z_max:
            kind = str(rng.choice(names, p=probs))
            jitter = 0.45 if density >= 0.8 else 0.3  # queues in a jam are ragged
            vehicle = make_vehicle(rng, kind, lane_x + rng.normal(0, jitter), z, heading, sim)
            things.append(vehicle)
            if density >= 0.8:
                gap = rng.uniform(1.0, 3.5)
            else:
                gap = 2.0 + rng.exponential(4 + 45 * (1 - density))
            z += vehicle.l + gap
    for x in road.parking:
        z = rng.uniform(1.5, 6.0)
        while z < z_max:
            if rng.random() < 0.65:
                kind = "van" if rng.random() < 0.15 else "car"
                vehicle = make_vehicle(rng, kind, x + rng.normal(0, 0.1), z, 1, sim)
                vehicle.moving = False
                things.append(vehicle)
                z += vehicle.l + rng.uniform(0.8, 3.0)
            else:
                z += rng.uniform(4.0, 9.0)
    return things


def place_pedestrians(rng: np.random.Generator, road: Road, count: int, sim: bool) -> list[Thing]:
    if road.walk <= 0:
        return []
    things = []
    for _ in range(count):
        side = 1 if rng.random() < 0.5 else -1
        edge = road.right if side > 0 else road.left
        x = edge + side * rng.uniform(0.5, road.walk - 0.3)
        things.append(make_pedestrian(rng, x, rng.uniform(5.0, 35.0), sim))
    return things


def place_scenery(rng: np.random.Generator, road: Road, sim: bool, z_max: float = 160.0
                  ) -> list[Thing]:
    """Buildings / houses / trees / lamp posts / guard rails along both sides of the road."""
    things: list[Thing] = []
    wall_colors = ([(0.6, 0.75, 0.9), (0.5, 0.5, 0.8), (0.85, 0.85, 0.85), (0.4, 0.6, 0.7)]
                   if sim else [(0.55, 0.6, 0.65), (0.45, 0.5, 0.6), (0.7, 0.72, 0.74),
                                (0.35, 0.38, 0.45), (0.6, 0.62, 0.58)])
    leaves = (0.1, 0.6, 0.15) if sim else (0.17, 0.33, 0.24)
    for side in (1, -1):
        kerb = road.right if side > 0 else road.left
        edge = kerb + side * road.walk
        z = rng.uniform(-10.0, 3.0)
        while z < z_max:
            if road.kind == "urban":
                bw, bl, bh = rng.uniform(8, 14), rng.uniform(8, 22), rng.uniform(7, 22)
                setback = rng.uniform(0.3, 2.0)
            elif road.kind == "residential":
                bw, bl, bh = rng.uniform(7, 10), rng.uniform(7, 12), rng.uniform(5, 8)
                setback = rng.uniform(5.0, 9.0)
            else:
                break
            floors = max(1, int(bh / 3))
            thing = Thing("building", edge + side * (setback + bw / 2), z, 1, bh, bw, bl,
                          building_parts(bh, bw, bl, floors),
                          {"wall": wall_colors[rng.integers(len(wall_colors))]})
            things.append(thing)
            z += bl + rng.uniform(0.0, 5.0 if road.kind == "urban" else 10.0)
        z = rng.uniform(-5.0, 8.0)
        step = {"urban": (14, 30), "residential": (6, 14), "highway": (10, 40)}[road.kind]
        while z < z_max:
            x = {"urban": kerb + side * 0.7, "residential": edge + side * rng.uniform(1.0, 3.5),
                 "highway": kerb + side * rng.uniform(4.0, 14.0)}[road.kind]
            h = rng.uniform(5, 10)
            crown_color = tuple(c * rng.uniform(0.8, 1.15) for c in leaves)
            things.append(Thing("tree", x, z, 1, h, 0.3, 0.3,
                                tree_parts(h, rng.uniform(1.3, 2.6)), {"leaves": crown_color}))
            z += rng.uniform(*step)
        if road.kind != "residential":
            z = rng.uniform(0, 20)
            while z < z_max:
                pole_x = kerb + side * (0.35 if road.walk > 0 else 1.2)
                things.append(Thing("pole", pole_x, z, 1, 7, 0.14, 0.14,
                                    [Part(-0.07, 0.07, 0, 7.0, 0, 0.14, "pole")]))
                z += rng.uniform(25, 35)
        if road.kind == "highway":
            rail_x = kerb + side * 0.3
            for z in np.arange(-4.0, z_max, 12.0):  # pieces, so that they follow a bend
                things.append(Thing("rail", rail_x, float(z), 1, 0.8, 0.1, 12.05,
                                    [Part(-0.05, 0.05, 0.45, 0.8, 0, 12.05, "rail")]))
    return things


# ---------------------------------------------------------------------------------------------
# Looks: palettes, the painter, weather and the sensor
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Palette:
    """Colours and light for one look (sim clone, or a real weather/time of day)."""

    sky_top: Color
    sky_horizon: Color
    far: Color
    grass: Color
    walk: Color
    road: Color
    mark: Color
    centre_mark: Color
    roles: dict[str, Color]
    end_shade: float = 0.92
    side_shade: float = 0.7
    side_lit: float = 0.95
    top_shade: float = 1.1
    shadow: float = 0.5  # how much a vehicle's shadow darkens the ground
    sun_side: int = 0  # -1 sun from the left, +1 from the right, 0 diffuse
    clouds: float = 0.0


SIM_ROLES: dict[str, Color] = {
    "glass": (0.45, 0.25, 0.1), "tyre": (0.05, 0.05, 0.05), "trim": (0.2, 0.2, 0.2),
    "tail": (0.0, 0.0, 1.0), "head": (0.8, 1.0, 1.0), "plate": (1.0, 1.0, 1.0),
    "seam": (0.25, 0.25, 0.25), "sign": (0.0, 0.6, 1.0), "pole": (0.5, 0.5, 0.5),
    "rail": (0.75, 0.75, 0.75), "trunk": (0.1, 0.25, 0.4), "bwindow": (0.6, 0.4, 0.2),
    "hood": (0.15, 0.15, 0.15), "wall": (0.6, 0.7, 0.8), "leaves": (0.1, 0.6, 0.15),
    "cargo": (0.9, 0.9, 0.9), "stripe": (0.1, 0.1, 0.9)}
REAL_ROLES: dict[str, Color] = {
    "glass": (0.2, 0.16, 0.13), "tyre": (0.07, 0.07, 0.08), "trim": (0.16, 0.16, 0.17),
    "tail": (0.1, 0.1, 0.55), "head": (0.78, 0.84, 0.86), "plate": (0.82, 0.83, 0.84),
    "seam": (0.3, 0.3, 0.31), "sign": (0.1, 0.5, 0.75), "pole": (0.42, 0.43, 0.44),
    "rail": (0.6, 0.61, 0.62), "trunk": (0.14, 0.2, 0.26), "bwindow": (0.3, 0.26, 0.23),
    "hood": (0.14, 0.14, 0.15), "wall": (0.55, 0.6, 0.65), "leaves": (0.17, 0.33, 0.24),
    "cargo": (0.85, 0.85, 0.85), "stripe": (0.3, 0.3, 0.3)}

SIM_PALETTE = Palette((0.98, 0.72, 0.3), (0.98, 0.72, 0.3), (0.15, 0.5, 0.15), (0.15, 0.72, 0.25),
                      (0.72, 0.72, 0.72), (0.42, 0.42, 0.42), (1.0, 1.0, 1.0), (1.0, 1.0, 1.0),
                      SIM_ROLES, 0.9, 0.7, 0.7, 1.0, 0.45)


def real_palette(weather: str, timeofday: str, rng: np.random.Generator, us: bool) -> Palette:
    """Light and colours of a photographic frame; weather also shapes the post effects."""
    centre = (0.2, 0.7, 0.85) if us else (0.8, 0.82, 0.83)
    sun = 1 if rng.random() < 0.5 else -1
    pal = Palette((0.8, 0.58, 0.36), (0.93, 0.86, 0.79), (0.3, 0.38, 0.32), (0.22, 0.42, 0.37),
                  (0.58, 0.6, 0.61), (0.36, 0.37, 0.39), (0.8, 0.82, 0.83), centre, REAL_ROLES,
                  0.9, 0.62, 0.98, 1.12, 0.55, sun, rng.uniform(0.2, 0.7))
    if weather in ("overcast", "foggy"):
        grey = (0.72, 0.72, 0.71) if weather == "overcast" else (0.8, 0.8, 0.79)
        pal = replace(pal, sky_top=grey, sky_horizon=tuple(min(c + 0.07, 1) for c in grey),
                      side_shade=0.82, side_lit=0.86, top_shade=1.05, shadow=0.28, sun_side=0,
                      clouds=0.0)
    elif weather == "rainy":
        pal = replace(pal, sky_top=(0.46, 0.46, 0.45), sky_horizon=(0.6, 0.6, 0.59),
                      road=(0.22, 0.22, 0.24), grass=(0.17, 0.32, 0.28), walk=(0.42, 0.43, 0.44),
                      side_shade=0.8, side_lit=0.84, top_shade=1.05, shadow=0.3, sun_side=0,
                      clouds=0.0)
    if timeofday == "dawn/dusk":
        pal = replace(pal, sky_top=(0.55, 0.42, 0.42), sky_horizon=(0.5, 0.68, 0.95))
    return pal


MAT_SKY, MAT_FAR, MAT_GRASS, MAT_WALK, MAT_ROAD, MAT_MARK, MAT_SCENERY, MAT_OBJECT, MAT_GLASS = (
    range(9))
# Texture strength per material for the photographic look: (low-frequency, fine grain).
TEXTURE = {MAT_FAR: (0.12, 0.1), MAT_GRASS: (0.15, 0.14), MAT_WALK: (0.05, 0.05),
           MAT_ROAD: (0.05, 0.07), MAT_MARK: (0.08, 0.08), MAT_SCENERY: (0.06, 0.05),
           MAT_OBJECT: (0.02, 0.025), MAT_GLASS: (0.0, 0.02)}


def _lowfreq(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    small = rng.standard_normal((h // cell + 2, w // cell + 2)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _ground_strip(cam: Camera, road: Road, x0: float, x1: float, z0: float, z1: float,
                  pieces: int = 1) -> np.ndarray:
    """A ground band x0..x1 (before the bend) from z0 to z1, following the road's curve."""
    zs = np.geomspace(z0, z1, pieces + 1)
    offset, lift = road.shift(zs), road.lift(zs)
    edge = np.concatenate([np.stack([x0 + offset, lift, zs], 1),
                           np.stack([x1 + offset, lift, zs], 1)[::-1]])
    return cam.project(edge)


def _to_fixed(polygons: list[np.ndarray], scale: int) -> list[np.ndarray]:
    """Pixel-centre coordinates -> cv2 fixed point (4 fractional bits) at `scale`, in one go."""
    if len(polygons) == 1:
        return [np.round(((polygons[0] + 0.5) * scale - 0.5) * 16).astype(np.int32)]
    fixed = np.round(((np.concatenate(polygons) + 0.5) * scale - 0.5) * 16).astype(np.int32)
    return _split(fixed, [len(p) for p in polygons])


def paint(frame: Frame, cam: Camera, pal: Palette, real: bool, rng: np.random.Generator,
          seen: list[Seen], ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Draw the frame; returns (1x float32 BGR image, 1x material map).

    `seen`/`ids` (label_pass) give the paint order, what is hidden (not drawn at all) and which
    pixel belongs to which thing. Sim: 1x, flat colours, hard edges. Real: 2x supersampled, then
    at 1x textured surfaces and shaded bodies. Colour and material are drawn together, as a
    4-channel image, to halve the fill calls."""
    ss = 2 if real else 1
    h, w = cam.height * ss, cam.width * ss
    rows = (np.arange(h, dtype=np.float32) + 0.5) / ss - 0.5
    top = min(max(math.floor((cam.cy + 0.5) * ss - 0.5), 0), h)  # first row of the ground
    t = np.clip(rows[:top] / max(cam.cy, 1.0), 0, 1)[:, None] ** 0.7
    sky = np.array(pal.sky_top, np.float32) * (1 - t) + np.array(pal.sky_horizon, np.float32) * t
    canvas = np.empty((h, w, 4), np.float32)  # B, G, R, material
    canvas[:top, :, :3] = sky[:, None, :]
    canvas[:top, :, 3] = MAT_SKY
    if real and pal.clouds > 0 and top > 0:
        cloud = np.clip(_lowfreq(rng, top, w, 24 * ss) * 0.8 - 0.2, 0, 1) * pal.clouds
        canvas[:top, :, :3] += (cloud * (1 - t))[..., None] * (0.97 - canvas[:top, :, :3])
    canvas[top:] = (*pal.grass, MAT_GRASS)

    def fill(polygons: list[np.ndarray], color: Color, material: int, convex: bool = True,
             fixed: list[np.ndarray] | None = None) -> None:
        fixed = fixed if fixed is not None else _to_fixed(polygons, ss)
        value = (*color, float(material))
        if len(fixed) == 1 and convex:
            cv2.fillConvexPoly(canvas, fixed[0], value, cv2.LINE_8, shift=4)
        else:
            cv2.fillPoly(canvas, fixed, value, cv2.LINE_8, shift=4)

    # Distant tree line / skyline: a ragged band just above the horizon.
    us = np.linspace(-2, cam.width + 2, len(frame.skyline))
    band = np.concatenate([np.stack([us, cam.cy - frame.skyline * cam.height / 97], 1),
                           [[cam.width + 2, cam.cy + 1], [-2, cam.cy + 1]]])
    fill([band], pal.far, MAT_FAR, convex=False)
    road = frame.road
    if road.walk > 0:
        for x0, x1 in ((road.right, road.right + road.walk), (road.left - road.walk, road.left)):
            fill([_ground_strip(cam, road, x0, x1, 0.5, 400, 24)], pal.walk, MAT_WALK, False)
    fill([_ground_strip(cam, road, road.left, road.right, 0.5, 400, 24)], pal.road, MAT_ROAD,
         False)
    _paint_lines(fill, cam, road, pal, frame.dash_phase)

    # Shadows darken the ground before anything stands on it.
    shadow = np.zeros((h, w), np.float32)
    feet = [footprint(s.thing, cam, 0.35 * pal.sun_side) for s in seen
            if s.thing.kind in VEHICLE_KINDS or s.thing.kind == "pedestrian"]
    for pts in _to_fixed(feet, ss) if feet else []:
        cv2.fillConvexPoly(shadow, pts, 1.0, cv2.LINE_8, shift=4)
    if real:
        shadow = cv2.GaussianBlur(shadow, (0, 0), 1.2 * ss)
    canvas[top:, :, :3] *= (1 - pal.shadow * shadow[top:])[..., None]

    face_shade = {"end": pal.end_shade, "top": pal.top_shade, "blob": 1.0}
    for s in seen:
        if s.visible == 0:
            continue  # hidden behind nearer things (or off-screen)
        thing = s.thing
        is_object = thing.kind in VEHICLE_KINDS or thing.kind in ("pedestrian", "hood")
        groups = thing_polygons(thing, cam, details=s.box[3] - s.box[1] >= 4)
        fixed = _to_fixed([p for g in groups for p in g[0]], ss)
        start = 0
        for pts, role, face, _, _ in groups:
            group_fixed, start = fixed[start:start + len(pts)], start + len(pts)
            base = thing.colors.get(role) or pal.roles.get(role) or (1.0, 0.0, 1.0)
            shade = face_shade.get(face)
            if shade is None:  # a thing right of the camera shows its left face, and so on
                shown = -1 if pts[0][0, 0] > cam.cx else 1  # the way the face looks
                shade = pal.side_lit if shown == pal.sun_side else pal.side_shade
            material = (MAT_GLASS if role == "glass" else MAT_OBJECT) if is_object else MAT_SCENERY
            fill(pts, (base[0] * shade, base[1] * shade, base[2] * shade), material,
                 fixed=group_fixed)

    mat = canvas[ss // 2::ss, ss // 2::ss, 3].astype(np.uint8)
    if not real:
        return canvas[..., :3], mat
    img = cv2.resize(canvas, (cam.width, cam.height), interpolation=cv2.INTER_AREA)[..., :3]
    return _real_surfaces(img, mat, ids, seen, rng), mat


def _paint_lines(fill: Callable[..., None], cam: Camera, road: Road, pal: Palette,
                 phase: float) -> None:
    """Lane dashes between lanes of one direction, a solid centre line, solid edge lines."""
    xs = sorted(road.lanes)
    half = 0.5 * (xs[1][0] - xs[0][0]) if len(xs) > 1 else 1.75
    for (xa, ha), (xb, hb) in zip(xs, xs[1:], strict=False):
        xm = (xa + xb) / 2
        if ha != hb:
            color = pal.centre_mark
            offsets = (-0.12, 0.12) if road.yellow_centre else (0.0,)
            for o in offsets:
                fill([_ground_strip(cam, road, xm + o - 0.06, xm + o + 0.06, 0.5, 400, 24)], color,
                     MAT_MARK, convex=False)
            continue
        z = -(phase % 12.0)
        while z < 150:
            if z + 3.0 > 0.5:
                fill([_ground_strip(cam, road, xm - 0.07, xm + 0.07, max(z, 0.5), z + 3.0)],
                     pal.mark, MAT_MARK)
            z += 12.0
    for x in (xs[0][0] - half + 0.15, xs[-1][0] + half - 0.15):
        if road.left + 0.2 < x < road.right - 0.2:
            fill([_ground_strip(cam, road, x - 0.07, x + 0.07, 0.5, 400, 24)], pal.mark, MAT_MARK,
                 convex=False)


def _real_surfaces(img: np.ndarray, mat: np.ndarray, ids: np.ndarray, seen: list[Seen],
                   rng: np.random.Generator) -> np.ndarray:
    """Photographic surfaces at 1x: material textures, bodies lit from above, glass reflections."""
    h, w = mat.shape
    low, fine = _lowfreq(rng, h, w, 4), rng.standard_normal((h, w)).astype(np.float32)
    fine = cv2.GaussianBlur(fine, (0, 0), 0.45)
    amp_low, amp_fine = np.zeros(16, np.float32), np.zeros(16, np.float32)
    for material, (a, b) in TEXTURE.items():
        amp_low[material], amp_fine[material] = a, b
    factor = 1 + amp_low[mat] * low + amp_fine[mat] * fine
    # Body shading: lighter at the top (sky light), darker towards the sills.
    top = np.array([0.0] + [s.box[1] for s in seen], np.float32)
    height = np.array([1.0] + [max(s.box[3] - s.box[1], 1.0) for s in seen], np.float32)
    t = np.clip((np.arange(h, dtype=np.float32)[:, None] - top[ids]) / height[ids], 0, 1)
    body = 1.12 - 0.32 * t
    glass = 1.0 + 1.6 * np.clip(0.55 - t, 0, 1)
    factor *= np.where(mat == MAT_OBJECT, body, np.where(mat == MAT_GLASS, glass, 1.0))
    return img * factor[..., None]


def apply_real_weather(img: np.ndarray, weather: str, timeofday: str, depth: np.ndarray,
                       mat: np.ndarray, ids: np.ndarray, seen: list[Seen],
                       rng: np.random.Generator) -> np.ndarray:
    """BDD-like physical weather at 1x: depth haze, rain streaks/droplets/wet road, flat light."""
    if weather == "foggy":
        visibility = rng.uniform(55.0, 110.0)
        transmission = np.exp(-3.0 * depth / visibility)[..., None]
        airlight = np.array((0.8, 0.8, 0.79), np.float32) * rng.uniform(0.95, 1.03)
        img = img * transmission + airlight * (1 - transmission)
    elif weather == "rainy":
        img = _wet_road(img, mat, ids, seen)
        img = img * 0.9
        img = _rain_streaks(img, rng)
        img = _droplets(img, rng)
    elif weather == "overcast":
        mean = img.mean(axis=(0, 1), keepdims=True)
        img = mean + 0.7 * (img - mean)
        grey = img.mean(axis=2, keepdims=True)
        img = 0.65 * img + 0.35 * grey
    else:
        img = np.clip((img - 0.5) * 1.08 + 0.52, 0, 1)
    if timeofday == "dawn/dusk":
        img = img * np.array((0.72, 0.82, 1.0), np.float32) * 0.8
    return img.astype(np.float32)


def _wet_road(img: np.ndarray, mat: np.ndarray, ids: np.ndarray, seen: list[Seen]) -> np.ndarray:
    """Wet asphalt mirrors what stands on it: each vehicle's flipped image below its wheels."""
    h, w = mat.shape
    out = img.copy()
    ground = (ids == 0) & ((mat == MAT_ROAD) | (mat == MAT_MARK))
    for s in seen:  # far to near, so nearer reflections end on top
        if s.thing.kind not in VEHICLE_KINDS or s.visible == 0:
            continue
        c0, r0 = max(int(s.clipped[0]), 0), max(int(s.clipped[1]), 0)
        c1, r1 = min(int(math.ceil(s.clipped[2])), w - 1), min(int(math.ceil(s.clipped[3])), h - 1)
        span = min(r1 - r0 + 1, h - 1 - r1)
        if span <= 1 or c1 <= c0:
            continue
        mirrored = img[r1 - span + 1:r1 + 1, c0:c1 + 1][::-1]
        fade = np.linspace(0.45, 0.0, span, dtype=np.float32)[:, None, None]
        target = out[r1 + 1:r1 + 1 + span, c0:c1 + 1]
        where = ground[r1 + 1:r1 + 1 + span, c0:c1 + 1][..., None]
        target[:] = np.where(where, target * (1 - fade) + mirrored * fade, target)
    out = np.where(ground[..., None], cv2.blur(out, (1, 3)), out)
    return out


def _rain_streaks(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Thin bright slanted streaks at random places and lengths (motion-blurred drops)."""
    h, w = img.shape[:2]
    layer = np.zeros((h, w), np.float32)
    angle = math.radians(rng.uniform(8, 25) * (1 if rng.random() < 0.5 else -1))
    count = int(0.005 * h * w)
    xs, ys = rng.uniform(-10, w + 10, count), rng.uniform(-10, h, count)
    lengths = rng.uniform(4, 14, count) * h / 180
    strengths = rng.uniform(0.25, 0.8, count)
    for x, y, length, s in zip(xs, ys, lengths, strengths, strict=True):
        dx, dy = length * math.sin(angle), length * math.cos(angle)
        cv2.line(layer, (int(x * 16), int(y * 16)), (int((x + dx) * 16), int((y + dy) * 16)),
                 float(s), 1, cv2.LINE_AA, 4)
    layer = cv2.GaussianBlur(layer, (0, 0), 0.5)
    return 1 - (1 - img) * (1 - 0.45 * layer[..., None])


def _droplets(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Water on the windscreen: round blurred lenses with a dark rim."""
    h, w = img.shape[:2]
    lens = np.minimum(cv2.GaussianBlur(img, (0, 0), 2.5) * 1.12, 1)
    out = img.copy()
    for _ in range(int(rng.integers(3, 9))):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(2.5, 0.045 * h + 3)
        c0, c1 = max(int(cx - 1.5 * r), 0), min(int(cx + 1.5 * r) + 1, w)
        r0, r1 = max(int(cy - 1.5 * r), 0), min(int(cy + 1.5 * r) + 1, h)
        if c1 <= c0 or r1 <= r0:
            continue
        yy, xx = np.mgrid[r0:r1, c0:c1].astype(np.float32)
        dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / r
        inside = np.minimum(np.clip(1.2 - dist, 0, 1) * 5, 1.0)[..., None]
        rim = np.exp(-((dist - 0.95) ** 2) / 0.02)[..., None] * 0.25
        window = out[r0:r1, c0:c1]
        out[r0:r1, c0:c1] = (window * (1 - inside) + lens[r0:r1, c0:c1] * inside) * (1 - rim)
    return out


def _vignette(h: int, w: int) -> np.ndarray:
    yy = ((np.arange(h, dtype=np.float32) - h / 2) / (h / 2))[:, None]
    xx = ((np.arange(w, dtype=np.float32) - w / 2) / (w / 2))[None, :]
    return (1 - 0.12 * (xx * xx + yy * yy))[..., None]


def sensor(img: np.ndarray, rng: np.random.Generator, blur: float, noise: float) -> np.ndarray:
    """Optics and sensor: slight blur, vignetting, luminance + chroma noise; -> uint8."""
    h, w = img.shape[:2]
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), blur) * _vignette(h, w)
    luma = rng.standard_normal((h, w, 1)).astype(np.float32) * noise
    chroma = rng.standard_normal((h, w, 3)).astype(np.float32) * noise * 0.4
    return np.clip((img + luma + chroma) * 255 + 0.5, 0, 255).astype(np.uint8)


def sim_variation(clone: np.ndarray, variation: str) -> np.ndarray:
    """vKITTI2's own rendered looks: uniform grey fog, regular rain lines, tints. No noise."""
    img = clone.astype(np.float32)
    if variation == "fog":
        img = 0.45 * img + 0.55 * np.float32(0.78)
    elif variation == "rain":
        img = img * 0.8
        h, w = img.shape[:2]
        lines = np.zeros((h, w, 1), np.float32)  # a fixed grid of short vertical strokes
        for y in range(0, h, 9):
            for x in range((y // 9) % 2 * 6, w, 12):
                cv2.line(lines, (x, y), (x, min(y + 3, h - 1)), 0.5, 1, cv2.LINE_8)
        img = img * (1 - lines) + np.float32(0.85) * lines
    elif variation == "overcast":
        grey = img.mean(axis=2, keepdims=True)
        img = (0.35 * img + 0.65 * grey) * 0.9
    elif variation == "morning":
        img = img * np.array((0.82, 0.97, 1.12), np.float32) + 0.03
    elif variation == "sunset":
        img = img * np.array((0.55, 0.72, 1.08), np.float32)
    elif variation != "clone":
        raise ValueError(f"unknown vKITTI2 variation {variation!r}")
    return np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)


def _encode(img: np.ndarray, ext: str, quality: int = JPEG_QUALITY_BDD) -> bytes:
    params = ([cv2.IMWRITE_JPEG_QUALITY, quality] if ext == ".jpg"
              else [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    ok, data = cv2.imencode(ext, img, params)
    if not ok:
        raise RuntimeError(f"could not encode a {ext} image")
    return data.tobytes()


def render_real(frame: Frame, cam: Camera, pal: Palette, weather: str, timeofday: str,
                rng: np.random.Generator) -> tuple[np.ndarray, list[Seen]]:
    """A photographic frame (uint8 BGR) and what each thing looks like in it."""
    seen, ids, depth = label_pass(paint_order(frame.things), cam, frame.road)
    img, mat = paint(frame, cam, pal, True, rng, seen, ids)
    img = apply_real_weather(img, weather, timeofday, depth, mat, ids, seen, rng)
    blur = 0.75 if weather == "foggy" else 0.55
    return sensor(img, rng, blur, rng.uniform(0.012, 0.022)), seen


# ---------------------------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------------------------


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


def _f2(value: float) -> str:
    return f"{round(value, 2) or 0.0:.2f}"  # `or 0.0` turns -0.0 into 0.0


def kitti_lines(seen: list[Seen], cam: Camera, rng: np.random.Generator) -> list[str]:
    """KITTI object labels: 15 fields per line; tiny far vehicles become DontCare regions."""
    lines = []
    for s in seen:
        t = s.thing
        if t.label is None or s.pixels == 0:
            continue
        x1, y1, x2, y2 = s.clipped
        if not s.labelled:
            if (s.visible_fraction >= MIN_VISIBLE_FRACTION and y2 - y1 >= 2
                    and t.kind in VEHICLE_KINDS and rng.random() < 0.6):
                lines.append(f"DontCare -1 -1 -10 {_f2(x1)} {_f2(y1)} {_f2(x2)} {_f2(y2)} "
                             "-1 -1 -1 -1000 -1000 -1000 -10")
            continue
        vf = s.visible_fraction
        level = 0 if vf >= OCCLUDED_BELOW else (1 if vf >= LARGELY_OCCLUDED_BELOW else 2)
        if t.z > 28 and rng.random() < 0.3:
            level = 3  # KITTI annotators left far objects' occlusion "unknown"
        z_centre = t.z + t.l / 2
        ry = -math.pi / 2 if t.heading >= 0 else math.pi / 2
        alpha = _wrap(ry - math.atan2(t.x, z_centre))
        lines.append(" ".join([t.label, _f2(s.truncation), str(level), _f2(alpha), _f2(x1),
                               _f2(y1), _f2(x2), _f2(y2), _f2(t.h), _f2(t.w), _f2(t.l),
                               _f2(t.x), _f2(cam.mount_height), _f2(z_centre), _f2(ry)]))
    return lines


def kitti_frame(rng: np.random.Generator) -> Frame:
    """A KITTI-like street: mostly urban/residential two-lane roads with parked cars."""
    kind = str(rng.choice(["urban", "residential", "highway"], p=[0.45, 0.4, 0.15]))
    bend = float(np.clip(rng.normal(0, 0.0015), -0.003, 0.003))
    if kind == "highway":
        road = multilane_road(rng, kind, int(rng.integers(2, 4)), 0, False, bend)
    else:
        road = urban_road(rng, kind, False, bend)
    things = place_traffic(rng, road, rng.uniform(0.35, 0.78),
                           {"car": 0.74, "van": 0.14, "truck": 0.12}, sim=False)
    things += place_pedestrians(rng, road, int(rng.integers(0, 4)), sim=False)
    for t in things:
        t.label = KITTI_TYPE[t.kind]
    return Frame(road, bent(things + place_scenery(rng, road, sim=False), road), skyline(rng),
                 rng.uniform(0, 12))


def write_kitti(root: Path, cfg: SampleConfig, seed: int) -> None:
    image_dir, label_dir = root / "training" / "image_2", root / "training" / "label_2"
    image_dir.mkdir(parents=True)
    label_dir.mkdir(parents=True)
    cam = kitti_camera(cfg.width)
    for index in tqdm(range(cfg.kitti_frames), desc="sample kitti", unit="img", leave=False):
        rng = np.random.default_rng([seed, STREAM_KITTI, index])
        frame = kitti_frame(rng)
        img, seen = render_real(frame, cam, real_palette("clear", "daytime", rng, False),
                                "clear", "daytime", rng)
        lines = kitti_lines(seen, cam, rng)
        if not lines:  # a real KITTI label file is never empty
            lines = ["DontCare -1 -1 -10 0.00 0.00 1.00 1.00 -1 -1 -1 -1000 -1000 -1000 -10"]
        (image_dir / f"{index:06d}.png").write_bytes(_encode(img, ".png"))
        (label_dir / f"{index:06d}.txt").write_text("\n".join(lines) + "\n")


# vKITTI2 ------------------------------------------------------------------------------------

VKITTI2_CLASSES = {"car": "Car", "van": "Van", "truck": "Truck"}
TRAP_CLASSES = ("car", "truck", "van")  # track 0's class in scene k: the same id, another class
FRAME_DT = 0.1  # seconds between frames (10 Hz, like KITTI)


@dataclass
class Track:
    thing: Thing
    speed: float  # m/s relative to the ego car (negative: the gap closes)


def vkitti2_scene(rng: np.random.Generator, scene_index: int, n_frames: int
                  ) -> tuple[Road, list[Track], list[Thing], np.ndarray, float]:
    """One sequence: road, tracks (ids 0.. in this scene), scenery, skyline, ego speed (m/s)."""
    kind = ("urban", "residential")[scene_index % 2]
    road = urban_road(rng, kind, False)
    ego_speed = rng.uniform(6.0, 9.0)
    travel = ego_speed * FRAME_DT * n_frames
    lead = make_vehicle(rng, TRAP_CLASSES[scene_index % len(TRAP_CLASSES)], rng.normal(0, 0.15),
                        rng.uniform(8.0, 12.0), 1, sim=True)
    things = [lead] + place_traffic(rng, road, rng.uniform(0.3, 0.7),
                                    {"car": 0.7, "van": 0.15, "truck": 0.15}, sim=True,
                                    z_max=70 + travel, ego_start=lead.z + lead.l + 3.0)
    tracks = []
    for track_id, thing in enumerate(things):
        thing.track_id, thing.label = track_id, VKITTI2_CLASSES[thing.kind]
        if not thing.moving:
            speed = -ego_speed
        elif thing.heading < 0:
            speed = -ego_speed - rng.uniform(6.0, 10.0)
        else:
            speed = rng.uniform(-1.0, 1.5)
        tracks.append(Track(thing, speed))
    scenery = place_scenery(rng, road, sim=True, z_max=160 + travel)
    return road, tracks, scenery, skyline(rng), ego_speed


def write_vkitti2(root: Path, cfg: SampleConfig, seed: int) -> None:
    cam = vkitti2_camera(cfg.width)
    for scene_index in range(cfg.vkitti2_scenes):
        rng = np.random.default_rng([seed, STREAM_VKITTI2, scene_index])
        scene = f"Scene{scene_index + 1:02d}"
        road, tracks, scenery, hills, ego_speed = vkitti2_scene(rng, scene_index,
                                                                cfg.vkitti2_frames_per_scene)
        info = ["trackID label model color"] + [
            f"{tr.thing.track_id} {tr.thing.label} {tr.thing.model} {tr.thing.color_name}"
            for tr in tracks]
        rows = ["frame cameraID trackID left right top bottom number_pixels truncation_ratio "
                "occupancy_ratio isMoving"]
        image_dirs = {}
        for variation in VKITTI2_VARIATIONS:
            image_dirs[variation] = root / scene / variation / "frames" / "rgb" / "Camera_0"
            image_dirs[variation].mkdir(parents=True)
        frames = range(cfg.vkitti2_frames_per_scene)
        for frame_index in tqdm(frames, desc=f"sample vkitti2 {scene}", unit="frame", leave=False):
            elapsed = frame_index * FRAME_DT
            things = []
            for tr in tracks:
                z = tr.thing.z + tr.speed * elapsed
                if 2.0 <= z <= 120.0:
                    things.append(replace(tr.thing, z=z))
            things += [replace(t, z=t.z - ego_speed * elapsed) for t in scenery
                       if t.z + t.l - ego_speed * elapsed > NEAR_PLANE]
            frame = Frame(road, things, hills, ego_speed * elapsed)
            ordered = paint_order(frame.things)
            seen, ids, _ = label_pass(ordered, cam, road)
            clone, _ = paint(frame, cam, SIM_PALETTE, False, rng, seen, ids)
            for variation in VKITTI2_VARIATIONS:
                data = _encode(sim_variation(clone, variation), ".jpg", JPEG_QUALITY_SIM)
                (image_dirs[variation] / f"rgb_{frame_index:05d}.jpg").write_bytes(data)
            rows += [_bbox_row(frame_index, s) for s in seen if s.labelled]
        for variation in VKITTI2_VARIATIONS:
            (root / scene / variation / "bbox.txt").write_text("\n".join(rows) + "\n")
            (root / scene / variation / "info.txt").write_text("\n".join(info) + "\n")


def _bbox_row(frame_index: int, s: Seen) -> str:
    """One bbox.txt row; occupancy_ratio = number_pixels / box area, as in the real files."""
    left, top = math.floor(s.clipped[0]), math.floor(s.clipped[1])
    right, bottom = math.ceil(s.clipped[2]), math.ceil(s.clipped[3])
    area = max((right - left) * (bottom - top), 1)
    occupancy = min(s.visible / area, 1.0)
    return (f"{frame_index} 0 {s.thing.track_id} {left} {right} {top} {bottom} {s.visible} "
            f"{s.truncation:.7g} {occupancy:.7g} {s.thing.moving}")


# BDD100K -------------------------------------------------------------------------------------

BDD_SCENES = ("city street", "highway", "residential")


def bdd_frame(rng: np.random.Generator, density: float, jam: bool) -> tuple[Frame, str]:
    """A US dashcam street (yellow centre line) without scenery (see bdd_scenery); jams are
    multi-lane city streets / highways."""
    scene = str(rng.choice(["city street", "highway"] if jam else BDD_SCENES))
    bend = rng.uniform(0.0015, 0.004) * (1 if rng.random() < 0.5 else -1)
    if rng.random() < 0.3 and not jam:
        bend = 0.0
    if scene == "highway":
        road = multilane_road(rng, "highway", int(rng.integers(5, 7) if jam else
                                                   rng.integers(2, 5)), 0, True, bend)
    elif scene == "city street":
        same = int(rng.integers(4, 6) if jam else rng.integers(1, 4))
        road = multilane_road(rng, "urban", same, int(rng.integers(1, 3)), True, bend,
                              park=rng.random() < (0.8 if jam else 0.4))
    else:
        road = urban_road(rng, "residential", True, bend)
    if jam or rng.random() < 0.3:  # the road climbs ahead: far vehicles show over near ones
        road.rise, road.rise_at = rng.uniform(3.0, 6.0), rng.uniform(25.0, 35.0)
    if jam:  # big vehicles in a jam hide everything behind them
        kinds = {"car": 0.76, "van": 0.1, "truck": 0.08, "bus": 0.04, "other": 0.02}
    else:
        kinds = {"car": 0.66, "van": 0.08, "truck": 0.14, "bus": 0.08, "other": 0.04}
    things = place_traffic(rng, road, density, kinds, sim=False, z_max=60.0)
    things += place_pedestrians(rng, road, int(rng.integers(0, 5)), sim=False)
    for t in things:
        t.label = BDD_CATEGORY[t.kind]
    things = bent(things, road)
    if rng.random() < 0.7:
        things.append(Thing("hood", 0.0, 0.5, 1, 0, 0, 0, [], {}))
    return Frame(road, things, skyline(rng), rng.uniform(0, 12)), scene


def bdd_scenery(rng: np.random.Generator, frame: Frame) -> Frame:
    """Add the roadside (scenery never occludes road users, so labels do not change)."""
    scenery = bent(place_scenery(rng, frame.road, sim=False), frame.road)
    return replace(frame, things=frame.things + scenery)


def bdd_labels(seen: list[Seen], rng: np.random.Generator, crowd: bool, width: int = 0
               ) -> list[dict]:
    """det_20 labels; with `crowd`, one crowd "car" box over a cluster of far vehicles that are
    too small or too hidden to label one by one (BDD annotates such groups that way)."""
    labels, far = [], []
    for s in seen:
        if s.thing.label is None or s.pixels == 0:
            continue
        if s.labelled:
            labels.append(_bdd_label(s.thing.label, s.clipped, s.occluded, s.truncation > 1e-3,
                                     False))
        elif s.thing.kind in VEHICLE_KINDS and s.thing.z >= 25 and s.visible >= 2:
            far.append(s)
    if crowd and len(far) >= 3:
        seed = max(far, key=lambda s: s.visible)
        centre = (seed.clipped[0] + seed.clipped[2]) / 2
        group = [s.clipped for s in far if abs((s.clipped[0] + s.clipped[2]) / 2 - centre)
                 <= 0.1 * (width or 2 * centre)]
        x1, y1 = min(b[0] for b in group), min(b[1] for b in group)
        x2, y2 = max(b[2] for b in group), max(b[3] for b in group)
        if len(group) >= 3 and x2 - x1 >= 8 and y2 - y1 >= 3:
            labels.append(_bdd_label("car", (x1, y1, x2, y2), True, False, True))
    return labels


def _bdd_label(category: str, box: tuple[float, ...], occluded: bool, truncated: bool,
               crowd: bool) -> dict:
    x1, y1, x2, y2 = (round(v, 3) for v in box)
    return {"id": "", "category": category,
            "attributes": {"occluded": occluded, "truncated": truncated, "crowd": crowd},
            "box2d": {"x1": x1, "y1": y1, "x2": x2, "y2": y2}}


def n_occluded_vehicles(labels: list[dict]) -> int:
    """What evaluation buckets by: occluded car/truck labels, crowd boxes included."""
    return sum(1 for lab in labels
               if lab["category"] in BDD_COUNTED and lab["attributes"]["occluded"])


def bucket_of(count: int) -> int:
    return next(i for i, (lo, hi) in enumerate(BDD_BUCKETS) if lo <= count <= hi)


# Per occlusion bucket: (traffic density range, jam, tall camera) that usually land in it.
BUCKET_TRAFFIC = (((0.05, 0.6), False, False), ((0.8, 1.0), True, False), ((0.8, 1.0), True, True))


def bdd_val_frame(rng: np.random.Generator, target: int, width: int, tries: int = 60
                  ) -> tuple[Frame, Camera, str, list[Seen], list[dict]]:
    """A val frame whose occluded-vehicle count lands in bucket `target`: traffic is redrawn
    until it does (about 2 draws for the 11+ bucket). After `tries` misses the closest draw is
    kept (the spread test in tests/test_sample_world.py would show it)."""
    (low, high), jam, tall = BUCKET_TRAFFIC[target]
    best, best_miss = None, None
    for _ in range(tries):
        cam = bdd_camera(width, rng, tall)
        frame, scene = bdd_frame(rng, rng.uniform(low, high), jam)
        seen, _, _ = label_pass(paint_order(frame.things), cam)
        labels = bdd_labels(seen, rng, target == 2 and rng.random() < 0.35, width)
        lo, hi = BDD_BUCKETS[target]
        count = n_occluded_vehicles(labels)
        miss = max(lo - count, count - hi, 0)
        if best_miss is None or miss < best_miss:
            best, best_miss = (frame, cam, scene, seen, labels), miss
        if miss == 0:
            break
    assert best is not None
    return best


def bdd_records(split: str, frames_per_weather: int, width: int, seed: int
                ) -> Iterator[tuple[dict, Frame, Camera, np.random.Generator]]:
    """The det_20 record of every frame of a split, with the scene and the frame's Generator to
    render it. Labels never depend on rendering, so tests can check them without drawing."""
    stream = STREAM_BDD_VAL if split == "val" else STREAM_BDD_TRAIN
    label_id = 0
    for index in range(frames_per_weather * len(BDD_WEATHERS)):
        rng = np.random.default_rng([seed, stream, index])
        weather = BDD_WEATHERS[index % len(BDD_WEATHERS)]
        timeofday = "dawn/dusk" if rng.random() < 0.15 else "daytime"
        if split == "val":  # buckets cycle within each weather: every weather spans all three
            target = (index // len(BDD_WEATHERS)) % len(BDD_BUCKETS)
            frame, cam, scene, _, labels = bdd_val_frame(rng, target, width)
        else:
            cam = bdd_camera(width, rng)
            frame, scene = bdd_frame(rng, rng.uniform(0.05, 1.0), jam=rng.random() < 0.3)
            seen, _, _ = label_pass(paint_order(frame.things), cam)
            labels = bdd_labels(seen, rng, rng.random() < 0.1, width)
        for label in labels:
            label["id"] = str(label_id)
            label_id += 1
        record = {"name": f"s2r-{split}-{index:06d}.jpg",
                  "attributes": {"weather": weather, "timeofday": timeofday, "scene": scene},
                  "timestamp": 10000, "labels": labels}
        yield record, frame, cam, rng


def write_bdd(root: Path, cfg: SampleConfig, seed: int) -> None:
    image_root, label_root = root / "images" / "100k", root / "labels" / "det_20"
    label_root.mkdir(parents=True)
    for split, per_weather in (("train", cfg.bdd_train_frames_per_weather),
                               ("val", cfg.bdd_val_frames_per_weather)):
        (image_root / split).mkdir(parents=True)
        records = []
        for record, frame, cam, rng in tqdm(bdd_records(split, per_weather, cfg.width, seed),
                                            desc=f"sample bdd {split}", unit="img",
                                            total=per_weather * len(BDD_WEATHERS), leave=False):
            weather, timeofday = record["attributes"]["weather"], record["attributes"]["timeofday"]
            pal = real_palette(weather, timeofday, rng, us=True)
            img, _ = render_real(bdd_scenery(rng, frame), cam, pal, weather, timeofday, rng)
            (image_root / split / record["name"]).write_bytes(_encode(img, ".jpg",
                                                                     JPEG_QUALITY_BDD))
            records.append(record)
        (label_root / f"det_{split}.json").write_text(json.dumps(records, separators=(",", ":")))


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


def world_paths(root: Path) -> SampleWorld:
    root = Path(root)
    labels = root / "bdd100k" / "labels" / "det_20"
    return SampleWorld(root / "kitti", root / "vkitti2", root / "bdd100k" / "images" / "100k",
                       labels / "det_train.json", labels / "det_val.json")


def write_sample_world(root: Path, cfg: SampleConfig, seed: int) -> SampleWorld:
    """Write the whole sample world under `root` (replacing it atomically) and say where it is."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    root = Path(root).resolve()
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        write_kitti(tmp / "kitti", cfg, seed)
        (tmp / "vkitti2").mkdir()
        write_vkitti2(tmp / "vkitti2", cfg, seed)
        write_bdd(tmp / "bdd100k", cfg, seed)
        _replace_dir(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return world_paths(root)


def _replace_dir(new: Path, target: Path) -> None:
    """Swap a finished directory into place; the old one is removed only after the swap."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / "world")
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# README picture
# ---------------------------------------------------------------------------------------------

BOX_COLORS: dict[str, tuple[int, int, int]] = {
    "car": (80, 220, 60), "van": (230, 200, 40), "truck": (30, 150, 255), "bus": (220, 60, 220),
    "pedestrian": (60, 60, 255)}


def _kitti_boxes(path: Path) -> list[tuple[str, tuple[float, ...], bool]]:
    boxes = []
    for line in path.read_text().splitlines():
        f = line.split()
        boxes.append((f[0].lower(), tuple(float(v) for v in f[4:8]), f[2] in ("1", "2")))
    return boxes


def _vkitti2_boxes(scene_dir: Path, frame: int) -> list[tuple[str, tuple[float, ...], bool]]:
    info = {}
    for line in (scene_dir / "info.txt").read_text().splitlines()[1:]:
        f = line.split()
        info[f[0]] = f[1].lower()
    boxes = []
    for line in (scene_dir / "bbox.txt").read_text().splitlines()[1:]:
        f = line.split()
        if int(f[0]) == frame:
            left, right, top, bottom = (float(v) for v in f[3:7])
            boxes.append((info[f[2]], (left, top, right, bottom), float(f[9]) < 0.75))
    return boxes


def _draw_tile(image: np.ndarray, boxes: list[tuple[str, tuple[float, ...], bool]], scale: int,
               title: str) -> np.ndarray:
    tile = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    for name, (x1, y1, x2, y2), occluded in boxes:
        color = BOX_COLORS.get(name, (160, 160, 160))
        p1 = (round(x1 * scale), round(y1 * scale))
        p2 = (round((x2 + 1) * scale) - 1, round((y2 + 1) * scale) - 1)
        cv2.rectangle(tile, p1, p2, color, 1 if occluded else 2, cv2.LINE_AA)
    bar = np.full((22, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, title, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, tile])


def render_overview(root: Path, out_png: Path, scale: int = 2) -> Path:
    """One picture of a written world: a row per domain, boxes drawn (thin = occluded).

    Rows: KITTI (the 4 busiest of the first 12 frames) | vKITTI2 clone/fog/rain/overcast (one
    frame) | BDD val clear/foggy/rainy/overcast (the busiest daytime frame of each weather).
    Reads the files on disk with plain parsing, so it shows exactly what the readers get."""
    world = world_paths(Path(root))
    label_dir = world.kitti_root / "training" / "label_2"
    kitti = sorted((world.kitti_root / "training" / "image_2").glob("*.png"))[:12]
    if not kitti:
        raise FileNotFoundError(f"{world.kitti_root}: no KITTI frames (write the world first)")
    boxes = {p: _kitti_boxes(label_dir / f"{p.stem}.txt") for p in kitti}
    kitti = sorted(sorted(kitti, key=lambda p: -len(boxes[p]))[:4])
    rows = [[_draw_tile(cv2.imread(str(p)), boxes[p], scale, f"KITTI {p.stem}") for p in kitti]]
    scene = sorted(world.vkitti2_root.glob("Scene*"))[0]
    frames = sorted((scene / "clone" / "frames" / "rgb" / "Camera_0").glob("rgb_*.jpg"))
    frame = int(frames[len(frames) // 2].stem[4:])
    rgb = f"frames/rgb/Camera_0/rgb_{frame:05d}.jpg"
    rows.append([_draw_tile(cv2.imread(str(scene / v / rgb)), _vkitti2_boxes(scene / v, frame),
                            scale, f"vKITTI2 {scene.name} {v}")
                 for v in ("clone", "fog", "rain", "overcast")])
    records = json.loads(world.bdd100k_labels_val.read_text())
    tiles = []
    for weather in BDD_WEATHERS:
        record = max((r for r in records if r["attributes"]["weather"] == weather),
                     key=lambda r: (r["attributes"]["timeofday"] == "daytime", len(r["labels"])))
        boxes = [(lab["category"], tuple(lab["box2d"][k] for k in ("x1", "y1", "x2", "y2")),
                  lab["attributes"]["occluded"]) for lab in record["labels"]]
        n = n_occluded_vehicles(record["labels"])
        tiles.append(_draw_tile(cv2.imread(str(world.bdd100k_images / "val" / record["name"])),
                                boxes, scale, f"BDD {weather}: {n} occluded vehicles"))
    rows.append(tiles)
    width = max(sum(t.shape[1] for t in row) + 4 * (len(row) - 1) for row in rows)
    canvas = []
    for row in rows:
        height = max(t.shape[0] for t in row)
        line = np.full((height, width, 3), 255, np.uint8)
        x = 0
        for t in row:
            line[:t.shape[0], x:x + t.shape[1]] = t
            x += t.shape[1] + 4
        canvas += [line, np.full((6, width, 3), 255, np.uint8)]
    legend = np.full((22, width, 3), 255, np.uint8)
    x = 4
    for name, color in [*BOX_COLORS.items(), ("ignored / other", (160, 160, 160))]:
        cv2.rectangle(legend, (x, 5), (x + 14, 17), color, 2)
        cv2.putText(legend, name, (x + 20, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
        x += 40 + 9 * len(name)
    cv2.putText(legend, "thin box = occluded", (x + 10, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (0, 0, 0), 1, cv2.LINE_AA)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_png.with_name(f".{out_png.name}.tmp")
    ok, data = cv2.imencode(".png", np.vstack([*canvas, legend]),
                            [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise RuntimeError(f"could not encode {out_png}")
    tmp.write_bytes(data.tobytes())
    os.replace(tmp, out_png)
    return out_png
