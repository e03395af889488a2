"""Things in the world as a few 3-D parts each: vehicles (car, van, truck, bus, trailer),
pedestrians, buildings and trees; the vehicle catalogue (sizes, dataset class names, paints) and
make_vehicle / make_pedestrian, which draw one at random."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from data.sample.config import Color


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
        # what still identifies a box truck when the traffic in front hides all but the top of
        # its rear: the door frame's header, the doors' locking bars, and the red clearance lamps
        # at the top corners with the three identification lamps between them (US/EU rules)
        Detail("back", 0.0, 1.0, 0.93, 1.0, "trim"),
        *_pair("back", 0.2, 0.23, 0.06, 0.9, "trim"),
        *_pair("back", 0.36, 0.39, 0.06, 0.9, "trim"),
        *_pair("back", 0.02, 0.09, 0.86, 0.92, "tail"),
        *_pair("back", 0.41, 0.46, 0.86, 0.92, "tail"),
        Detail("back", 0.475, 0.525, 0.86, 0.92, "tail"),
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
KITTI_TYPE = {"car": "Car", "van": "Van", "truck": "Truck", "bus": "Misc",  # KITTI has no Bus
              "pedestrian": "Pedestrian"}
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
