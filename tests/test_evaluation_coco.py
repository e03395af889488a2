"""evaluation: COCO instances as ground truth, COCO results lists and ultralytics' save_json as
predictions, on the real BDD100K fixture converted to COCO: equal to pycocotools on the same
files, and to the evaluation of the Scalabel originals."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from data.bdd100k import BDD_CLASSES, frames_to_tables, load_frames
from evaluation import EvalConfig, evaluate, load_predictions
from evaluation.__main__ import main as cli

MOT = Path(__file__).resolve().parent / "fixtures" / "bdd100k" / "scalabel_mot_sample"
GT = MOT / "track_sample_anns.json"
PRED = MOT / "bbox_predictions.json"
TOL = 1e-9


@pytest.fixture(scope="module", params=["ids_follow_names", "ids_against_names"])
def coco_files(request, tmp_path_factory) -> dict:
    """The fixture as a COCO instances file and a plain COCO results list, image ids ascending
    with the frame names or against them (pycocotools breaks score ties across images by id, and
    the fixture has 27 scores tied across frames); every BDD100K class is a category, crowd and
    ignored-class boxes are iscrowd 1."""
    root = tmp_path_factory.mktemp("coco")
    tables = frames_to_tables(load_frames(GT), {c: c for c in BDD_CLASSES}, split="val",
                              source="fixture")
    names = sorted(tables.images["image_id"])
    step = 3 if request.param == "ids_follow_names" else -3
    image_ids = {name: 1000 + step * i for i, name in enumerate(names)}
    categories = {name: 10 + k for k, name in enumerate(sorted(BDD_CLASSES))}
    annotations = []
    for row in tables.objects.itertuples():
        box = [row.x1, row.y1, row.x2 - row.x1, row.y2 - row.y1]
        annotations.append({"id": len(annotations) + 1, "image_id": image_ids[row.image_id],
                            "category_id": categories[row.class_name], "bbox": box,
                            "area": box[2] * box[3], "iscrowd": int(row.ignore)})
    gt = root / "instances.json"
    gt.write_text(json.dumps({
        "images": [{"id": i, "file_name": n, "width": 1280, "height": 720}
                   for n, i in image_ids.items()],
        "categories": [{"id": i, "name": n} for n, i in categories.items()],
        "annotations": annotations}))
    preds, _ = load_predictions(PRED)
    results = [{"image_id": image_ids[r.image_id], "category_id": categories[r.class_name],
                "bbox": [r.x1, r.y1, r.x2 - r.x1, r.y2 - r.y1], "score": r.score}
               for r in preds.itertuples()]
    pred = root / "results.json"
    pred.write_text(json.dumps(results))
    return {"gt": gt, "pred": pred, "categories": categories, "order": request.param}


def pycocotools_metrics(gt: Path, pred: Path, category_ids: list[int]) -> dict:
    """AP50, AP50:95 and per-class AP of pycocotools itself on the two files (area 'all',
    100 detections per image and class, the evaluated categories only)."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt))
        ev = COCOeval(coco_gt, coco_gt.loadRes(str(pred)), "bbox")
        ev.params.catIds = category_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"][:, :, :, 0, 2]  # (T, R, K) at area all, maxDets 100
    per_class = [precision[:, :, k] for k in range(len(category_ids))]
    return {"map50_95": ev.stats[0], "map50": ev.stats[1],
            "ap50": [p[0][p[0] > -1].mean() for p in per_class],
            "ap50_95": [p[p > -1].mean() for p in per_class]}


def run_cli(tmp_path: Path, gt: Path, pred: Path, *extra: str) -> dict:
    out = tmp_path / "out"
    assert cli(["--gt", str(gt), "--pred", str(pred), "--out", str(out), *extra]) == 0
    return json.loads((out / "metrics.json").read_text())


def test_coco_gt_and_coco_results_equal_pycocotools(coco_files, tmp_path):
    categories = coco_files["categories"]
    metrics = run_cli(tmp_path, coco_files["gt"], coco_files["pred"])
    ref = pycocotools_metrics(coco_files["gt"], coco_files["pred"],
                              [categories["car"], categories["truck"]])
    assert abs(metrics["map50"] - ref["map50"]) <= TOL
    assert abs(metrics["map50_95"] - ref["map50_95"]) <= TOL
    for k, name in enumerate(["car", "truck"]):
        assert abs(metrics["per_class"][name]["ap50"] - ref["ap50"][k]) <= TOL
        assert abs(metrics["per_class"][name]["ap50_95"] - ref["ap50_95"][k]) <= TOL
    # the Scalabel originals are the same boxes, in name order: with ids in that order the
    # result is the same; with ids against it, tied scores are broken the other way round
    original = run_cli(tmp_path / "scalabel", GT, PRED)
    assert round(original["map50"], 4) == 0.7531
    assert abs(metrics["map50"] - original["map50"]) <= TOL
    if coco_files["order"] == "ids_follow_names":
        assert abs(metrics["map50_95"] - original["map50_95"]) <= TOL
    else:
        assert abs(metrics["map50_95"] - original["map50_95"]) > 1e-7
    assert metrics["n_gt"] == original["n_gt"] == 2659
    assert metrics["n_predictions"] == original["n_predictions"]
    # a results list has entries only for frames with detections: the coverage says so
    assert metrics["coverage"]["prediction_frames_listed"] is False
    assert metrics["coverage"]["gt_frames_without_entry"] is None
    assert metrics["coverage"]["gt_frames_without_detections"] == 0
    assert metrics["coverage"]["matched_by_name"] == 202
    report = (tmp_path / "out" / "report.md").read_text()
    assert "The predictions are a COCO results list, which has entries only for frames with " \
           "detections: 0 of the 202 GT frames have none" in report


