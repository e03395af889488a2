"""How frames look: palettes, the painter (flat "sim" for vKITTI2, supersampled and textured
"photographic" for KITTI / BDD100K), BDD's physical weather (haze, rain, wet road, overcast
light), the sensor model, and vKITTI2's own sim weather variations.

OpenCV only rasterises here (integer polygons and lines) and encodes; every float filter, exp and
power goes through exact.py, so a frame has the same bits on every CPU."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from data.sample import exact
from data.sample.camera import Camera
from data.sample.config import Color
from data.sample.projection import (
    Seen,
    _split,
    footprint,
    label_pass,
    paint_order,
    thing_polygons,
)
from data.sample.road import Frame, Road
from data.sample.things import VEHICLE_KINDS


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
    return exact.resize_cubic(small, w, h)


def _ground_strip(cam: Camera, road: Road, x0: float, x1: float, z0: float, z1: float,
                  pieces: int = 1) -> np.ndarray:
    """A ground band x0..x1 (before the bend) from z0 to z1, following the road's curve."""
    zs = exact.geomspace(z0, z1, pieces + 1)
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
    t = exact.powers(np.clip(rows[:top] / max(cam.cy, 1.0), 0, 1)[:, None], 0.7)
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
        shadow = exact.gaussian_blur_sparse(shadow, 1.2 * ss)  # zero off the footprints
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
    img = exact.downsample2(canvas[..., :3])  # ss = 2: each pixel the mean of its 2 x 2
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
    fine = exact.gaussian_blur(fine, 0.45)
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
        transmission = exact.exp(-3.0 * depth / visibility).astype(np.float32)[..., None]
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
    out = np.where(ground[..., None], exact.box_blur_rows3(out), out)
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
                 float(s), 1, cv2.LINE_8, 4)  # what LINE_AA draws on a float image
    layer = exact.gaussian_blur(layer, 0.5)
    return 1 - (1 - img) * (1 - 0.45 * layer[..., None])


def _droplets(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Water on the windscreen: round blurred lenses with a dark rim."""
    h, w = img.shape[:2]
    lens = np.minimum(exact.gaussian_blur(img, 2.5) * 1.12, 1)
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
        rim = exact.exp(-((dist - 0.95) ** 2) / 0.02).astype(np.float32)[..., None] * 0.25
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
    img = exact.gaussian_blur(img, blur) * _vignette(h, w)
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



def render_real(frame: Frame, cam: Camera, pal: Palette, weather: str, timeofday: str,
                rng: np.random.Generator) -> tuple[np.ndarray, list[Seen]]:
    """A photographic frame (uint8 BGR) and what each thing looks like in it."""
    seen, ids, depth = label_pass(paint_order(frame.things), cam, frame.road)
    img, mat = paint(frame, cam, pal, True, rng, seen, ids)
    img = apply_real_weather(img, weather, timeofday, depth, mat, ids, seen, rng)
    blur = 0.75 if weather == "foggy" else 0.55
    return sensor(img, rng, blur, rng.uniform(0.012, 0.022)), seen
