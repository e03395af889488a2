"""evaluation: equality with pycocotools (the oracle) on real BDD100K frames and random worlds."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from evaluation import EvalConfig, evaluate, load_predictions
from evaluation.ap import IOU_THRESHOLDS, score_order

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MOT = FIXTURES / "bdd100k" / "scalabel_mot_sample"
TOL = 1e-9


# ---------------------------------------------------------------- the oracle: pycocotools itself

def coco_precision(images: pd.DataFrame, gt: pd.DataFrame, preds: pd.DataFrame, cfg: EvalConfig,
                   thresholds: list[float], subset: set[str] | None = None) -> np.ndarray:
    """pycocotools' precision array (T, 101, K), NaN where it says -1, on the same boxes.

    Images get COCO ids in sorted image_id order (the order our evaluator uses to break score
    ties across images); class-agnostic ignore regions become a crowd box of every class.
    """
    extra = 1.0 if cfg.convention == "bdd" else 0.0
    ids = {name: i + 1 for i, name in enumerate(sorted(images["image_id"]))}
    cats = {name: k + 1 for k, name in enumerate(cfg.classes)}

    def bbox(row) -> list[float]:
        return [row.x1, row.y1, row.x2 - row.x1 + extra, row.y2 - row.y1 + extra]

    annotations = []
    for row in gt.itertuples():
        classes = list(cats) if pd.isna(row.class_name) else [row.class_name]
        for name in classes:
            if name in cats:
                box = bbox(row)
                annotations.append({"id": len(annotations) + 1, "image_id": ids[row.image_id],
                                    "category_id": cats[name], "bbox": box,
                                    "area": box[2] * box[3], "iscrowd": int(row.ignore)})
    dataset = {"images": [{"id": i} for i in ids.values()],
               "categories": [{"id": k} for k in cats.values()], "annotations": annotations}
    results = [{"image_id": ids[row.image_id], "category_id": cats[row.class_name],
                "bbox": bbox(row), "score": row.score}
               for row in preds.itertuples() if row.image_id in ids and row.class_name in cats]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = dataset
        coco_gt.createIndex()
        if results:
            coco_dt = coco_gt.loadRes(results)
        else:  # loadRes cannot take an empty list
            coco_dt = COCO()
            coco_dt.dataset = {**dataset, "annotations": []}
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.params.iouThrs = np.array(thresholds, dtype=np.float64)
        ev.params.areaRng, ev.params.areaRngLbl = [[0, 1e10]], ["all"]
        ev.params.maxDets = [cfg.max_dets]
        if subset is not None:
            ev.params.imgIds = sorted(ids[name] for name in subset)
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][:, :, :, 0, 0]
    return np.where(precision < 0, np.nan, precision)


def oracle_metrics(images, gt, preds, cfg, subset=None) -> dict:
    """per-class AP at cfg.iou and AP50:95, and the class-mean PR curve, from pycocotools."""
    main = coco_precision(images, gt, preds, cfg, [cfg.iou], subset)[0]  # (101, K)
    full = coco_precision(images, gt, preds, cfg, list(IOU_THRESHOLDS), subset)
    ap = main.mean(axis=0)
    ap_range = full.mean(axis=(0, 1))
    has_gt = ~np.isnan(ap)
    return {"ap": ap, "ap_range": ap_range,
            "map": ap[has_gt].mean() if has_gt.any() else None,
            "map_range": ap_range[has_gt].mean() if has_gt.any() else None,
            "curve": main[:, has_gt].mean(axis=1) if has_gt.any() else None}


def assert_close(ours: float | None, theirs: float | None, what: str) -> None:
    if theirs is None or (isinstance(theirs, float) and np.isnan(theirs)):
        assert ours is None, f"{what}: ours {ours}, pycocotools has no GT (null expected)"
    else:
        assert ours is not None and abs(ours - theirs) <= TOL, f"{what}: {ours} vs {theirs}"


# ---------------------------------------------------------------- real BDD100K frames

def assert_equals_pycocotools(metrics: dict, images, gt, preds, cfg) -> None:
    """mAP50, mAP50:95 and every class's AP of our metrics equal pycocotools' on the same boxes."""
    ref = oracle_metrics(images, gt, preds, cfg)
    assert_close(metrics["map50"], ref["map"], "map50")
    assert_close(metrics["map50_95"], ref["map_range"], "map50_95")
    for k, name in enumerate(cfg.classes):
        assert_close(metrics["per_class"][name]["ap50"], ref["ap"][k], f"{name} ap50")
        assert_close(metrics["per_class"][name]["ap50_95"], ref["ap_range"][k], f"{name} 50:95")


@pytest.mark.parametrize("convention", ["coco", "bdd"])
def test_fixture_equals_pycocotools(mot_tables, convention):
    images, gt, preds = mot_tables
    cfg = EvalConfig(convention=convention)
    result = evaluate(images, gt, preds, cfg)
    metrics = result.metrics
    assert_equals_pycocotools(metrics, images, gt, preds, cfg)
    for name in cfg.classes:
        expected_gt = int(((gt["class_name"] == name) & ~gt["ignore"]).sum())
        assert metrics["per_class"][name]["n_gt"] == expected_gt
    # the real numbers are in a sensible range, with crowd boxes in play
    assert gt["ignore"].sum() > 0 and 0.5 < metrics["map50"] < 1.0
    assert metrics["per_class"]["car"]["n_gt"] == 2594  # the non-crowd cars of the sample
    # every occlusion bucket against pycocotools on that bucket's image subset
    counts = images.set_index("image_id")["n_occluded_vehicles"]
    limits = {"le5": (0, 5), "le10": (0, 10), "all": (0, 10**9), "0-5": (0, 5),
              "6-10": (6, 10), "11+": (11, 10**9)}
    for bucket, (lo, hi) in limits.items():
        subset = set(counts.index[(counts >= lo) & (counts <= hi)])
        ref = oracle_metrics(images, gt, preds, cfg, subset)
        got = metrics["occlusion"][bucket]
        assert got["n_images"] == len(subset) > 0
        assert_close(got["map50"], ref["map"], f"bucket {bucket}")
        column = result.pr_occlusion[bucket].to_numpy()
        assert np.max(np.abs(column - ref["curve"])) <= TOL, f"PR curve {bucket}"
        # the bucket's mAP50 is the mean of its PR column
        assert abs(column.mean() - got["map50"]) <= TOL


def test_fixture_bucket_counts(mot_tables):
    images, gt, preds = mot_tables
    metrics = evaluate(images, gt, preds, EvalConfig()).metrics
    occ = metrics["occlusion"]
    assert occ["all"]["n_images"] == 202 == metrics["n_images"]
    assert occ["0-5"]["n_images"] + occ["6-10"]["n_images"] + occ["11+"]["n_images"] == 202
    assert occ["le10"]["n_images"] == occ["0-5"]["n_images"] + occ["6-10"]["n_images"]
    assert occ["0-5"]["n_gt"] + occ["6-10"]["n_gt"] + occ["11+"]["n_gt"] == metrics["n_gt"]
    # the MOT sample has no weather/timeofday attributes: one "unknown" bucket = everything
    assert metrics["weather"] == {"unknown": occ["all"]}
    assert metrics["timeofday"] == {"unknown": occ["all"]}
    assert metrics["n_predictions_other_class"] == int((~preds["class_name"].isin(
        ["car", "truck"])).sum())


def test_empty_predictions_fixture_is_zero_ap(mot_tables):
    images, gt, _ = mot_tables
    preds, report = load_predictions(MOT / "bbox_predictions_empty.json")
    assert len(preds) == 0 and report["skipped"]["no_box2d"] == 1
    metrics = evaluate(images, gt, preds, EvalConfig()).metrics
    assert metrics["map50"] == 0.0 and metrics["map50_95"] == 0.0
    assert metrics["per_class"]["truck"] == {"ap50": 0.0, "ap50_95": 0.0, "n_gt": 65}


# ---------------------------------------------------------------- random worlds (hypothesis)

# few values, so many score ties; the first set is exact in float32 (detector-like scores take
# the packed-key sort), the second is not (numpy's stable sort)
SCORE_SETS = [[0.125, 0.25, 0.5, 0.5, 0.75, 1.0], [0.1, 0.25, 0.5, 0.5, 0.9, 1.0]]


@st.composite
def worlds(draw):
    n_images = draw(st.integers(1, 5))
    names = [f"img{i:02d}.jpg" for i in draw(st.permutations(range(n_images)))]
    # Boxes on a coarse grid. In a "row" world every box is 10x10 at y=0, x on a 2.5 grid, so
    # IoUs are 1, 0.6, 1/3 or 1/7 and a detection halfway between two ground truths ties
    # exactly (COCOeval then takes the later one). Otherwise sizes include zero and tiny boxes.
    row_world = draw(st.booleans())
    x_coord = st.integers(0, 6).map(lambda v: v * 2.5)
    y_coord = st.just(0.0) if row_world else st.sampled_from([0.0, 0.0, 2.5, 10.0])
    size = st.just(10.0) if row_world else st.sampled_from([10.0, 10.0, 0.0, 0.5, 5.0, 20.0])

    def boxes(image_names, kinds, n_min, n_max):
        rows = []
        for name in image_names:
            for _ in range(draw(st.integers(n_min, n_max))):
                x, y, w, h = draw(x_coord), draw(y_coord), draw(size), draw(size)
                rows.append((name, draw(kinds), x, y, x + w, y + h))
        return rows

    n_min = 2 if row_world else 0
    gt_kinds = st.just("car") if row_world else st.sampled_from(["car", "car", "truck", "agnostic",
                                                                 "bus"])
    gt_rows = boxes(names[: draw(st.integers(0, n_images))],  # some frames only have predictions
                    gt_kinds, n_min, 6)
    gt = pd.DataFrame(gt_rows, columns=["image_id", "class_name", "x1", "y1", "x2", "y2"])
    crowd = st.sampled_from([False, False, False, True])
    gt["ignore"] = [draw(crowd) if c != "agnostic" else True for c in gt["class_name"]]
    gt["class_name"] = gt["class_name"].replace({"agnostic": None})
    pred_kinds = st.just("car") if row_world else st.sampled_from(["car", "truck", "bus"])
    pred_rows = boxes(names, pred_kinds, n_min, 8)
    preds = pd.DataFrame(pred_rows, columns=["image_id", "class_name", "x1", "y1", "x2", "y2"])
    scores = st.sampled_from(draw(st.sampled_from(SCORE_SETS)))
    preds["score"] = [draw(scores) for _ in range(len(preds))]
    images = pd.DataFrame({"image_id": names,
                           "n_occluded_vehicles": [draw(st.integers(0, 12)) for _ in names]})
    cfg = EvalConfig(iou=draw(st.sampled_from([0.5, 0.75, 0.3])),
                     max_dets=draw(st.sampled_from([100, 3, 1])),
                     convention=draw(st.sampled_from(["coco", "bdd"])))
    return images, gt, preds, cfg


@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_random_worlds_equal_pycocotools(world):
    images, gt, preds, cfg = world
    metrics = evaluate(images, gt, preds, cfg).metrics
    assert_equals_pycocotools(metrics, images, gt, preds, cfg)
    occ = metrics["occlusion"]["6-10"]
    subset = set(images["image_id"][images["n_occluded_vehicles"].between(6, 10)])
    if subset:
        assert_close(occ["map50"], oracle_metrics(images, gt, preds, cfg, subset)["map"], "6-10")
    else:
        assert occ == {"map50": None, "n_images": 0, "n_gt": 0}


def test_crowd_region_absorbs_many_detections_and_is_not_counted():
    """Two detections inside one crowd box: neither TP nor FP, so AP stays 1."""
    images = pd.DataFrame({"image_id": ["a"], "n_occluded_vehicles": [0]})
    gt = pd.DataFrame({"image_id": ["a", "a"], "class_name": ["car", "car"],
                       "x1": [0.0, 100.0], "y1": [0.0, 0.0], "x2": [10.0, 200.0],
                       "y2": [10.0, 100.0], "ignore": [False, True]})
    preds = pd.DataFrame({"image_id": ["a"] * 3, "class_name": ["car"] * 3,
                          "x1": [110.0, 0.0, 150.0], "y1": [10.0, 0.0, 50.0],
                          "x2": [120.0, 10.0, 160.0], "y2": [20.0, 10.0, 60.0],
                          "score": [0.9, 0.8, 0.95]})
    metrics = evaluate(images, gt, preds, EvalConfig(classes=["car"])).metrics
    assert metrics["map50"] == pytest.approx(1.0, abs=1e-12)
    assert metrics["per_class"]["car"]["n_gt"] == 1
    # the same detections without the crowd region: two FPs ranked above the TP
    gt_plain = gt[~gt["ignore"]]
    plain = evaluate(images, gt_plain, preds, EvalConfig(classes=["car"])).metrics
    assert plain["map50"] == pytest.approx(1 / 3, abs=1e-12)


def test_iou_tie_goes_to_the_last_ground_truth_like_cocoeval():
    """A sits exactly between GT1 and GT2 (IoU 0.6 with both): COCOeval gives it GT2 (the later
    one), so B, which only overlaps GT2, becomes a false positive: AP = 51/101, not 1."""
    images = pd.DataFrame({"image_id": ["a"], "n_occluded_vehicles": [0]})
    gt = pd.DataFrame({"image_id": ["a", "a"], "class_name": ["car", "car"],
                       "x1": [0.0, 5.0], "y1": [0.0, 0.0], "x2": [10.0, 15.0],
                       "y2": [10.0, 10.0], "ignore": [False, False]})
    preds = pd.DataFrame({"image_id": ["a", "a"], "class_name": ["car", "car"],
                          "x1": [2.5, 6.0], "y1": [0.0, 0.0], "x2": [12.5, 16.0],
                          "y2": [10.0, 10.0], "score": [0.9, 0.8]})
    cfg = EvalConfig(classes=["car"])
    metrics = evaluate(images, gt, preds, cfg).metrics
    assert metrics["map50"] == pytest.approx(51 / 101, abs=1e-12)
    assert_close(metrics["map50"], oracle_metrics(images, gt, preds, cfg)["map"], "tie")


@pytest.mark.parametrize("float32_exact", [True, False])
def test_score_order_is_cocos_stable_descending_sort(float32_exact):
    rng = np.random.default_rng(0)
    values = np.array([0.0, -0.0, 0.5, 1.0, 0.25, 3.0, 2.0**-100, 7.5e5])
    for _ in range(50):
        score = rng.choice(values, int(rng.integers(0, 40)))
        if not float32_exact:
            score = score + 1e-12
        assert np.array_equal(score_order(score), np.argsort(-score, kind="mergesort"))