def test_coco_gt_with_scalabel_predictions(coco_files, tmp_path):
    """Scalabel frames match a COCO GT's frames by file_name."""
    metrics = run_cli(tmp_path, coco_files["gt"], PRED)
    original = run_cli(tmp_path / "scalabel", GT, PRED)
    assert abs(metrics["map50"] - original["map50"]) <= TOL
    assert metrics["coverage"]["gt_frames_without_entry"] == 0


def test_ultralytics_save_json_with_category_ids(tmp_path):
    """ultralytics' predictions.json: image_id the stem, file_name, category_id its class index,
    bbox rounded to 3 decimals and score to 5. With --category-ids against the BDD100K GT it
    equals the Scalabel evaluation of the same rounded boxes."""
    preds, _ = load_predictions(PRED)
    index = {name: k for k, name in enumerate(sorted(set(preds["class_name"])))}
    results = [{"image_id": Path(r.image_id).stem, "file_name": r.image_id,
                "category_id": index[r.class_name],
                "bbox": [round(v, 3) for v in (r.x1, r.y1, r.x2 - r.x1, r.y2 - r.y1)],
                "score": round(r.score, 5)} for r in preds.itertuples()]
    path = tmp_path / "predictions.json"
    path.write_text(json.dumps(results))
    ids = ",".join(f"{k}={name}" for name, k in index.items())
    metrics = run_cli(tmp_path, GT, path, "--category-ids", ids)
    rounded, _ = load_predictions(path, category_ids={str(k): n for n, k in index.items()})
    tables = frames_to_tables(load_frames(GT), {"car": "car", "truck": "truck"}, split="val",
                              source="fixture")
    expected = evaluate(tables.images, tables.objects, rounded, EvalConfig()).metrics
    assert metrics["map50"] == expected["map50"] and abs(metrics["map50"] - 0.7531) < 5e-4
    assert metrics["coverage"]["matched_by_name"] == 202
    # naming only the evaluated classes' ids: the other ids are classes not evaluated, counted
    only = run_cli(tmp_path / "only", GT, path, "--category-ids",
                   f"{index['car']}=car,{index['truck']}=truck")
    assert only["map50"] == metrics["map50"]
    others = sorted(f"category_id {k}" for name, k in index.items()
                    if name not in ("car", "truck"))
    assert only["coverage"]["classes_not_evaluated"] == others
    assert only["skipped"]["predictions"]["reasons"]["class_not_evaluated"]["count"] == 1290


def test_results_list_ids_without_names_are_errors(coco_files, tmp_path, capsys):
    pred = coco_files["pred"]
    out = str(tmp_path / "out")
    assert cli(["--gt", str(GT), "--pred", str(pred), "--out", out]) == 2
    first = json.loads(pred.read_text())[0]
    assert capsys.readouterr().err == (
        f"evaluation: error: {pred}: result #0: image_id {first['image_id']} is a number, and "
        "nothing maps it to a frame name: give a COCO instances file as --gt (its 'images' "
        "name the ids), or results with 'file_name' or string image_ids\n")
    named = tmp_path / "named.json"
    named.write_text(json.dumps([{"image_id": "b1c66a42-6f7d68ca-0000001.jpg",
                                  "category_id": 3, "bbox": [1, 2, 3, 4], "score": 0.5}]))
    assert cli(["--gt", str(GT), "--pred", str(named), "--out", out]) == 2
    assert capsys.readouterr().err == (
        f"evaluation: error: {named}: result #0: category_id 3 has no name: give "
        "--category-ids (e.g. 0=car,1=truck: ultralytics writes the model's class index), a "
        "COCO --gt whose 'categories' hold it, or the file's own 'categories'\n")
    with pytest.raises(SystemExit) as flag_error:  # argparse's exit, one line
        cli(["--gt", str(GT), "--pred", str(named), "--out", out, "--category-ids", "3"])
    assert flag_error.value.code == 2
    assert capsys.readouterr().err == (
        "evaluation: error: argument --category-ids: '3': expected ID=NAME pairs, e.g. "
        "0=car,1=truck\n")


