"""The procedural sample world (data/sample/): exact real formats, sane labels, reproducible.

Everything is parsed with plain code here (not with the project's readers), so a format slip in
the writer cannot be hidden by the same slip in a reader.
"""

import hashlib
import json
import math
from collections import Counter
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from data import sample
from data.sample import (
    BDD_WEATHERS,
    VKITTI2_VARIATIONS,
    Camera,
    Part,
    SampleConfig,
    Thing,
    bdd_records,
    bucket_of,
    kitti_lines,
    label_pass,
    n_occluded_vehicles,
    render_overview,
    write_sample_world,
)

SMALL = SampleConfig(kitti_frames=4, vkitti2_scenes=2, vkitti2_frames_per_scene=3,
                     bdd_train_frames_per_weather=1, bdd_val_frames_per_weather=3, width=192,
                     seed=3)
KITTI_TYPES = {"Car", "Van", "Truck", "Misc", "Pedestrian", "DontCare"}
BBOX_HEADER = ("frame cameraID trackID left right top bottom number_pixels truncation_ratio "
               "occupancy_ratio isMoving")
BDD_CATEGORIES = {"car", "truck", "bus", "pedestrian", "other vehicle"}
MOT_SAMPLE = (Path(__file__).resolve().parent / "fixtures" / "bdd100k"
              / "scalabel_mot_sample" / "track_sample_anns.json")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return write_sample_world(tmp_path_factory.mktemp("sample") / "world", SMALL)


def image_size(path: Path) -> tuple[int, int]:
    image = cv2.imread(str(path))
    assert image is not None, path
    return image.shape[1], image.shape[0]


def test_layout_and_sizes(world):
    kitti_w, kitti_h = 192, round(192 * 375 / 1242)
    images = sorted((world.kitti_root / "training" / "image_2").iterdir())
    labels = sorted((world.kitti_root / "training" / "label_2").iterdir())
    assert [p.name for p in images] == [f"{i:06d}.png" for i in range(4)]
    assert [p.name for p in labels] == [f"{i:06d}.txt" for i in range(4)]
    assert {image_size(p) for p in images} == {(kitti_w, kitti_h)}

    assert sorted(p.name for p in world.vkitti2_root.iterdir()) == ["Scene01", "Scene02"]
    for scene in ("Scene01", "Scene02"):
        assert sorted(p.name for p in (world.vkitti2_root / scene).iterdir()) == sorted(
            VKITTI2_VARIATIONS)
        for variation in VKITTI2_VARIATIONS:
            base = world.vkitti2_root / scene / variation
            frames = sorted((base / "frames" / "rgb" / "Camera_0").iterdir())
            assert [p.name for p in frames] == [f"rgb_{i:05d}.jpg" for i in range(3)]
            assert image_size(frames[0]) == (kitti_w, kitti_h)
            assert (base / "bbox.txt").is_file() and (base / "info.txt").is_file()

    assert world.bdd100k_labels_train.name == "det_train.json"
    assert world.bdd100k_labels_val.parent.parts[-2:] == ("labels", "det_20")
    for split, count in (("train", 4), ("val", 12)):
        names = sorted(p.name for p in (world.bdd100k_images / split).iterdir())
        assert names == [f"s2r-{split}-{i:06d}.jpg" for i in range(count)]
        assert image_size(world.bdd100k_images / split / names[0]) == (192, 108)


