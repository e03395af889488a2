"""Writing the three datasets in their real formats and layouts: KITTI object detection
(training/image_2 + label_2), vKITTI2 scenes (one RGB sequence per variation, bbox.txt, info.txt)
and BDD100K det_20 (images/100k + labels JSON, val frames spread over the occlusion buckets).
Each frame draws from its own Generator, keyed by (cfg.seed, stream, index)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from common.weathers import BDD_WEATHER, WEATHERS
from data.sample.camera import Camera, bdd_camera, kitti_camera, vkitti2_camera
from data.sample.config import (
    BDD_BUCKETS,
    BDD_COUNTED,
    BDD_WEATHERS,
    JPEG_QUALITY_BDD,
    JPEG_QUALITY_SIM,
    LARGELY_OCCLUDED_BELOW,
    MIN_VISIBLE_FRACTION,
    NEAR_PLANE,
    OCCLUDED_BELOW,
    PNG_COMPRESSION,
    STREAM_BDD_TRAIN,
    STREAM_BDD_VAL,
    STREAM_IDEAL,
    STREAM_KITTI,
    STREAM_VKITTI2,
    VKITTI2_VARIATIONS,
    SampleConfig,
    ideal_frame_path,
)
from data.sample.looks import SIM_PALETTE, paint, real_palette, render_real, sim_variation
from data.sample.projection import Seen, label_pass, paint_order
from data.sample.road import (
    Frame,
    Road,
    bent,
    multilane_road,
    place_pedestrians,
    place_scenery,
    place_traffic,
    skyline,
    urban_road,
)
from data.sample.things import BDD_CATEGORY, KITTI_TYPE, VEHICLE_KINDS, Thing, make_vehicle


def _encode(img: np.ndarray, ext: str, quality: int = JPEG_QUALITY_BDD) -> bytes:
    params = ([cv2.IMWRITE_JPEG_QUALITY, quality] if ext == ".jpg"
              else [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    ok, data = cv2.imencode(ext, img, params)
    if not ok:
        raise RuntimeError(f"could not encode a {ext} image")
    return data.tobytes()


# KITTI ---------------------------------------------------------------------------------------


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
        x1, y1, x2, y2 = s.visible_box
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
    """A KITTI-like street: mostly urban/residential two-lane roads with parked cars, some
    busy city streets and highways with queues ahead (rear views of cars and trucks)."""
    kind = str(rng.choice(["urban", "residential", "highway", "busy"], p=[0.3, 0.3, 0.1, 0.3]))
    bend = float(np.clip(rng.normal(0, 0.0015), -0.003, 0.003))
    density = rng.uniform(0.35, 0.78)
    if kind == "highway":
        road = multilane_road(rng, kind, int(rng.integers(2, 4)), 0, False, bend)
    elif kind == "busy":  # rush hour in Karlsruhe: two lanes each way, queues, parked cars
        road = multilane_road(rng, "urban", 2, int(rng.integers(1, 3)), False, bend,
                              park=rng.random() < 0.6)
        density = rng.uniform(0.8, 1.0)
    else:
        road = urban_road(rng, kind, False, bend)
    # more trucks than real KITTI has (~4 % of its vehicles): the demo's truck AP needs examples
    things = place_traffic(rng, road, density,
                           {"car": 0.62, "van": 0.12, "truck": 0.22, "bus": 0.04}, sim=False)
    things += place_pedestrians(rng, road, int(rng.integers(0, 4)), sim=False)
    for t in things:
        t.label = KITTI_TYPE[t.kind]
    return Frame(road, bent(things + place_scenery(rng, road, sim=False), road), skyline(rng),
                 rng.uniform(0, 12))


def write_kitti(root: Path, cfg: SampleConfig, frames: int | None = None,
                stream: int = STREAM_KITTI) -> None:
    """KITTI's object layout: `frames` (cfg.kitti_frames) street scenes in clear daylight, each
    drawn from the Generator (world seed, `stream`, index). The detector's pretraining set is
    written by the same function on its own stream (STREAM_PRETRAIN): other scenes, same look."""
    image_dir, label_dir = root / "training" / "image_2", root / "training" / "label_2"
    image_dir.mkdir(parents=True)
    label_dir.mkdir(parents=True)
    cam = kitti_camera(cfg.width)
    frames = cfg.kitti_frames if frames is None else frames
    desc = "sample kitti" if stream == STREAM_KITTI else "sample pretrain"
    for index in tqdm(range(frames), desc=desc, unit="img", leave=False):
        rng = np.random.default_rng([cfg.seed, stream, index])
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
VKITTI2_SCENE_KINDS = ("urban", "residential", "busy", "highway")


@dataclass
class Track:
    thing: Thing
    speed: float  # m/s relative to the ego car (negative: the gap closes)


def vkitti2_scene(rng: np.random.Generator, scene_index: int, n_frames: int
                  ) -> tuple[Road, list[Track], list[Thing], np.ndarray, float]:
    """One sequence: road, tracks (ids 0.. in this scene), scenery, skyline, ego speed (m/s).

    Scenes cycle through VKITTI2_SCENE_KINDS as real vKITTI2's five re-created KITTI sequences
    do: town streets with parked cars (Scene01, 02, 18), a busy multi-lane junction (Scene06)
    and a highway in dense traffic (Scene20)."""
    kind = VKITTI2_SCENE_KINDS[scene_index % len(VKITTI2_SCENE_KINDS)]
    density = rng.uniform(0.3, 0.7)
    if kind == "busy":
        road = multilane_road(rng, "urban", 2, int(rng.integers(1, 3)), False,
                              park=rng.random() < 0.6)
        density = rng.uniform(0.8, 1.0)
    elif kind == "highway":
        road = multilane_road(rng, "highway", int(rng.integers(2, 4)), 0, False)
        density = rng.uniform(0.5, 0.9)
    else:
        road = urban_road(rng, kind, False)
    ego_speed = rng.uniform(6.0, 9.0)
    travel = ego_speed * FRAME_DT * n_frames
    lead = make_vehicle(rng, TRAP_CLASSES[scene_index % len(TRAP_CLASSES)], rng.normal(0, 0.15),
                        rng.uniform(8.0, 12.0), 1, sim=True)
    things = [lead] + place_traffic(rng, road, density,
                                    {"car": 0.63, "van": 0.15, "truck": 0.22}, sim=True,
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


def write_vkitti2(root: Path, cfg: SampleConfig, ideal_root: Path | None = None) -> None:
    """The vKITTI2 scenes; with `ideal_root`, also every clone frame's ideal renders there."""
    cam = vkitti2_camera(cfg.width)
    for scene_index in range(cfg.vkitti2_scenes):
        rng = np.random.default_rng([cfg.seed, STREAM_VKITTI2, scene_index])
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
            if ideal_root is not None:
                write_ideal_frames(ideal_root, frame, cam, (cfg.seed, scene_index, frame_index),
                                   scene)
            rows += [_bbox_row(frame_index, s) for s in seen if s.labelled]
        for variation in VKITTI2_VARIATIONS:
            (root / scene / variation / "bbox.txt").write_text("\n".join(rows) + "\n")
            (root / scene / variation / "info.txt").write_text("\n".join(info) + "\n")