def write(tmp_path: Path, document: object, name: str = "gt.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


IMAGES = [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}]
CATEGORIES = [{"id": 1, "name": "car"}, {"id": 2, "name": "truck"}]


@pytest.mark.parametrize(("document", "error"), [
    ({"images": IMAGES, "categories": CATEGORIES,
      "annotations": [{"image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 1]}]},
     "annotation #0: image_id 9 is not an id of 'images'"),
    ({"images": IMAGES, "categories": CATEGORIES,
      "annotations": [{"image_id": 1, "category_id": 7, "bbox": [0, 0, 1, 1]}]},
     "annotation #0: category_id 7 is not an id of 'categories'"),
    ({"images": IMAGES, "categories": CATEGORIES,
      "annotations": [{"image_id": 1, "category_id": 1, "bbox": [0, 0, -1, 1]}]},
     "annotation #0: 'bbox' width/height -1.0, 1.0 < 0"),
    ({"images": IMAGES, "categories": CATEGORIES,
      "annotations": [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1]}]},
     "annotation #0: 'bbox' must be 4 finite numbers [x, y, w, h]"),
    ({"images": [*IMAGES, {"id": 3, "file_name": "a.jpg"}], "categories": CATEGORIES,
      "annotations": []}, "'images': file_name 'a.jpg' appears twice"),
    ({"images": IMAGES, "categories": CATEGORIES, "annotations": [
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "iscrowd": 2}]},
     "annotation #0: 'iscrowd' must be 0 or 1 and 'occluded' a boolean"),
    ({"images": "a.jpg", "categories": CATEGORIES, "annotations": []},
     "'images' must be a list of {'id', 'file_name'}"),
    ({"images": [], "categories": CATEGORIES, "annotations": []},
     "'images' is empty: no frames to evaluate"),
    ({"frames": None}, "a JSON object with neither a 'frames' list (Scalabel) nor 'images', "
                       "'annotations' and 'categories' (COCO instances)"),
])
def test_bad_coco_gt_is_one_line(tmp_path, capsys, document, error):
    gt = write(tmp_path, document)
    pred = write(tmp_path, [{"name": "a.jpg", "labels": []}], "pred.json")
    assert cli(["--gt", str(gt), "--pred", str(pred), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == f"evaluation: error: {gt}: {error}\n"


def test_coco_gt_reads_crowd_occlusion_attributes_and_drops_other_classes(tmp_path):
    gt = write(tmp_path, {
        "images": [{"id": 2, "file_name": "b.jpg", "weather": "rainy"},
                   {"id": 1, "file_name": "a.jpg", "attributes": {"timeofday": "night"}}],
        "categories": [*CATEGORIES, {"id": 3, "name": "pedestrian"}],
        "annotations": [
            {"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 30], "occluded": True},
            {"image_id": 1, "category_id": 1, "bbox": [100, 10, 40, 30],
             "attributes": {"occluded": True}},
            {"image_id": 1, "category_id": 1, "bbox": [200, 10, 40, 30], "iscrowd": 1,
             "occluded": True},
            {"image_id": 2, "category_id": 3, "bbox": [10, 10, 5, 5]}]})
    pred = write(tmp_path, [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 30],
                             "score": 0.9},
                            {"image_id": 1, "category_id": 1, "bbox": [100, 10, 40, 30],
                             "score": 0.8},
                            {"image_id": 1, "category_id": 1, "bbox": [200, 10, 40, 30],
                             "score": 0.7}], "pred.json")
    metrics = run_cli(tmp_path, gt, pred, "--occlusion-edges", "1")
    assert metrics["per_class"]["car"] == {"ap50": pytest.approx(1.0, abs=1e-12),
                                           "ap50_95": pytest.approx(1.0, abs=1e-12), "n_gt": 2}
    assert metrics["n_gt"] == 2 and metrics["n_predictions"] == 3  # one on the crowd region
    # a.jpg has 2 occluded cars (the crowd one is not counted), b.jpg none
    assert metrics["occlusion"]["2+"]["n_images"] == 1
    assert metrics["occlusion"]["0-1"]["n_images"] == 1
    assert set(metrics["weather"]) == {"rainy", "unknown"}
    assert set(metrics["timeofday"]) == {"night", "unknown"}
    assert metrics["coverage"]["gt_frames_without_detections"] == 1
    assert metrics["coverage"]["predicted_classes"] == {"car": 3}


def test_categories_must_be_classes_of_the_coco_gt(coco_files, tmp_path, capsys):
    gt = coco_files["gt"]
    assert cli(["--gt", str(gt), "--pred", str(coco_files["pred"]), "--out",
                str(tmp_path / "o"), "--categories", "car,Bus"]) == 2
    assert capsys.readouterr().err == (
        f"evaluation: error: --categories: 'Bus' not a class of {gt} (its classes: "
        f"{', '.join(sorted(BDD_CLASSES))}); 'Bus' is 'bus' in it\n")