def test_kitti_labels_are_the_15_field_format(world):
    width, height = 192, round(192 * 375 / 1242)
    types = Counter()
    for path in sorted((world.kitti_root / "training" / "label_2").iterdir()):
        lines = path.read_text().splitlines()
        assert lines, f"{path} is empty (real KITTI label files never are)"
        for line in lines:
            fields = line.split(" ")
            assert len(fields) == 15, line
            kind = fields[0]
            types[kind] += 1
            assert kind in KITTI_TYPES
            x1, y1, x2, y2 = map(float, fields[4:8])
            assert 0 <= x1 <= x2 <= width - 1 and 0 <= y1 <= y2 <= height - 1, line
            if kind == "DontCare":
                assert fields[1:4] == ["-1", "-1", "-10"]
                assert fields[8:] == ["-1", "-1", "-1", "-1000", "-1000", "-1000", "-10"]
                continue
            truncated, occluded = float(fields[1]), int(fields[2])
            alpha, (h, w, length), (x, y, z), ry = (float(fields[3]), map(float, fields[8:11]),
                                                   map(float, fields[11:14]), float(fields[14]))
            assert 0 <= truncated <= 1 and occluded in (0, 1, 2, 3)
            assert y2 - y1 >= 8 - 1e-6  # tiny objects are not labelled
            assert 0.4 < w < 2.7 and 1.3 < h < 3.7 and 0.5 < length < 12.1, line
            assert y == 1.65 and z > 0 and abs(abs(ry) - math.pi / 2) < 0.01
            expected_alpha = (ry - math.atan2(x, z) + math.pi) % (2 * math.pi) - math.pi
            assert abs(alpha - expected_alpha) < 0.011, line
    assert types["Car"] > 0


def read_table(path: Path) -> tuple[str, list[list[str]]]:
    header, *rows = path.read_text().splitlines()
    return header, [row.split(" ") for row in rows]


def test_vkitti2_bbox_and_info(world):
    width, height = 192, round(192 * 375 / 1242)
    for scene in ("Scene01", "Scene02"):
        clone = world.vkitti2_root / scene / "clone"
        header, rows = read_table(clone / "bbox.txt")
        assert header == BBOX_HEADER
        info_header, info = read_table(clone / "info.txt")
        assert info_header == "trackID label model color"
        labels = {int(r[0]): r[1] for r in info}
        assert set(labels.values()) <= {"Car", "Van", "Truck"} and all(len(r) == 4 for r in info)
        assert sorted(labels) == list(range(len(labels)))  # ids restart at 0 in every scene
        assert rows, "no vehicles in a whole scene"
        for r in rows:
            assert len(r) == 11
            frame, camera, track, left, right, top, bottom, pixels = map(int, r[:8])
            truncation, occupancy = float(r[8]), float(r[9])
            assert camera == 0 and 0 <= frame < 3 and track in labels
            assert 0 <= left < right <= width - 1 and 0 <= top < bottom <= height - 1
            assert 0 < pixels <= (right - left + 1) * (bottom - top + 1)
            # The real files' occupancy_ratio is number_pixels / ((right-left) * (bottom-top)).
            assert occupancy == pytest.approx(min(pixels / ((right - left) * (bottom - top)), 1),
                                              abs=1e-6)
            assert 0 <= truncation <= 1 and r[10] in ("True", "False")
        for variation in VKITTI2_VARIATIONS:  # same geometry, only the look differs
            base = world.vkitti2_root / scene / variation
            assert (base / "bbox.txt").read_bytes() == (clone / "bbox.txt").read_bytes()
            assert (base / "info.txt").read_bytes() == (clone / "info.txt").read_bytes()


def test_same_track_id_is_a_different_class_in_another_scene(world):
    classes = []
    for scene in ("Scene01", "Scene02"):
        _, info = read_table(world.vkitti2_root / scene / "clone" / "info.txt")
        classes.append({int(r[0]): r[1] for r in info}[0])
        _, rows = read_table(world.vkitti2_root / scene / "clone" / "bbox.txt")
        assert any(r[2] == "0" for r in rows), "track 0 (the lead vehicle) must be labelled"
    assert classes == ["Car", "Truck"]


def test_vkitti2_variations_differ_only_in_look(world):
    frames = [world.vkitti2_root / "Scene01" / v / "frames/rgb/Camera_0/rgb_00001.jpg"
              for v in VKITTI2_VARIATIONS]
    images = [cv2.imread(str(p)).astype(np.float32) for p in frames]
    for variation, image in zip(VKITTI2_VARIATIONS[1:], images[1:], strict=True):
        assert np.abs(image - images[0]).mean() > 5, f"{variation} looks like clone"
    grey = images[VKITTI2_VARIATIONS.index("overcast")]
    assert np.abs(grey - grey.mean(axis=2, keepdims=True)).mean() < np.abs(
        images[0] - images[0].mean(axis=2, keepdims=True)).mean() * 0.6  # desaturated


