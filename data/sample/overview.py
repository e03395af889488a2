"""render_overview: one README picture of a written sample world (a row per dataset, boxes
drawn, thin = occluded), read back from the files on disk with plain parsing."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from common.errors import MissingInputError
from common.files import atomic_write_bytes
from data.sample.config import BDD_WEATHERS, world_paths
from data.sample.datasets import n_occluded_vehicles

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
        raise MissingInputError(f"{world.kitti_root}: no KITTI frames (write the world first)")
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
    ok, data = cv2.imencode(".png", np.vstack([*canvas, legend]),
                            [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise RuntimeError(f"could not encode {out_png}")
    atomic_write_bytes(out_png, data.tobytes())
    return out_png
