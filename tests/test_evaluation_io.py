"""evaluation: prediction files, bad input, the metrics schema, written outputs and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from common.config import ParamError
from data.bdd100k import frames_to_tables, load_frames
from evaluation import EvalConfig, EvalInputError, evaluate, load_predictions, write_outputs
from evaluation.__main__ import main as cli
from evaluation.buckets import occlusion_bucket_names, occlusion_buckets

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MOT = FIXTURES / "bdd100k" / "scalabel_mot_sample"
LEGACY = FIXTURES / "bdd100k" / "legacy_unitest_val_bdd.json"
ONE = pytest.approx(1.0, abs=1e-12)  # COCO precision is tp / (tp + fp + eps): 1 - 1.1e-16


@pytest.fixture(scope="module")
def mot():
    tables = frames_to_tables(load_frames(MOT / "track_sample_anns.json"),
                              {"car": "car", "truck": "truck"}, split="val", source="mot")
    preds, report = load_predictions(MOT / "bbox_predictions.json")
    return tables.images, tables.objects, preds, report


def write_json(tmp_path: Path, document: object, name: str = "pred.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def frame(name: str, *labels: dict) -> dict:
    return {"name": name, "labels": list(labels)}


def label(category: str = "car", score: object = 0.5, **box: float) -> dict:
    coords = {"x1": 10.0, "y1": 10.0, "x2": 50.0, "y2": 40.0, **box}
    out = {"category": category, "box2d": coords}
    if score is not None:
        out["score"] = score
    return out


# ---------------------------------------------------------------- reading predictions

def test_scalabel_predictions_are_read_exactly(mot):
    _, _, preds, report = mot
    raw = json.loads((MOT / "bbox_predictions.json").read_text())
    first = raw[0]["labels"][0]
    assert report["format"] == "scalabel" and report["n_frames"] == 202
    assert len(preds) == report["n_boxes_read"] == 5372
    assert list(preds.columns) == ["image_id", "class_name", "x1", "y1", "x2", "y2", "score"]
    row = preds.iloc[0]
    assert (row["image_id"], row["class_name"]) == (raw[0]["name"], first["category"])
    assert [row[k] for k in ("x1", "y1", "x2", "y2", "score")] == [
        first["box2d"]["x1"], first["box2d"]["y1"], first["box2d"]["x2"], first["box2d"]["y2"],
        first["score"]]
    assert preds["class_name"].value_counts()["car"] == 3693


@pytest.mark.parametrize("convention", ["coco", "bdd"])
def test_coco_results_with_images_map_match_scalabel(mot, tmp_path, convention):
    images, gt, preds, _ = mot
    names = sorted(set(preds["image_id"]))
    ids = {name: 7 * i + 3 for i, name in enumerate(names)}  # ids unrelated to the order
    categories = {name: 10 + k for k, name in enumerate(sorted(set(preds["class_name"])))}
    extra = 1.0 if convention == "bdd" else 0.0
    results = [{"image_id": ids[r.image_id], "category_id": categories[r.class_name],
                "bbox": [r.x1, r.y1, r.x2 - r.x1 + extra, r.y2 - r.y1 + extra],
                "score": r.score} for r in preds.itertuples()]
    path = write_json(tmp_path, {
        "images": [{"id": i, "file_name": n} for n, i in ids.items()],
        "categories": [{"id": i, "name": n} for n, i in categories.items()],
        "annotations": results})
    coco_preds, report = load_predictions(path, convention=convention)
    assert report["format"] == "coco" and len(coco_preds) == len(preds)
    np.testing.assert_allclose(coco_preds[["x1", "y1", "x2", "y2"]].to_numpy(),
                               preds[["x1", "y1", "x2", "y2"]].to_numpy(), atol=1e-9)
    cfg = EvalConfig(convention=convention)
    ours, theirs = (evaluate(images, gt, p, cfg).metrics for p in (preds, coco_preds))
    assert abs(ours["map50"] - theirs["map50"]) < 1e-9
    assert abs(ours["map50_95"] - theirs["map50_95"]) < 1e-9


def test_plain_coco_results_list_with_frame_names(tmp_path):
    path = write_json(tmp_path, [{"image_id": "a.jpg", "category": "car", "score": 0.7,
                                  "bbox": [1.0, 2.0, 3.0, 4.0]}])
    preds, report = load_predictions(path)
    assert report["format"] == "coco"
    assert preds.iloc[0][["x1", "y1", "x2", "y2", "score"]].tolist() == [1.0, 2.0, 4.0, 6.0, 0.7]


def test_unknown_frames_are_counted_and_dropped(tmp_path):
    path = write_json(tmp_path, {"frames": [frame("a.jpg", label()),
                                            frame("zz.jpg", label(), label(score=0.1))]})
    preds, report = load_predictions(path, known_images={"a.jpg", "b.jpg"})
    assert preds["image_id"].tolist() == ["a.jpg"]
    assert report["skipped"]["unknown_frame"] == 2
    assert report["unmatched_prediction_frames"] == 1
    assert report["unmatched_frame_examples"] == ["zz.jpg"]


BAD_FILES = [
    ([frame("a.jpg", label(score=None))], ["'a.jpg'", "label #0", "'score' missing"]),
    ([frame("a.jpg", label(), label(score="high"))], ["'a.jpg'", "label #1", "'score'"]),
    ([frame("a.jpg", label(score=-0.1))], ["'a.jpg'", "score is negative"]),
    ([frame("a.jpg", label(x2=5.0))], ["'a.jpg'", "x2 < x1"]),
    ([frame("a.jpg", label(y2=5.0))], ["'a.jpg'", "y2 < y1"]),
    ([frame("a.jpg", label()), frame("a.jpg")], ["frame #1", "duplicated frame name 'a.jpg'"]),
    ([frame("a.jpg", {"score": 0.3, "box2d": {"x1": 0, "y1": 0, "x2": 1, "y2": 1}})],
     ["'a.jpg'", "'category'"]),
    ([frame("a.jpg", label(x1="0"))], ["'a.jpg'", "'x1'"]),
    ([{"labels": []}], ["frame #0", "'name'"]),
    ({"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "car"}],
      "annotations": [{"image_id": 1, "category_id": 9, "bbox": [0, 0, 1, 1], "score": 1}]},
     ["result #0", "category_id 9"]),
    ({"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "car"}],
      "annotations": [{"image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}]},
     ["result #0", "image_id 2"]),
    ({"annotations": [{"image_id": "a.jpg", "category": "car", "bbox": [0, 0, -1, 1],
                       "score": 1}]}, ["result #0", "< 0"]),
]


@pytest.mark.parametrize(("document", "fragments"), BAD_FILES)
def test_bad_prediction_files_name_frame_and_field(tmp_path, document, fragments):
    path = write_json(tmp_path, document)
    with pytest.raises(EvalInputError) as caught:
        load_predictions(path)
    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_scores_are_errors(tmp_path, literal):
    path = tmp_path / "pred.json"
    path.write_text('[{"name": "a.jpg", "labels": [{"category": "car", "score": ' + literal
                    + ', "box2d": {"x1": 0, "y1": 0, "x2": 1, "y2": 1}}]}]')
    with pytest.raises(EvalInputError, match=r"'a.jpg' label #0: score is NaN or infinite"):
        load_predictions(path)


def test_empty_missing_and_broken_files(tmp_path):
    for text in ("", "  \n"):
        (tmp_path / "empty.json").write_text(text)
        with pytest.raises(EvalInputError, match="empty file"):
            load_predictions(tmp_path / "empty.json")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_predictions(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text('[{"name": "a.jpg",')
    with pytest.raises(EvalInputError, match="invalid JSON at line 1"):
        load_predictions(tmp_path / "broken.json")
    empty_list, report = load_predictions(write_json(tmp_path, []))
    assert len(empty_list) == 0 and report["n_predictions"] == 0


# ---------------------------------------------------------------- the DataFrame API

def small_world():
    images = pd.DataFrame({"image_id": ["a", "b"], "n_occluded_vehicles": [0, 3],
                           "weather": ["foggy", None], "timeofday": ["night", "night"]})
    gt = pd.DataFrame({"image_id": ["a", "a"], "class_name": ["car", None],
                       "x1": [0.0, 100.0], "y1": [0.0, 0.0], "x2": [10.0, 200.0],
                       "y2": [10.0, 100.0], "ignore": [False, True]})
    preds = pd.DataFrame({"image_id": ["a", "a", "a"], "class_name": ["car", "truck", "car"],
                          "x1": [0.0, 120.0, 130.0], "y1": [0.0, 10.0, 10.0],
                          "x2": [10.0, 140.0, 150.0], "y2": [10.0, 30.0, 30.0],
                          "score": [0.5, 0.9, 0.9]})
    return images, gt, preds


def test_class_agnostic_ignore_region_absorbs_every_class():
    images, gt, preds = small_world()
    metrics = evaluate(images, gt, preds, EvalConfig()).metrics
    # the car inside the DontCare-like region is ignored: AP 1; truck has no GT: null, excluded
    assert metrics["per_class"]["car"] == {"ap50": ONE, "ap50_95": ONE, "n_gt": 1}
    assert metrics["per_class"]["truck"] == {"ap50": None, "ap50_95": None, "n_gt": 0}
    assert metrics["map50"] == ONE and metrics["n_ignore_regions_class_agnostic"] == 1
    without_region = evaluate(images, gt.iloc[:1], preds, EvalConfig()).metrics
    assert without_region["per_class"]["car"]["ap50"] == pytest.approx(0.5, abs=1e-12)


def test_schema_nulls_and_attribute_buckets():
    images, gt, preds = small_world()
    result = evaluate(images, gt, preds, EvalConfig(occlusion_edges=[1, 100]))
    metrics = result.metrics
    assert list(metrics)[:6] == ["map50", "map50_95", "per_class", "occlusion", "weather",
                                 "timeofday"]
    assert list(metrics["occlusion"]) == ["le1", "le100", "all", "0-1", "2-100", "101+"]
    assert metrics["occlusion"]["101+"] == {"map50": None, "n_images": 0, "n_gt": 0}
    # image b has no GT: its bucket has images but no AP
    assert metrics["occlusion"]["2-100"] == {"map50": None, "n_images": 1, "n_gt": 0}
    assert metrics["weather"]["foggy"]["map50"] == ONE
    assert metrics["weather"]["unknown"] == {"map50": None, "n_images": 1, "n_gt": 0}
    assert metrics["timeofday"] == {"night": {"map50": ONE, "n_images": 2, "n_gt": 1}}
    assert result.pr_occlusion["101+"].isna().all()
    assert set(result.buckets["bucket"]) >= {"le1", "weather:foggy", "timeofday:night"}
    json.loads(json.dumps(metrics, allow_nan=False))  # no NaN anywhere


def test_unmatched_frames_and_other_classes_are_counted_not_scored():
    images, gt, preds = small_world()
    extra = pd.DataFrame({"image_id": ["ghost", "ghost", "a"], "class_name": ["car", "car", "bus"],
                          "x1": [0.0] * 3, "y1": [0.0] * 3, "x2": [10.0] * 3, "y2": [10.0] * 3,
                          "score": [1.0] * 3})
    base = evaluate(images, gt, preds, EvalConfig()).metrics
    more = evaluate(images, gt, pd.concat([preds, extra]), EvalConfig()).metrics
    assert more["map50"] == base["map50"] and more["n_predictions"] == base["n_predictions"] == 3
    assert more["n_predictions_unmatched_frames"] == 2 and more["unmatched_prediction_frames"] == 1
    assert more["n_predictions_other_class"] == 1


def test_max_dets_cuts_per_image_and_class():
    images, gt, preds = small_world()
    metrics = evaluate(images, gt, preds, EvalConfig(max_dets=1)).metrics
    # per class: car keeps its 0.9 detection (ignored) and drops the 0.5 TP; truck keeps its one
    assert metrics["n_predictions_beyond_max_dets"] == 1
    assert metrics["per_class"]["car"]["ap50"] == 0.0


@pytest.mark.parametrize(("change", "fragment"), [
    (lambda i, g, p: (pd.concat([i, i.iloc[:1]]), g, p), "duplicated image_id 'a'"),
    (lambda i, g, p: (i, g.assign(image_id=["a", "nope"]), p), "image 'nope'"),
    (lambda i, g, p: (i, g.assign(ignore=[False, False]), p), "class_name missing"),
    (lambda i, g, p: (i, g, p.assign(x1=[0.0, np.nan, 0.0])), "x1 is missing or not finite"),
    (lambda i, g, p: (i, g, p.assign(score=[0.5, -1.0, 0.2])), "score is negative"),
    (lambda i, g, p: (i, g, p.assign(y2=[10.0, 30.0, 1.0])), "y2 < y1"),
    (lambda i, g, p: (i, g, p.drop(columns="score")), "missing column(s) ['score']"),
    (lambda i, g, p: (i.drop(columns="n_occluded_vehicles"), g, p), "n_occluded_vehicles"),
])
def test_bad_tables_are_clear_errors(change, fragment):
    images, gt, preds = change(*small_world())
    with pytest.raises(EvalInputError) as caught:
        evaluate(images, gt, preds, EvalConfig())
    assert fragment in str(caught.value)


@pytest.mark.parametrize(("fields", "message"), [
    ({"iou": 0.0}, "iou: must be in (0, 1], got 0.0"),
    ({"max_dets": 0}, "max_dets: must be a whole number >= 1, got 0"),
    ({"occlusion_edges": [5, 5]}, "occlusion_edges: must be strictly increasing, got [5, 5]"),
    ({"classes": []}, "classes: must be non-empty and unique, got []"),
    ({"convention": "voc"}, "convention: must be coco or bdd, got 'voc'")])
def test_bad_config_is_an_error_when_built(fields, message):
    """A config checks its own fields when built, before anything is evaluated."""
    with pytest.raises(ParamError) as caught:
        EvalConfig(**fields)
    assert str(caught.value) == message


def test_bucket_names_follow_the_edges():
    assert occlusion_bucket_names([5, 10]) == ["le5", "le10", "all", "0-5", "6-10", "11+"]
    assert occlusion_bucket_names([0, 3]) == ["le0", "le3", "all", "0-0", "1-3", "4+"]
    assert occlusion_bucket_names([]) == ["all", "0+"]
    masks = occlusion_buckets(np.array([0, 5, 6, 10, 11, 40]), [5, 10])
    assert {k: v.nonzero()[0].tolist() for k, v in masks.items()} == {
        "le5": [0, 1], "le10": [0, 1, 2, 3], "all": [0, 1, 2, 3, 4, 5], "0-5": [0, 1],
        "6-10": [2, 3], "11+": [4, 5]}


# ---------------------------------------------------------------- outputs and the CLI

def test_outputs_are_complete_deterministic_and_atomic(mot, tmp_path):
    images, gt, preds, _ = mot
    result = evaluate(images, gt, preds, EvalConfig())
    write_outputs(result, tmp_path / "a")
    write_outputs(evaluate(images, gt, preds, EvalConfig()), tmp_path / "b")
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["buckets.csv", "buckets.png", "metrics.json", "pr_class.csv", "pr_class.png",
                     "pr_occlusion.csv", "pr_occlusion.png", "pr_score.csv", "pr_score.png",
                     "report.md"]
    for name in names:  # same inputs, byte-identical outputs; no temp files left behind
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert json.loads((tmp_path / "a" / "metrics.json").read_text()) == result.metrics
    pr = pd.read_csv(tmp_path / "a" / "pr_occlusion.csv")
    assert list(pr.columns) == ["recall", "le5", "le10", "all", "0-5", "6-10", "11+"]
    assert len(pr) == 101 and pr["recall"].iloc[0] == 0.0 and pr["recall"].iloc[-1] == 1.0
    for bucket in pr.columns[1:]:  # each column's mean is that bucket's mAP50
        assert abs(pr[bucket].mean() - result.metrics["occlusion"][bucket]["map50"]) < 1e-9
    buckets = pd.read_csv(tmp_path / "a" / "buckets.csv")
    assert list(buckets.columns) == ["bucket", "map50", "n_images"]
    assert buckets.set_index("bucket").loc["11+", "n_images"] == 83
    report = (tmp_path / "a" / "report.md").read_text()
    assert "| bucket | mAP50 | images | GT |" in report and "| occlusion le5 | 0.4751 |" in report


def test_cli_on_the_fixture_with_a_baseline(mot, tmp_path, capsys):
    images, gt, preds, _ = mot
    out = tmp_path / "run" / "metrics.json"
    args = ["--gt", str(MOT / "track_sample_anns.json"), "--pred",
            str(MOT / "bbox_predictions.json"), "--out", str(out)]
    assert cli(args) == 0
    metrics = json.loads(out.read_text())
    pred_file = str(MOT / "bbox_predictions.json")
    not_evaluated = {"bicycle": 117, "bus": 96, "motorcycle": 108, "pedestrian": 709,
                     "rider": 152, "train": 108}
    assert metrics.pop("skipped") == {
        "ground_truth": {"source": str(MOT / "track_sample_anns.json"), "total": 0,
                         "reasons": {}},
        "predictions": {"source": pred_file, "total": 1290, "reasons": {
            "class_not_evaluated": {"count": 1290, "examples": [
                {"file": pred_file, "line": None, "detail": f"{name!r}: {n} boxes"}
                for name, n in list(not_evaluated.items())[:5]]},
            "no_box2d": {"count": 0}}}}
    assert metrics.pop("coverage") == {
        "gt_frames": 202, "prediction_frames": 202, "prediction_frames_listed": True,
        "matched_by_name": 202, "matched_by_stem": 0, "prediction_frames_not_in_gt": 0,
        "gt_frames_without_entry": 0, "gt_frames_without_entry_examples": [],
        "gt_frames_without_detections": 0,
        "predicted_classes": {**not_evaluated, "car": 3693, "truck": 389},
        "classes_not_evaluated": sorted(not_evaluated), "near_misses": {}}
    assert metrics == evaluate(images, gt, preds, EvalConfig()).metrics
    report = (out.parent / "report.md").read_text()
    assert "| predictions | class_not_evaluated | 1290 | 'bicycle': 117 boxes |" in report
    assert "Every one of the 202 GT frames has an entry in the predictions (0 without " \
           "detections)." in report
    baseline = tmp_path / "base.json"
    baseline.write_text(json.dumps({**metrics, "map50": metrics["map50"] - 0.1}))
    assert cli([*args, "--baseline", str(baseline), "--convention", "bdd"]) == 0
    report = (out.parent / "report.md").read_text()
    assert "| bucket | baseline | this run | Δ |" in report
    bdd = json.loads(out.read_text())
    expected_delta = bdd["map50"] - (metrics["map50"] - 0.1)
    assert f"| mAP50 (all images) | {metrics['map50'] - 0.1:.4f} | {bdd['map50']:.4f} | " \
           f"{expected_delta:+.4f} |" in report
    assert "| bucket | baseline | this run | Δ |" in capsys.readouterr().out


def test_cli_legacy_gt_buckets_and_errors(tmp_path, capsys):
    frames = load_frames(LEGACY)
    cars = [lab for lab in frames[0]["labels"] if lab["category"] == "car"]
    pred = write_json(tmp_path, [frame(frames[0]["name"],
                                       *[{**lab, "score": 1.0} for lab in cars])])
    out = tmp_path / "m.json"
    assert cli(["--gt", str(LEGACY), "--pred", str(pred), "--out", str(out),
                "--occlusion-edges", "13,14", "--iou", "0.7"]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["per_class"]["car"] == {"ap50": ONE, "ap50_95": ONE, "n_gt": 19}
    assert metrics["per_class"]["truck"]["ap50"] is None
    # the frame has 14 occluded cars: in le14 and 14-14, not in le13
    assert metrics["occlusion"]["14-14"]["n_images"] == 1
    assert metrics["occlusion"]["le13"] == {"map50": None, "n_images": 0, "n_gt": 0}
    assert metrics["weather"] == {"overcast": {"map50": ONE, "n_images": 1, "n_gt": 19}}
    assert list(metrics["timeofday"]) == ["daytime"]
    bad = write_json(tmp_path, [frame("x.jpg", label(score=None))], "bad.json")
    assert cli(["--gt", str(LEGACY), "--pred", str(bad), "--out", str(out)]) == 2
    assert "'score' missing" in capsys.readouterr().err


def test_cli_bad_baseline_is_a_one_line_error(tmp_path, capsys):
    """Each: exit 2 and one stderr line naming the file; nothing is written."""
    out = tmp_path / "run" / "metrics.json"
    args = ["--gt", str(LEGACY), "--pred", str(MOT / "bbox_predictions.json")]
    invalid = tmp_path / "invalid.json"
    invalid.write_text('{"map50": 0.5,\n')
    listed = tmp_path / "listed.json"
    listed.write_text("[0.5, 0.6]\n")
    cases = [
        ([*args, "--out", str(out), "--baseline", str(invalid)],
         f"evaluation: error: {invalid}: baseline metrics file is not valid JSON (line 2 "
         "column 1: Expecting property name enclosed in double quotes)"),
        ([*args, "--out", str(out), "--baseline", str(listed)],
         f"evaluation: error: {listed}: baseline metrics file holds a JSON array, expected an "
         "object like metrics.json"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert cli(argv) == 2
        assert capsys.readouterr().err == message + "\n"
    assert not (tmp_path / "run").exists() and not (tmp_path / "metrics.json").exists()


def test_cli_records_skipped_ground_truth_in_metrics_and_report(tmp_path):
    """A GT label the reader skips is counted, with its frame, in metrics.json and report.md."""
    gt = write_json(tmp_path, [
        {"name": "a.jpg", "labels": [{"id": "1", "category": "car",
                                      "box2d": {"x1": 10, "y1": 10, "x2": 50, "y2": 40}},
                                     {"id": "2", "category": "car",
                                      "poly2d": [{"vertices": [[0, 0], [5, 5]]}]}]}], "gt.json")
    pred = write_json(tmp_path, [frame("a.jpg", label(score=0.9))])
    out = tmp_path / "run" / "metrics.json"
    assert cli(["--gt", str(gt), "--pred", str(pred), "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["skipped"]["ground_truth"] == {
        "source": str(gt), "total": 1,
        "reasons": {"no_box2d": {"count": 1, "examples": [
            {"file": str(gt), "line": None, "detail": "a.jpg label #1: 'car' has no box2d"}]}}}
    assert metrics["n_gt"] == 1 and metrics["map50"] == ONE
    report = (out.parent / "report.md").read_text()
    assert "## Skipped input (not evaluated)" in report
    assert "| ground_truth | no_box2d | 1 | a.jpg label #1: 'car' has no box2d |" in report
