"""What the detector finds and what it misses, at one operating point.

AP sums up a whole precision-recall curve; to improve a detector one also needs to know *which*
ground truth it misses. This table answers that for the evaluated classes, split by visibility
(the GT's `occluded` flag) and by box height (below `cfg.report_small_height` pixels or not), at
the score threshold `cfg.report_score`:

- found: the box is matched by a detection of its own class. Matching is COCO's greedy rule
  restricted to detections scoring at least the threshold: detections in descending score
  order, each taking the unmatched box of its class with the highest IoU >= `cfg.iou`.
- found as another class: no detection of its class found it, but a detection of another
  evaluated class above the threshold overlaps it with IoU >= `cfg.iou`: a class confusion.

Ignored boxes (KITTI DontCare, BDD ignored classes, crowd) are not counted. The numbers are
diagnostics for report.md, not part of the metrics schema.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.ap import xyxy_to_xywh
from evaluation.core import EvalConfig, check_config

COLUMNS = ["class", "visibility", "size", "n_gt", "found", "found_as_other_class"]


def _iou(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(len(boxes), len(others)) IoU of [x, y, w, h] boxes."""
    x1 = np.maximum(boxes[:, None, 0], others[None, :, 0])
    y1 = np.maximum(boxes[:, None, 1], others[None, :, 1])
    x2 = np.minimum((boxes[:, 0] + boxes[:, 2])[:, None], (others[:, 0] + others[:, 2])[None])
    y2 = np.minimum((boxes[:, 1] + boxes[:, 3])[:, None], (others[:, 1] + others[:, 3])[None])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = (boxes[:, 2] * boxes[:, 3])[:, None] + (others[:, 2] * others[:, 3])[None] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _greedy_found(iou: np.ndarray, threshold: float) -> np.ndarray:
    """Which GT (columns) the detections (rows, in descending score order) match; an IoU tie
    goes to the last box, as in COCOeval."""
    found = np.zeros(iou.shape[1], bool)
    for row in iou:
        candidates = np.where(found, -1.0, row)
        best = len(candidates) - 1 - int(np.argmax(candidates[::-1]))
        if candidates[best] >= threshold:
            found[best] = True
    return found


def recall_breakdown(gt: pd.DataFrame, predictions: pd.DataFrame,
                     cfg: EvalConfig) -> pd.DataFrame:
    """One row per (class, visible/occluded, small/not) that has GT: n_gt, found,
    found_as_other_class (columns COLUMNS). `gt` and `predictions` are evaluate()'s tables."""
    cfg = check_config(cfg)
    min_score, small_below = cfg.report_score, cfg.report_small_height
    counted = gt[gt["class_name"].isin(cfg.classes) & ~gt["ignore"].astype(bool)]
    scored = predictions[predictions["class_name"].isin(cfg.classes)
                         & (predictions["score"] >= min_score)]
    scored = scored.sort_values("score", ascending=False, kind="stable")
    detections_by_image = dict(tuple(scored.groupby("image_id", sort=False)))
    found = np.zeros(len(counted), bool)
    as_other = np.zeros(len(counted), bool)
    row_of = {label: k for k, label in enumerate(counted.index)}
    for image_id, boxes in counted.groupby("image_id", sort=False):
        detections = detections_by_image.get(image_id)
        if detections is None:
            continue
        gt_xywh = xyxy_to_xywh(*(boxes[c].to_numpy(float) for c in ("x1", "y1", "x2", "y2")),
                               cfg.convention)
        dt_xywh = xyxy_to_xywh(*(detections[c].to_numpy(float)
                                 for c in ("x1", "y1", "x2", "y2")), cfg.convention)
        iou = _iou(dt_xywh, gt_xywh)
        same = detections["class_name"].to_numpy()[:, None] == boxes["class_name"].to_numpy()[None]
        rows = [row_of[label] for label in boxes.index]
        for name in cfg.classes:
            dets, cols = detections["class_name"].to_numpy() == name, np.flatnonzero(
                boxes["class_name"].to_numpy() == name)
            if len(cols):
                hit = _greedy_found(iou[np.ix_(dets, cols)], cfg.iou)
                found[[rows[c] for c in cols[hit]]] = True
        other = ((iou >= cfg.iou) & ~same).any(axis=0)
        as_other[rows] |= other
    as_other &= ~found
    extra = 1.0 if cfg.convention == "bdd" else 0.0
    table = pd.DataFrame({
        "class_index": counted["class_name"].map({c: k for k, c in enumerate(cfg.classes)}),
        "occluded": counted["occluded"].fillna(False).astype(bool).to_numpy(),
        "small": (counted["y2"] - counted["y1"] + extra < small_below).to_numpy(),
        "found": found, "found_as_other_class": as_other,
    })
    grouped = table.groupby(["class_index", "occluded", "small"]).agg(
        n_gt=("found", "size"), found=("found", "sum"),
        found_as_other_class=("found_as_other_class", "sum")).reset_index()
    grouped["class"] = [cfg.classes[k] for k in grouped["class_index"]]
    grouped["visibility"] = np.where(grouped["occluded"], "occluded", "visible")
    grouped["size"] = np.where(grouped["small"], f"< {small_below:g} px",
                               f">= {small_below:g} px")
    return grouped[COLUMNS].astype({"n_gt": int, "found": int, "found_as_other_class": int})


def render_recall(table: pd.DataFrame, cfg: EvalConfig) -> str:
    """The report.md section for a recall_breakdown table."""
    lines = ["", f"## What it finds (detections scoring >= {cfg.report_score:g}, "
             f"IoU >= {cfg.iou:g})", "",
             "| class | visibility | height | GT | found | found as another class |",
             "|---|---|---|---:|---:|---:|"]
    for row in table.itertuples(index=False):
        share = row.found / row.n_gt
        lines.append(f"| {row[0]} | {row.visibility} | {row.size} | {row.n_gt} | {row.found} "
                     f"({share:.0%}) | {row.found_as_other_class} |")
    return "\n".join(lines) + "\n"
