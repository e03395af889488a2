"""evaluation/recall.py: the "what it finds" table of report.md, checked against pycocotools'
own matching on real BDD100K frames and on a hand-made frame."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from common.config import ParamError
from evaluation import EvalConfig, evaluate, write_outputs
from evaluation.recall import recall_breakdown, render_recall


def run_cocoeval(gt: pd.DataFrame, preds: pd.DataFrame, cfg: EvalConfig) -> tuple[COCOeval,
                                                                                  dict]:
    """pycocotools' COCOeval at cfg.iou (area "all", cfg.max_dets) after evaluate(), and the
    objects-table row of each COCO annotation id."""
    ids = {name: i + 1 for i, name in enumerate(sorted(gt["image_id"].unique()))}
    cats = {name: k + 1 for k, name in enumerate(cfg.classes)}
    annotations, ann_row = [], {}
    for label, row in gt.iterrows():
        classes = list(cats) if pd.isna(row.class_name) else [row.class_name]
        for name in (c for c in classes if c in cats):
            box = [row.x1, row.y1, row.x2 - row.x1, row.y2 - row.y1]
            annotations.append({"id": len(annotations) + 1, "image_id": ids[row.image_id],
                                "category_id": cats[name], "bbox": box, "area": box[2] * box[3],
                                "iscrowd": int(row.ignore)})
            ann_row[len(annotations)] = label
    results = [{"image_id": ids[r.image_id], "category_id": cats[r.class_name],
                "bbox": [r.x1, r.y1, r.x2 - r.x1, r.y2 - r.y1], "score": r.score}
               for r in preds.itertuples() if r.image_id in ids and r.class_name in cats]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {"images": [{"id": i} for i in ids.values()],
                           "categories": [{"id": k} for k in cats.values()],
                           "annotations": annotations}
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(results), "bbox")
        ev.params.iouThrs = np.array([cfg.iou])
        ev.params.areaRng, ev.params.areaRngLbl = [[0, 1e10]], ["all"]
        ev.params.maxDets = [cfg.max_dets]
        ev.evaluate()
    return ev, ann_row


def coco_found(gt: pd.DataFrame, preds: pd.DataFrame, cfg: EvalConfig) -> pd.Series:
    """For every non-ignored GT row of an evaluated class: did pycocotools match it (IoU >=
    cfg.iou) to a detection of its class scoring >= cfg.report_score?"""
    ev, ann_row = run_cocoeval(gt, preds, cfg)
    found = {}
    for image in (e for e in ev.evalImgs if e is not None):
        score_of = dict(zip(image["dtIds"], image["dtScores"], strict=True))
        for g, (gt_id, ignored) in enumerate(zip(image["gtIds"], image["gtIgnore"],
                                                 strict=True)):
            if not ignored:
                match = int(image["gtMatches"][0][g])
                found[ann_row[gt_id]] = match > 0 and score_of[match] >= cfg.report_score
    return pd.Series(found)


@pytest.mark.parametrize("score", [0.25, 0.5])
def test_found_counts_equal_pycocotools_matching_on_the_fixture(mot_tables, score):
    images, gt, preds = mot_tables
    cfg = EvalConfig(report_score=score, report_small_height=16)
    table = recall_breakdown(images, gt, preds, cfg)
    found = coco_found(gt, preds, cfg)
    counted = gt.loc[found.index]
    expected = pd.DataFrame({
        "class": counted["class_name"].to_numpy(),
        "visibility": np.where(counted["occluded"], "occluded", "visible"),
        "size": np.where(counted["y2"] - counted["y1"] < 16, "< 16 px", ">= 16 px"),
        "found": found.to_numpy(),
    }).groupby(["class", "visibility", "size"])["found"].agg(["size", "sum"])
    got = table.set_index(["class", "visibility", "size"])
    assert sorted(got.index) == sorted(expected.index) and len(got) == 7  # no small visible truck
    for key, (n_gt, n_found) in expected.iterrows():
        assert (got.loc[key, "n_gt"], got.loc[key, "found"]) == (n_gt, n_found), key
    assert table["n_gt"].sum() == int((~gt["ignore"]).sum())
    # occluded boxes are found less often than visible ones, in a real detector's output
    share = table.groupby("visibility")[["found", "n_gt"]].sum()
    assert share.loc["occluded", "found"] / share.loc["occluded", "n_gt"] < (
        share.loc["visible", "found"] / share.loc["visible", "n_gt"])


def frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["image_id", "class_name", "x1", "y1", "x2", "y2",
                                       *(["occluded", "ignore"] if len(rows[0]) == 8
                                         else ["score"])])


IMAGES = pd.DataFrame({"image_id": ["a", "b"], "n_occluded_vehicles": [0, 0]})


def test_threshold_confusion_and_height_split_on_a_hand_made_frame():
    gt = frame([
        ("a", "car", 0, 0, 40, 30, False, False),      # found by the 0.9 car
        ("a", "car", 50, 0, 70, 10, True, False),       # 10 px tall: only a 0.1 car on it
        ("a", "truck", 100, 0, 140, 40, True, False),   # a 0.8 car on it: confusion
        ("a", "truck", 200, 0, 240, 15, True, False),   # 15 px: small, but 16 with bdd widths
        ("a", "car", 300, 0, 340, 30, False, True),     # ignored (crowd): not counted
        ("b", "car", 0, 0, 40, 30, False, False),       # two cars, one box on both:
        ("b", "car", 2, 0, 42, 30, False, False),       # one of them is found
    ])
    preds = frame([
        ("a", "car", 0, 0, 40, 30, 0.9), ("a", "truck", 0, 0, 40, 30, 0.3),
        ("a", "car", 50, 0, 70, 10, 0.1), ("a", "car", 100, 0, 140, 40, 0.8),
        ("a", "car", 300, 0, 340, 30, 0.95), ("b", "car", 1, 0, 41, 30, 0.7),
    ])
    cfg = EvalConfig(report_score=0.25, report_small_height=16)
    table = recall_breakdown(IMAGES, gt, preds, cfg)
    rows = {tuple(r[:3]): tuple(r[3:]) for r in table.itertuples(index=False)}
    assert rows == {("car", "visible", ">= 16 px"): (3, 2, 0),
                    ("car", "occluded", "< 16 px"): (1, 0, 0),
                    ("truck", "occluded", ">= 16 px"): (1, 0, 1),
                    ("truck", "occluded", "< 16 px"): (1, 0, 0)}
    assert list(table["class"]) == ["car", "car", "truck", "truck"]  # params' class order
    low = recall_breakdown(IMAGES, gt, preds, EvalConfig(report_score=0.05, report_small_height=16))
    assert low.loc[low["size"] == "< 16 px", "found"].tolist() == [1, 0]
    bdd = recall_breakdown(IMAGES, gt, preds, EvalConfig(convention="bdd", report_small_height=16))
    assert "< 16 px" not in set(bdd.loc[bdd["class"] == "truck", "size"])
    section = render_recall(table, EvalConfig())
    assert "| truck | occluded | >= 16 px | 1 | 0 (0%) | 1 |" in section


def test_report_md_carries_the_section_and_bad_threshold_is_a_clear_error(tmp_path):
    gt = frame([("a", "car", 0, 0, 40, 30, False, False)])
    preds = frame([("a", "car", 0, 0, 40, 30, 0.9)])
    cfg = EvalConfig()
    result = evaluate(IMAGES, gt, preds, cfg)
    section = render_recall(recall_breakdown(IMAGES, gt, preds, cfg), cfg)
    written = write_outputs(result, tmp_path, appendix=section)
    report = (tmp_path / "report.md").read_text()
    assert report == written and report.endswith(section)
    assert "| car | visible | >= 16 px | 1 | 1 (100%) | 0 |" in report
    with pytest.raises(ParamError, match=r"report_score: must be in \[0, 1\], got 1.5"):
        EvalConfig(report_score=1.5)
