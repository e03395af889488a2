"""What the camera sees: things projected to image polygons (faces and details, in painting
order), and the label pass that rasterises silhouettes far to near into boxes, visible fractions
(occlusion), an id map and a depth map."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from data.sample.camera import Camera
from data.sample.config import (
    MIN_BOX_HEIGHT,
    MIN_VISIBLE_FRACTION,
    NEAR_PLANE,
    OCCLUDED_BELOW,
)
from data.sample.exact import unit_circle
from data.sample.road import Road
from data.sample.things import VEHICLE_KINDS, Thing

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
    cos, sin = unit_circle(n)
    return np.stack([cu + ru * cos, cv + rv * sin], axis=1)


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
    # The clipped box shrunk to the pixels left visible (the clipped box itself where nothing is
    # visible): what KITTI and BDD100K annotators draw around an occluded vehicle.
    visible_box: tuple[float, float, float, float]

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
                and self.visible_box[3] - self.visible_box[1] >= MIN_BOX_HEIGHT)

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
        seen.append(Seen(thing, box, clipped, count, int(visible[index + 1]),
                         _visible_box(ids, index + 1, clipped) if visible[index + 1] else clipped))
    return seen, ids, depth


def _visible_box(ids: np.ndarray, thing_id: int, clipped: tuple[float, float, float, float]
                 ) -> tuple[float, float, float, float]:
    """The clipped box cut back to the extent of the thing's visible pixels (pixel c covers
    c - 0.5 .. c + 0.5), so an unoccluded side keeps its sub-pixel position."""
    c0, r0 = max(math.floor(clipped[0]), 0), max(math.floor(clipped[1]), 0)
    window = ids[r0:math.ceil(clipped[3]) + 1, c0:math.ceil(clipped[2]) + 1] == thing_id
    rows, cols = np.flatnonzero(window.any(axis=1)) + r0, np.flatnonzero(window.any(axis=0)) + c0
    return (max(clipped[0], cols[0] - 0.5), max(clipped[1], rows[0] - 0.5),
            min(clipped[2], cols[-1] + 0.5), min(clipped[3], rows[-1] + 0.5))
