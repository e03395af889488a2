"""Scene layout: the road (lanes, kerbs, parking rows, bend and climb), the Frame that holds one
scene, and the placement of traffic queues, pedestrians and roadside scenery."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from data.sample import exact
from data.sample.camera import Camera
from data.sample.things import (
    Part,
    Thing,
    building_parts,
    make_pedestrian,
    make_vehicle,
    tree_parts,
)


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
        zs = exact.geomspace(0.5, 3000.0, 1024)  # numpy's log/power differ across CPUs
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