def test_bdd_json_is_det20(world):
    for split, path, per_weather in (("train", world.bdd100k_labels_train, 1),
                                     ("val", world.bdd100k_labels_val, 3)):
        frames = json.loads(path.read_text())
        assert isinstance(frames, list) and len(frames) == 4 * per_weather
        assert Counter(f["attributes"]["weather"] for f in frames) == {
            w: per_weather for w in BDD_WEATHERS}
        ids = []
        for frame in frames:
            assert set(frame) == {"name", "attributes", "timestamp", "labels"}
            assert set(frame["attributes"]) == {"weather", "timeofday", "scene"}
            assert frame["attributes"]["timeofday"] in ("daytime", "dawn/dusk")
            assert frame["attributes"]["scene"] in ("city street", "highway", "residential")
            assert frame["timestamp"] == 10000
            assert (world.bdd100k_images / split / frame["name"]).is_file()
            for label in frame["labels"]:
                assert set(label) == {"id", "category", "attributes", "box2d"}
                assert label["category"] in BDD_CATEGORIES
                assert set(label["attributes"]) == {"occluded", "truncated", "crowd"}
                assert all(isinstance(v, bool) for v in label["attributes"].values())
                box = label["box2d"]
                assert set(box) == {"x1", "y1", "x2", "y2"}
                assert 0 <= box["x1"] < box["x2"] <= 191 and 0 <= box["y1"] < box["y2"] <= 107
                ids.append(label["id"])
        assert len(ids) == len(set(ids)) and all(isinstance(i, str) for i in ids)


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_identical_bytes_on_a_second_run_and_atomic_replace(world, tmp_path):
    again = write_sample_world(tmp_path / "again", SMALL)
    first_root = world.kitti_root.parent
    assert tree_digest(again.kitti_root.parent) == tree_digest(first_root)
    # another world seed gives another world, and replaces the old one
    other = write_sample_world(tmp_path / "again", replace(SMALL, seed=4))
    assert tree_digest(other.kitti_root.parent) != tree_digest(first_root)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again"]  # no temp dirs left


def disk_full(*args, **kwargs):
    raise RuntimeError("disk full")


@pytest.mark.parametrize("writer", ["write_bdd", "write_vkitti2"])
def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch, writer):
    """In either process: write_bdd runs in a spawned one beside the others."""
    monkeypatch.setattr(sample, writer, disk_full)
    with pytest.raises(RuntimeError, match="disk full"):
        write_sample_world(tmp_path / "world", SMALL)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def default_val_records() -> list[dict]:
    """The det_20 records of the default config's val split (labels only, nothing rendered)."""
    cfg = SampleConfig()
    return [r for r, *_ in bdd_records("val", cfg.bdd_val_frames_per_weather, cfg.width, seed=0)]


def test_default_val_set_spreads_over_the_occlusion_buckets(default_val_records):
    per_weather = Counter()
    for record in default_val_records:
        count = n_occluded_vehicles(record["labels"])
        per_weather[record["attributes"]["weather"], bucket_of(count)] += 1
        if count >= 11:
            assert len(record["labels"]) >= 12  # a jam: many vehicles, most of them occluded
    for weather in BDD_WEATHERS:  # 16 frames per weather: 6 / 5 / 5
        assert [per_weather[weather, b] for b in range(3)] == [6, 5, 5], weather


def occluded_car_shapes(frames: list[dict]) -> np.ndarray:
    """Height / width of every occluded, untruncated, non-crowd car box."""
    shapes = []
    for frame in frames:
        for label in frame.get("labels") or []:
            a, b = label["attributes"], label.get("box2d")
            if (label["category"] == "car" and b and a.get("occluded") and not a.get("crowd")
                    and not a.get("truncated")):
                shapes.append((b["y2"] - b["y1"]) / (b["x2"] - b["x1"]))
    return np.array(shapes)


def test_occluded_car_boxes_are_shaped_like_real_bdd100k(default_val_records):
    """Occluders in the sample's jams hide vehicles the way real traffic does. The real fixture's
    occluded cars (1,787 boxes) have median height/width 0.82 and lower quartile 0.66: occlusion
    mostly cuts a car's side. Jams on climbing roads had stacked far cars into flat slivers
    (quartile 0.58, median 0.75), which this check would catch again."""
    real = occluded_car_shapes(json.loads(MOT_SAMPLE.read_text()))
    ours = occluded_car_shapes(default_val_records)
    assert len(real) > 1500 and len(ours) > 200
    for q, tolerance in ((0.25, 0.04), (0.5, 0.05)):
        assert abs(np.quantile(ours, q) - np.quantile(real, q)) <= tolerance, q


