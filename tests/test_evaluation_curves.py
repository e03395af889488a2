"""The curve tables behind the plots (pr_class.csv, pr_score.csv) against pycocotools on the
real BDD100K fixture."""

from __future__ import annotations

import contextlib
import io

import numpy as np
from test_evaluation_recall import run_cocoeval

from evaluation import EvalConfig, evaluate
from evaluation.core import SCORE_THRESHOLDS


def test_pr_class_is_cocoeval_precision_per_class(mot_tables):
    images, gt, preds = mot_tables
    cfg = EvalConfig()
    result = evaluate(images, gt, preds, cfg)
    ev, _ = run_cocoeval(gt, preds, cfg)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.accumulate()
    assert list(result.pr_class.columns) == ["recall", "car", "truck"]
    for k, name in enumerate(cfg.classes):  # (T, R, K, A, M): IoU 0.5, area all, 100 dets
        assert np.array_equal(result.pr_class[name].to_numpy(), ev.eval["precision"][0, :, k, 0, 0])
        assert result.pr_class[name].mean() == result.metrics["per_class"][name]["ap50"]


def test_pr_score_is_cocoeval_matching_counted_above_each_threshold(mot_tables):
    """precision(s) = TP / kept detections scoring >= s, recall(s) = TP / GT, classes pooled;
    detections COCO ignores (matched to a crowd region) count neither way."""
    images, gt, preds = mot_tables
    cfg = EvalConfig()
    sweep = evaluate(images, gt, preds, cfg).pr_score
    ev, _ = run_cocoeval(gt, preds, cfg)
    scores, matched, n_gt = [], [], 0
    for image in (e for e in ev.evalImgs if e is not None):
        keep = ~np.asarray(image["dtIgnore"][0], bool)
        scores.append(np.asarray(image["dtScores"])[keep])
        matched.append(np.asarray(image["dtMatches"][0])[keep] > 0)
        n_gt += int((~np.asarray(image["gtIgnore"], bool)).sum())
    scores, matched = np.concatenate(scores), np.concatenate(matched)
    top = scores.max()
    expected = SCORE_THRESHOLDS[SCORE_THRESHOLDS <= top]
    assert np.array_equal(sweep["score"].to_numpy(), expected)  # stops at the top score
    assert sweep["score"].iloc[5] == 0.05 and len(expected) > 50
    for row in sweep.itertuples():
        above = scores >= row.score
        assert row.precision == matched[above].sum() / above.sum()
        assert row.recall == matched[above].sum() / n_gt
    assert n_gt == evaluate(images, gt, preds, cfg).metrics["n_gt"]
