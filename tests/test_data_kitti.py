"""KITTI detection and tracking readers on the real fixture frames (tests/fixtures/kitti)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from data import BadInputError
from data.kitti import read_kitti_detection, read_kitti_tracking

FIXTURES = Path(__file__).resolve().parent / "fixtures"
KITTI = FIXTURES / "kitti"
CLASS_MAP = {"Car": "car", "Van": "car", "Truck": "truck"}


def test_detection_boxes_flags_and_counts() -> None:
    result = read_kitti_detection(KITTI / "detection", CLASS_MAP)
    images, objects, report = result.images, result.objects, result.report
    assert list(images["image_id"]) == ["000000", "000001"]
    assert images[["width", "height"]].values.tolist() == [[1224, 370], [1242, 375]]
    assert list(images["frame"]) == [0, 1] and set(images["dataset"]) == {"kitti"}
    assert list(images["n_occluded_vehicles"]) == [0, 0]
    # 000000 holds only a Pedestrian; 000001: Truck, Car, Cyclist (occluded=3), 4 DontCare
    assert objects["image_id"].tolist() == ["000001"] * 6
    assert objects["source_class"].tolist() == ["Truck", "Car"] + ["DontCare"] * 4
    assert objects["class_name"].tolist()[:2] == ["truck", "car"]
    assert objects["class_name"].iloc[2:].isna().all()
    assert objects[["x1", "y1", "x2", "y2"]].values.tolist() == [
        [599.41, 156.40, 629.75, 189.25], [387.63, 181.54, 423.81, 203.12],
        [503.89, 169.71, 590.61, 190.13], [511.35, 174.96, 527.81, 187.45],
        [532.37, 176.35, 542.68, 185.27], [559.62, 175.83, 575.40, 183.15]]
    assert objects["ignore"].tolist() == [False, False, True, True, True, True]
    assert objects["occluded"].tolist() == [False] * 6
    assert objects["occlusion_level"].tolist()[:2] == [0, 0]
    assert objects["occlusion_level"].iloc[2:].isna().all()
    assert report["dropped_by_class_map"] == {"Cyclist": 1, "Pedestrian": 1}
    assert report["skipped"] == {} and report["clipped"] == 0
    assert (report["images_kept"], report["objects_kept"], report["ignore_regions"]) == (2, 6, 4)


def test_occlusion_level_3_is_not_occluded() -> None:
    result = read_kitti_detection(KITTI / "detection", {"Cyclist": "cyclist"})
    cyclist = result.objects[result.objects["source_class"] == "Cyclist"].iloc[0]
    assert cyclist["occlusion_level"] == 3 and not cyclist["occluded"]
    assert [cyclist[c] for c in ("x1", "y1", "x2", "y2")] == [676.60, 163.95, 688.98, 193.93]


def test_tracking_sequence_0001() -> None:
    result = read_kitti_tracking(KITTI / "tracking" / "training", CLASS_MAP)
    images, objects, report = result.images, result.objects, result.report
    assert list(images["image_id"]) == ["0001/000000", "0001/000001"]
    assert images[["width", "height"]].values.tolist() == [[1242, 375]] * 2
    assert list(images["sequence"]) == ["0001"] * 2 and list(images["frame"]) == [0, 1]
    # frame 0: 5 DontCare + 7 cars (occlusion 0 1 2 0 1 1 2); frame 1: 6 DontCare + 7 cars
    assert list(images["n_occluded_vehicles"]) == [5, 5]
    frame0 = objects[objects["image_id"] == "0001/000000"]
    assert frame0["ignore"].sum() == 5 and frame0["track_id"].isna().sum() == 5
    cars = frame0[~frame0["ignore"]]
    assert cars["track_id"].tolist() == ["0", "1", "2", "3", "4", "5", "6"]
    assert cars["occlusion_level"].tolist() == [0, 1, 2, 0, 1, 1, 2]
    assert cars["occluded"].tolist() == [False, True, True, False, True, True, True]
    first = cars.iloc[0]
    assert [first[c] for c in ("x1", "y1", "x2", "y2")] == [776.295323, 167.346734, 1241.0, 374.0]
    # tracking truncation is a level 0-2, stored as level / 2
    frame1_car0 = objects[(objects["image_id"] == "0001/000001") & (objects["track_id"] == "0")]
    assert frame1_car0["truncated"].tolist() == [0.5]
    assert math.isnan(frame0["truncated"].iloc[0])
    # the label file covers frames 0-446; only frames 0 and 1 have images
    assert report["skipped"]["missing_image"]["count"] == 445
    assert report["skipped"]["missing_image"]["examples"][0]["line"] == 26
    assert report["skipped_total"] == 445 and report["objects_kept"] == 25


def test_tracking_root_may_be_parent_and_sequences_filter() -> None:
    result = read_kitti_tracking(KITTI / "tracking", CLASS_MAP, sequences=["0001"])
    assert len(result.images) == 2
    with pytest.raises(BadInputError, match="0099"):
        read_kitti_tracking(KITTI / "tracking", CLASS_MAP, sequences=["0099"])


def test_missing_label_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="label_2"):
        read_kitti_detection(tmp_path, CLASS_MAP)
    with pytest.raises(BadInputError, match="label_02"):
        read_kitti_tracking(tmp_path, CLASS_MAP)


def test_missing_image_and_label_are_counted(tmp_path: Path) -> None:
    base = tmp_path / "training"
    shutil.copytree(KITTI / "detection" / "training", base)
    (base / "image_2" / "000000.png").unlink()
    (base / "label_2" / "000001.txt").unlink()
    result = read_kitti_detection(tmp_path, CLASS_MAP)
    counts = {reason: entry["count"] for reason, entry in result.report["skipped"].items()}
    assert counts == {"missing_image": 1, "missing_label": 1} and result.images.empty


def test_path_is_repo_relative_under_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(KITTI / "detection" / "training", tmp_path / "kitti" / "training")
    monkeypatch.chdir(tmp_path)
    result = read_kitti_detection(Path("kitti"), CLASS_MAP)
    assert list(result.images["path"]) == ["kitti/training/image_2/000000.png",
                                           "kitti/training/image_2/000001.png"]
    absolute = read_kitti_detection(KITTI / "detection", CLASS_MAP)
    assert Path(absolute.images["path"].iloc[0]).is_absolute()