def test_written_val_labels_are_the_generated_ones(world):
    generated = [r for r, *_ in bdd_records("val", 3, 192, seed=3)]
    assert json.loads(world.bdd100k_labels_val.read_text()) == generated


def box(x0: float, x1: float, z: float, label: str | None, height: float = 2.0) -> Thing:
    """A flat-fronted block seen straight on: only its end face shows (x0 <= 0 <= x1)."""
    return Thing("car" if label else "wall", 0.0, z, 1, height, x1 - x0, 0.01,
                 [Part(x0, x1, 0.0, height, 0.0, 0.01, "paint")], label=label)


@pytest.mark.parametrize(("occluder_x", "fraction", "level", "occluded", "visible_x2"), [
    (None, 1.0, 0, False, 109.5),          # nothing in front
    ((0.0, 0.25), 0.75, 1, True, 109.5),   # a quarter in the middle hidden: both sides show
    ((-0.25, 0.5), 0.25, 2, True, 94.5),   # the right three quarters hidden
    ((-0.4, 0.5), 0.1, None, True, None),  # 90 % hidden: not labelled at all
])
def test_visible_fraction_gives_the_occlusion_label(occluder_x, fraction, level, occluded,
                                                    visible_x2):
    # Hand-checked: f = 100 px, the car (2 m x 2 m at 10 m) covers u 89.5..109.5, v 39.5..59.5,
    # i.e. 20 x 20 px; a block x0..x1 at 5 m covers u 99.5+20*x0 .. 99.5+20*x1 and all rows.
    cam = Camera(200, 100, 100.0, 99.5, 49.5, 1.0)
    things = [box(-1.0, 1.0, 10.0, "Car")]
    if occluder_x is not None:
        things.append(box(*occluder_x, 5.0, None, height=4.0))
    seen, ids, _ = label_pass(things, cam)
    car = seen[0]
    assert car.pixels == pytest.approx(400, abs=45)
    assert car.box == pytest.approx((89.5, 39.5, 109.5, 59.5))
    assert car.visible_fraction == pytest.approx(fraction, abs=0.06)
    assert car.occluded == occluded
    assert (ids == 1).sum() == car.visible
    lines = kitti_lines(seen, cam, np.random.default_rng(0))
    cars = [line.split() for line in lines if line.startswith("Car ")]
    if level is None:
        assert cars == []
    else:
        assert [int(c[2]) for c in cars] == [level]
        # KITTI boxes are drawn around what stays visible; the amodal box is kept apart
        assert [float(v) for v in cars[0][4:8]] == [89.5, 39.5, visible_x2, 59.5]
        assert car.visible_box == pytest.approx((89.5, 39.5, visible_x2, 59.5))


def test_bad_config_is_a_clear_error():
    """The config checks its own fields (load_params adds the `data.sample.` prefix)."""
    with pytest.raises(ValueError, match=r"^kitti_frames: must be a whole number in \[1, 100000\]"):
        SampleConfig(kitti_frames=-1)
    with pytest.raises(ValueError, match=r"^width: must be a whole number in \[64, 4096\], got 16"):
        SampleConfig(width=16)
    with pytest.raises(ValueError, match="^seed: must be a whole number >= 0, got -2"):
        SampleConfig(seed=-2)


def test_overview_picture(world, tmp_path):
    out = render_overview(world.kitti_root.parent, tmp_path / "docs" / "overview.png")
    picture = cv2.imread(str(out))
    # 3 rows x 4 tiles at 2x: KITTI and vKITTI2 58 px high, BDD 108; title bars and legend 22.
    assert picture.shape[:2] == (4 * 22 + 2 * (58 + 58 + 108) + 3 * 6, 4 * 2 * 192 + 3 * 4)
    assert not list(out.parent.glob(".*"))  # the temp file was renamed away
