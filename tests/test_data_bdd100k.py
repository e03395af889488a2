"""BDD100K reader on the real fixture label files (tests/fixtures/bdd100k)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from data import BadInputError
from data.bdd100k import (
    BDD_IGNORED,
    BDD_RENAMES,
    frames_to_tables,
    load_frames,
    read_bdd100k,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BDD = FIXTURES / "bdd100k"
MOT = BDD / "scalabel_mot_sample" / "track_sample_anns.json"
CLASS_MAP = {"car": "car", "truck": "truck"}


def tables(name: str | Path, class_map: dict[str, str] = CLASS_MAP):
    return frames_to_tables(load_frames(BDD / name), class_map, split="val", source=str(name))


def test_renames_and_ignored_match_det_toml() -> None:
    import tomllib

    config = tomllib.loads((BDD / "det.toml").read_text())
    assert BDD_RENAMES == config["name_mapping"]
    assert BDD_IGNORED == config["ignored_mapping"]


def test_legacy_frame_with_14_occluded_cars() -> None:
    result = tables("legacy_unitest_val_bdd.json")
    image = result.images.iloc[0]
    assert (image["image_id"], image["path"]) == ("b1c66a42-6f7d68ca.jpg",) * 2
    assert (image["width"], image["height"], image["n_occluded_vehicles"]) == (1280, 720, 14)
    assert (image["weather"], image["timeofday"], image["scene"]) == ("overcast", "daytime",
                                                                     "city street")
    assert (image["sequence"], image["frame"], image["split"]) == ("b1c66a42-6f7d68ca", 0, "val")
    objects = result.objects
    assert len(objects) == 19 and set(objects["class_name"]) == {"car"}
    assert objects["occluded"].sum() == 14 and objects["truncated"].sum() == 2
    assert not objects["ignore"].any()
    first = objects.iloc[0]
    assert [first[c] for c in ("x1", "y1", "x2", "y2")] == [205.879417, 338.141346, 281.992413,
                                                           388.051507]
    assert first["track_id"] == "9"
    assert result.report["dropped_by_class_map"] == {"motorcycle": 1, "rider": 1,
                                                     "traffic light": 7, "traffic sign": 6}


def test_ignored_class_capitalised_flags_and_null_labels() -> None:
    result = tables("example_ignore_annotation.json", {"pedestrian": "person", "car": "car"})
    assert list(result.images["image_id"]) == ["00091078-875c1f73-0000166.jpg",
                                               "00091078-875c1f73-0000167.jpg"]
    objects = result.objects
    assert objects["source_class"].tolist() == ["other person", "person"]
    assert objects["class_name"].tolist() == ["person", "person"]  # both land on pedestrian
    assert objects["ignore"].tolist() == [True, False]
    assert objects["occluded"].tolist() == [True, True]  # from "Occluded": true
    assert objects[["x1", "y1"]].values.tolist() == [[1068.051474568342, 362.7665840944419],
                                                     [68.051474568342, 301.7665840944419]]
    # the ignored class does not count as an occluded vehicle; labels: null -> no objects
    assert list(result.images["n_occluded_vehicles"]) == [1, 0]
    without_target = tables("example_ignore_annotation.json")
    assert without_target.objects.empty
    assert without_target.report["dropped_by_class_map"] == {"other person": 1, "person": 1}


def test_poly2d_only_labels_are_counted_not_boxes() -> None:
    result = tables("example_annotation.json")
    assert len(result.images) == 1 and result.objects.empty
    assert result.report["skipped"]["no_box2d"]["count"] == 4


def test_scalabel_mot_sample_against_raw_json() -> None:
    raw = json.loads(MOT.read_text())
    result = tables(MOT.relative_to(BDD))
    images, objects = result.images, result.objects
    assert len(images) == 202 and images["image_id"].tolist() == [f["name"] for f in raw]
    expected_rows, expected_occluded = [], []
    for frame in raw:
        occluded = 0
        for label in frame["labels"]:
            if label["category"] in CLASS_MAP:
                attrs, box = label["attributes"], label["box2d"]
                expected_rows.append([frame["name"], label["category"], box["x1"], box["y1"],
                                      box["x2"], box["y2"], attrs["occluded"], attrs["crowd"],
                                      label["id"]])
                occluded += attrs["occluded"]
        expected_occluded.append(occluded)
    columns = ["image_id", "class_name", "x1", "y1", "x2", "y2", "occluded", "ignore", "track_id"]
    assert objects[columns].values.tolist() == expected_rows
    assert images["n_occluded_vehicles"].tolist() == expected_occluded
    counts = objects["class_name"].value_counts().to_dict()
    assert counts == {"car": 2726, "truck": 65}
    assert int(objects["ignore"].sum()) == sum(row[7] for row in expected_rows)
    assert result.report["dropped_by_class_map"] == {"bus": 21, "motorcycle": 119,
                                                     "pedestrian": 191, "rider": 119}
    assert result.report["skipped"] == {}


def test_frames_dict_form_and_wrong_shapes(tmp_path: Path) -> None:
    frames = json.loads((BDD / "example_ignore_annotation.json").read_text())
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"config": {}, "frames": frames}))
    assert load_frames(wrapped) == frames
    for text, message in [('{"a": 1}', "frames"), ("42", "list of frames"), ("", "empty"),
                          ('[{"name": "a.jpg"}', "not closed"), ("[1, 2] x", "after")]:
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(BadInputError, match=message):
            load_frames(bad)
    with pytest.raises(BadInputError, match="missing"):
        load_frames(tmp_path / "absent.json")


def test_read_bdd100k_with_images(tmp_path: Path) -> None:
    image_dir = tmp_path / "images" / "val"
    image_dir.mkdir(parents=True)
    raw = json.loads(MOT.read_text())
    small = np.zeros((72, 128, 3), np.uint8)  # header says 128x72: check_images reads it
    for frame in raw[:3]:
        cv2.imwrite(str(image_dir / frame["name"]), small)
    result = read_bdd100k(MOT, tmp_path / "images", CLASS_MAP, "val")
    assert result.images["image_id"].tolist() == [f["name"] for f in raw[:3]]
    assert result.images[["width", "height"]].values.tolist() == [[128, 72]] * 3
    assert result.report["skipped"]["missing_image"]["count"] == 199
    assert result.report["skipped"]["missing_image"]["examples"][0]["line"] == 1  # 1-line file
    # boxes are checked against the true 128x72 size: kept ones are clipped, the rest outside
    n_boxes = sum(lab["category"] in CLASS_MAP for f in raw[:3] for lab in f["labels"])
    skipped = result.report["skipped"]["outside_image"]["count"]
    assert skipped + len(result.objects) == n_boxes and skipped > 0
    assert (result.objects["x2"] <= 128).all() and (result.objects["y2"] <= 72).all()
    assert Path(result.images["path"].iloc[0]) == image_dir / raw[0]["name"]
    trusting = read_bdd100k(MOT, tmp_path / "images", CLASS_MAP, "val", check_images=False)
    assert trusting.images[["width", "height"]].values.tolist() == [[1280, 720]] * 3
    with pytest.raises(BadInputError, match="image directory"):
        read_bdd100k(MOT, tmp_path / "images", CLASS_MAP, "train")
