"""vKITTI2 reader on hand-built trees with real (small) JPEG frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from data import BadInputError
from data.vkitti2 import read_vkitti2

CLASS_MAP = {"Car": "car", "Van": "car", "Truck": "truck"}
HEADER = ("frame cameraID trackID left right top bottom number_pixels truncation_ratio "
          "occupancy_ratio isMoving")
WIDTH, HEIGHT = 124, 38  # a tenth of vKITTI2's 1242x375: real JPEGs, fast to write


def write_jpeg(path: Path, width: int = WIDTH, height: int = HEIGHT, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), pixels)


def make_variation(root: Path, scene: str, variation: str, info: list[str], bbox: list[str],
                   frames: list[int], cameras: tuple[str, ...] = ("Camera_0",),
                   textgt_root: Path | None = None) -> None:
    """One SceneXX/<variation>: rgb frames per camera, bbox.txt (with header) and info.txt."""
    for camera in cameras:
        for frame in frames:
            rgb_dir = root / scene / variation / "frames" / "rgb" / camera
            write_jpeg(rgb_dir / f"rgb_{frame:05d}.jpg", seed=frame)
    label_dir = (textgt_root or root) / scene / variation
    label_dir.mkdir(parents=True, exist_ok=True)
    (label_dir / "info.txt").write_text("\n".join(["trackID label model color", *info]) + "\n")
    (label_dir / "bbox.txt").write_text("\n".join([HEADER, *bbox]) + "\n")


@pytest.fixture
def two_scenes(tmp_path: Path) -> Path:
    """Scene01 and Scene02 both use track ids 0 and 1, for different classes."""
    root = tmp_path / "vkitti2"
    make_variation(root, "Scene01", "clone", ["0 Car Sedan4Door Black", "1 Truck Truck Red"], [
        "0 0 0 10 60 5 30 900 0.0 0.9 False",      # car, visible
        "0 0 1 70 124 0 37 1500 0.25 0.5 True",    # truck, occluded (0.5 < 0.75)
        "0 1 0 11 61 5 30 900 0.0 0.9 False",      # Camera_1: not selected
        "1 0 0 12 62 5 30 900 0.0 0.74 False",     # car, occluded
        "2 0 1 -5 20 3 20 100 0.5 0.8 True",       # truck, clipped at x=0
    ], frames=[0, 1, 2], cameras=("Camera_0", "Camera_1"))
    make_variation(root, "Scene02", "clone", ["0 Van Van White", "1 Car Hatchback Blue"], [
        "0 0 0 1 30 2 20 400 0.0 0.75 False",      # van -> car, not occluded (0.75 !< 0.75)
        "0 0 1 40 80 2 20 400 0.1 0.1 False",      # car, occluded
    ], frames=[0, 1])
    make_variation(root, "Scene02", "fog", ["0 Van Van White", "1 Car Hatchback Blue"], [
        "0 0 1 40 80 2 20 400 0.1 0.1 False",
    ], frames=[0])
    return root


def test_track_ids_resolve_per_scene(two_scenes: Path) -> None:
    result = read_vkitti2(two_scenes, CLASS_MAP, variations=["clone"])
    images, objects = result.images, result.objects
    assert list(images["image_id"]) == ["Scene01/clone/Camera_0/00000",
                                        "Scene01/clone/Camera_0/00001",
                                        "Scene01/clone/Camera_0/00002",
                                        "Scene02/clone/Camera_0/00000",
                                        "Scene02/clone/Camera_0/00001"]
    assert (images["width"] == WIDTH).all() and (images["height"] == HEIGHT).all()
    assert list(images["sequence"]) == ["Scene01"] * 3 + ["Scene02"] * 2
    assert list(images["frame"]) == [0, 1, 2, 0, 1]
    assert set(images["variation"]) == {"clone"} and set(images["camera"]) == {"Camera_0"}
    assert list(images["n_occluded_vehicles"]) == [1, 1, 0, 1, 0]
    rows = objects[["image_id", "source_class", "class_name", "track_id", "occluded"]]
    assert rows.values.tolist() == [
        ["Scene01/clone/Camera_0/00000", "Car", "car", "0", False],
        ["Scene01/clone/Camera_0/00000", "Truck", "truck", "1", True],
        ["Scene01/clone/Camera_0/00001", "Car", "car", "0", True],
        ["Scene01/clone/Camera_0/00002", "Truck", "truck", "1", False],
        ["Scene02/clone/Camera_0/00000", "Van", "car", "0", False],
        ["Scene02/clone/Camera_0/00000", "Car", "car", "1", True],
    ]
    # left right top bottom -> x1 x2 y1 y2, kept as KITTI-style pixel indices
    assert objects[["x1", "y1", "x2", "y2"]].values.tolist()[:2] == [[10, 5, 60, 30],
                                                                    [70, 0, 124, 37]]
    assert objects["x1"].iloc[3] == 0.0 and result.report["clipped"] == 1
    assert objects["truncated"].tolist() == [0.0, 0.25, 0.0, 0.5, 0.0, 0.1]
    assert objects["occlusion_level"].isna().all() and not objects["ignore"].any()
    assert result.report["skipped_total"] == 0
    assert Path(images["path"].iloc[0]).is_file()


def test_selection_stride_cameras_and_threshold(two_scenes: Path) -> None:
    result = read_vkitti2(two_scenes, CLASS_MAP, scenes=["Scene01"], variations=["clone"],
                          cameras=["Camera_0", "Camera_1"], stride=2, occupancy_threshold=0.95)
    assert list(result.images["image_id"]) == ["Scene01/clone/Camera_0/00000",
                                               "Scene01/clone/Camera_0/00002",
                                               "Scene01/clone/Camera_1/00000",
                                               "Scene01/clone/Camera_1/00002"]
    assert result.objects["occluded"].tolist() == [True, True, True, True]
    assert result.objects["x1"].tolist() == [10.0, 70.0, 0.0, 11.0]
    assert list(result.images["n_occluded_vehicles"]) == [2, 1, 1, 0]


def test_all_variations_and_separate_textgt(tmp_path: Path) -> None:
    rgb, textgt = tmp_path / "rgb", tmp_path / "textgt"
    for variation in ("clone", "fog"):
        make_variation(rgb, "Scene06", variation, ["0 Car Sedan4Door Black"],
                       ["0 0 0 1 2 3 4 5 0.0 1.0 False"], frames=[0], textgt_root=textgt)
    result = read_vkitti2(rgb, CLASS_MAP, textgt_root=textgt)
    assert list(result.images["image_id"]) == ["Scene06/clone/Camera_0/00000",
                                               "Scene06/fog/Camera_0/00000"]
    assert result.objects[["x1", "y1", "x2", "y2"]].values.tolist() == [[1, 3, 2, 4]] * 2


def test_bad_lines_are_counted(tmp_path: Path) -> None:
    root = tmp_path / "v"
    make_variation(root, "Scene01", "clone",
                   ["0 Car Sedan4Door Black", "1 Pedestrian Man Blue", "0 Van Van Red", "x"], [
                       "0 0 0 10 60 5 30 900 0.0 0.9 False",
                       "0 0 7 10 60 5 30 900 0.0 0.9 False",   # track 7 not in info.txt
                       "0 0 1 10 60 5 30 900 0.0 0.9 False",   # Pedestrian: unknown class
                       "0 0 0 10 60 5 30 900 nan 0.9 False",   # NaN ratio
                       "0 0 0 60 10 5 30 900 0.0 0.9 False",   # right < left
                       "0 0 0 10 abc 5 30 900 0.0 0.9 False",  # non-numeric
                       "0 0 0 10 60 5 30 900 0.0 0.9",         # 10 fields
                       "0 0 0 200 260 5 30 900 0.0 0.9 False",  # outside the 124-wide image
                       "5 0 0 10 60 5 30 900 0.0 0.9 False",   # frame 5 has no image
                   ], frames=[0])
    report = read_vkitti2(root, CLASS_MAP).report
    counts = {reason: entry["count"] for reason, entry in report["skipped"].items()}
    assert counts == {"unknown_track": 1, "unknown_class": 1, "bad_ratio": 1, "inverted_box": 1,
                      "non_numeric": 1, "wrong_field_count": 2, "outside_image": 1,
                      "duplicate_track_id": 1, "missing_image": 1}
    assert report["objects_kept"] == 1
    example = report["skipped"]["unknown_track"]["examples"][0]
    assert example["file"].endswith("Scene01/clone/bbox.txt") and example["line"] == 3


def test_missing_pieces_are_clear_errors(two_scenes: Path) -> None:
    with pytest.raises(BadInputError, match="Scene09"):
        read_vkitti2(two_scenes, CLASS_MAP, scenes=["Scene09"])
    with pytest.raises(BadInputError, match="rain"):
        read_vkitti2(two_scenes, CLASS_MAP, variations=["rain"])
    with pytest.raises(BadInputError, match="plain name"):
        read_vkitti2(two_scenes, CLASS_MAP, scenes=["../etc"])
    (two_scenes / "Scene02" / "fog" / "info.txt").unlink()
    with pytest.raises(BadInputError, match="info.txt"):
        read_vkitti2(two_scenes, CLASS_MAP, scenes=["Scene02"])


def test_truncated_jpeg_is_skipped(two_scenes: Path) -> None:
    frame = two_scenes / "Scene02" / "clone" / "frames" / "rgb" / "Camera_0" / "rgb_00001.jpg"
    frame.write_bytes(frame.read_bytes()[:200])
    result = read_vkitti2(two_scenes, CLASS_MAP, scenes=["Scene02"], variations=["clone"])
    assert result.report["skipped"]["bad_image"]["count"] == 1
    assert list(result.images["frame"]) == [0]
    assert set(result.objects["image_id"]) == {"Scene02/clone/Camera_0/00000"}


def test_bad_label_files(two_scenes: Path) -> None:
    bbox = two_scenes / "Scene02" / "fog" / "bbox.txt"
    bbox.write_text("frame camera track left right top bottom\n0 0 0 1 2 3 4\n")
    with pytest.raises(BadInputError, match="unexpected header"):
        read_vkitti2(two_scenes, CLASS_MAP, scenes=["Scene02"])
    bbox.write_text("")  # a cut-off copy: the variation is left out, and that is counted
    result = read_vkitti2(two_scenes, CLASS_MAP, scenes=["Scene02"])
    assert result.report["skipped"]["empty_label_file"]["count"] == 1
    assert set(result.images["variation"]) == {"clone"}
    bbox.write_bytes(b"\xff\xfe frame")
    result = read_vkitti2(two_scenes, CLASS_MAP, scenes=["Scene02"])
    assert result.report["skipped"]["non_utf8"]["count"] == 1
    # a bbox.txt without header is read as data
    bbox.write_text("0 0 1 40 80 2 20 400 0.1 0.1 False\n")
    result = read_vkitti2(two_scenes, CLASS_MAP, scenes=["Scene02"], variations=["fog"])
    assert result.objects["source_class"].tolist() == ["Car"]
