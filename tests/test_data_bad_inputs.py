"""Every file of the bad-input corpus (tests/bad_inputs) gives a counted skip or a clear error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from data import BadInputError
from data.bdd100k import frames_to_tables, load_frames, read_bdd100k
from data.kitti import read_kitti_detection, read_kitti_tracking

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())
KITTI_MAP = {"Car": "car", "Van": "car", "Truck": "truck"}
BDD_MAP = {"car": "car", "truck": "truck"}
GOOD_LABEL = "Car 0.00 0 1.85 20.00 30.00 60.00 70.00 1.67 1.87 3.69 -16.53 2.39 58.49 1.57\n"


def write_png(path: Path, width: int = 200, height: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((height, width, 3), 127, np.uint8))


def skipped_lines(report: dict) -> dict[str, list[int | None]]:
    return {reason: [example["line"] for example in entry["examples"]]
            for reason, entry in report["skipped"].items()}


def check(result, expected: dict) -> None:
    report = result.report
    assert skipped_lines(report) == expected["skipped"]
    assert report["skipped_total"] == sum(len(lines) for lines in expected["skipped"].values())
    assert (len(result.images), len(result.objects)) == (expected["images"], expected["objects"])
    assert (report["images_kept"], report["objects_kept"]) == (len(result.images),
                                                               len(result.objects))
    assert report["clipped"] == expected.get("clipped", 0)
    if "dropped" in expected:
        assert report["dropped_by_class_map"] == expected["dropped"]
    if "boxes" in expected:
        assert result.objects[["x1", "y1", "x2", "y2"]].values.tolist() == expected["boxes"]
    if "n_occluded" in expected:
        n_occluded = result.images["n_occluded_vehicles"].tolist()
        total = expected["n_occluded"]
        assert n_occluded == total if isinstance(total, list) else sum(n_occluded) == total
    assert (result.objects["x2"] > result.objects["x1"]).all()
    assert (result.objects["y2"] > result.objects["y1"]).all()


@pytest.mark.parametrize("case", sorted(EXPECTED["kitti"]))
def test_kitti_label_file(case: str, tmp_path: Path) -> None:
    base = tmp_path / "training"
    write_png(base / "image_2" / f"{case}.png")
    (base / "label_2").mkdir()
    shutil.copy(CORPUS / "kitti" / f"{case}.txt", base / "label_2" / f"{case}.txt")
    check(read_kitti_detection(tmp_path, KITTI_MAP), EXPECTED["kitti"][case])


@pytest.mark.parametrize("name", EXPECTED["images"])
def test_broken_image(name: str, tmp_path: Path) -> None:
    base = tmp_path / "training"
    (base / "image_2").mkdir(parents=True)
    (base / "label_2").mkdir()
    shutil.copy(CORPUS / "images" / name, base / "image_2" / f"000000{Path(name).suffix}")
    (base / "label_2" / "000000.txt").write_text(GOOD_LABEL)
    write_png(base / "image_2" / "000001.png")
    (base / "label_2" / "000001.txt").write_text(GOOD_LABEL)
    result = read_kitti_detection(tmp_path, KITTI_MAP)
    assert list(result.images["image_id"]) == ["000001"]
    assert result.report["skipped"]["bad_image"]["count"] == 1
    assert result.report["skipped_total"] == 1


def test_kitti_tracking_sequence(tmp_path: Path) -> None:
    (tmp_path / "label_02").mkdir()
    shutil.copy(CORPUS / "kitti_tracking" / "0000.txt", tmp_path / "label_02" / "0000.txt")
    for frame in (0, 1):
        write_png(tmp_path / "image_02" / "0000" / f"{frame:06d}.png")
    result = read_kitti_tracking(tmp_path, KITTI_MAP)
    check(result, EXPECTED["kitti_tracking"])
    assert result.objects["track_id"].fillna("-").tolist() == ["0", "-", "0"]


@pytest.mark.parametrize("case", sorted(EXPECTED["bdd100k"]))
def test_bdd_labels_file(case: str) -> None:
    path, expected = CORPUS / "bdd100k" / f"{case}.json", EXPECTED["bdd100k"][case]
    if "error" in expected:
        with pytest.raises(BadInputError, match=expected["error"]) as error:
            load_frames(path)
        assert str(path) in str(error.value) and "\n" not in str(error.value)
        return
    result = frames_to_tables(load_frames(path), BDD_MAP, split="val", source=str(path))
    # frames_to_tables does not know lines; read_bdd100k (streamed from the file) does
    assert all(line is None for lines in skipped_lines(result.report).values() for line in lines)
    assert result.report["skipped_total"] == sum(len(v) for v in expected["skipped"].values())


@pytest.mark.parametrize("case", sorted(c for c, e in EXPECTED["bdd100k"].items()
                                        if "error" not in e))
def test_bdd_read_with_images(case: str, tmp_path: Path) -> None:
    path, expected = CORPUS / "bdd100k" / f"{case}.json", EXPECTED["bdd100k"][case]
    (tmp_path / "val").mkdir()
    frames = load_frames(path)
    for frame in frames:  # every plain name gets a (dummy) image: only the labels are bad
        name = frame.get("name") if isinstance(frame, dict) else None
        if isinstance(name, str) and "/" not in name and ".." not in name:
            (tmp_path / "val" / name).write_bytes(b"")
    (tmp_path / "up.jpg").write_bytes(b"")  # must never be reached via "../up.jpg"
    result = read_bdd100k(path, tmp_path, BDD_MAP, "val", check_images=False)
    check(result, expected)
    assert not result.images["path"].str.contains("up.jpg").any()