def write_ideal_frames(ideal_root: Path, frame: Frame, cam: Camera, key: tuple[int, int, int],
                       scene: str) -> None:
    """One clone frame as a perfect translator would give it: the same things seen by the same
    camera, painted photographically in each target weather's real (BDD100K-style) look, in
    daylight, JPEG-encoded like the sim frames. Each render draws from its own Generator keyed
    by (world seed, STREAM_IDEAL, scene, frame, weather), so the sim frames do not change."""
    world_seed, scene_index, frame_index = key
    for weather_index, weather in enumerate(WEATHERS):
        rng = np.random.default_rng([world_seed, STREAM_IDEAL, scene_index, frame_index,
                                     weather_index])
        real = BDD_WEATHER[weather]
        img, _ = render_real(frame, cam, real_palette(real, "daytime", rng, us=False), real,
                             "daytime", rng)
        path = ideal_frame_path(ideal_root, weather, scene, "Camera_0", frame_index)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_encode(img, ".jpg", JPEG_QUALITY_SIM))


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
    # Some roads climb ahead, so far vehicles show over near ones. Never in a jam: there a climb
    # stacks the queues into flat slivers, far more than real BDD100K's occluded cars show (see
    # test_occluded_car_boxes_are_shaped_like_real_bdd100k).
    if not jam and rng.random() < 0.3:
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
            labels.append(_bdd_label(s.thing.label, s.visible_box, s.occluded, s.truncation > 1e-3,
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


def write_bdd(root: Path, cfg: SampleConfig) -> None:
    image_root, label_root = root / "images" / "100k", root / "labels" / "det_20"
    label_root.mkdir(parents=True)
    for split, per_weather in (("train", cfg.bdd_train_frames_per_weather),
                               ("val", cfg.bdd_val_frames_per_weather)):
        (image_root / split).mkdir(parents=True)
        records = []
        frames = bdd_records(split, per_weather, cfg.width, cfg.seed)
        for record, frame, cam, rng in tqdm(frames, desc=f"sample bdd {split}", unit="img",
                                            total=per_weather * len(BDD_WEATHERS), leave=False,
                                            position=1):  # beside the other writers' bars
            weather, timeofday = record["attributes"]["weather"], record["attributes"]["timeofday"]
            pal = real_palette(weather, timeofday, rng, us=True)
            img, _ = render_real(bdd_scenery(rng, frame), cam, pal, weather, timeofday, rng)
            (image_root / split / record["name"]).write_bytes(_encode(img, ".jpg",
                                                                     JPEG_QUALITY_BDD))
            records.append(record)
        (label_root / f"det_{split}.json").write_text(json.dumps(records, separators=(",", ":")))
