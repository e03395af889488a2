"""YOLO export: label values, links (never copies), ignore regions, unique names."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from data import BadInputError
from data.kitti import read_kitti_detection, read_kitti_tracking
from data.yolo import export_yolo, write_data_yaml

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CLASS_MAP = {"Car": "car", "Van": "car", "Truck": "truck"}


@pytest.fixture
def kitti_copy(tmp_path: Path) -> Path:
    """The fixtures copied next to the export, so hard links are possible (same file system)."""
    shutil.copytree(FIXTURES / "kitti", tmp_path / "kitti")
    return tmp_path / "kitti"


def test_labels_are_normalised_centres(kitti_copy: Path, tmp_path: Path) -> None:
    detection = read_kitti_detection(kitti_copy / "detection", CLASS_MAP)
    tracking = read_kitti_tracking(kitti_copy / "tracking", CLASS_MAP)
    out = tmp_path / "yolo"
    counts = export_yolo([detection, tracking], ["car", "truck"], out, "train",
                         file_prefix=["kitti_", "kittitrk_"])
    assert counts == {"images": 4, "hardlinks": 4, "symlinks": 0, "objects_exported": 16,
                      "background_images": 1, "ignore_regions_not_exported": 15,
                      "objects_other_classes": 0}
    truck = (599.41 + 629.75) / 2 / 1242, (156.40 + 189.25) / 2 / 375, 30.34 / 1242, 32.85 / 375
    car = (387.63 + 423.81) / 2 / 1242, (181.54 + 203.12) / 2 / 375, 36.18 / 1242, 21.58 / 375
    expected = "".join(f"{cls} {a:.6f} {b:.6f} {c:.6f} {d:.6f}\n"
                       for cls, (a, b, c, d) in ((1, truck), (0, car)))
    assert (out / "labels" / "train" / "kitti_000001.txt").read_text() == expected
    assert (out / "labels" / "train" / "kitti_000000.txt").read_text() == ""
    tracked = (out / "labels" / "train" / "kittitrk_0001__000000.txt").read_text().splitlines()
    assert len(tracked) == 7 and tracked[0] == "0 0.812116 0.721796 0.374158 0.551075"
    linked = out / "images" / "train" / "kittitrk_0001__000000.png"
    source = kitti_copy / "tracking" / "training" / "image_02" / "0001" / "000000.png"
    assert os.stat(linked).st_ino == os.stat(source).st_ino and not linked.is_symlink()


def test_classes_outside_the_list_are_counted(kitti_copy: Path, tmp_path: Path) -> None:
    detection = read_kitti_detection(kitti_copy / "detection", CLASS_MAP)
    counts = export_yolo([detection], ["car"], tmp_path / "y", "val")
    assert counts["objects_exported"] == 1 and counts["objects_other_classes"] == 1
    assert (tmp_path / "y" / "labels" / "val" / "000001.txt").read_text().startswith("0 0.3266")


def test_name_collision_is_an_error(kitti_copy: Path, tmp_path: Path) -> None:
    detection = read_kitti_detection(kitti_copy / "detection", CLASS_MAP)
    with pytest.raises(BadInputError, match="file_prefix"):
        export_yolo([detection, detection], ["car"], tmp_path / "y", "train")


def test_data_yaml(tmp_path: Path) -> None:
    path = write_data_yaml(tmp_path, ["car", "truck"], {"train": "train", "val": "val"})
    assert yaml.safe_load(path.read_text()) == {
        "train": "images/train", "val": "images/val",
        "names": {0: "car", 1: "truck"}}
    path = write_data_yaml(tmp_path, ["car"], {"train": "images/train"})
    assert yaml.safe_load(path.read_text())["train"] == "images/train"
