"""What the detector finds and what it misses, at one operating point.

AP sums up a whole precision-recall curve; to improve a detector one also needs to know *which*
ground truth it misses. This table answers that for the evaluated classes, split by visibility
(the GT's `occluded` flag) and by box height (below `cfg.report_small_height` pixels or not), at
the score threshold `cfg.report_score`:

- found: in COCO's matching at `cfg.iou` (evaluation/ap.py, the matcher of every AP here) the
  box is matched by a detection of its own class that scores at least the threshold.
- found as another class: no detection of its class found it, but a detection of another
  evaluated class above the threshold overlaps it with IoU >= `cfg.iou`: a class confusion.

Ignored boxes (KITTI DontCare, BDD ignored classes, crowd) are not counted. The numbers are
diagnostics for report.md, not part of the metrics schema.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.ap import BoxArrays, match_detections, same_image_pairs
from evaluation.config import EvalConfig
from evaluation.core import to_arrays

COLUMNS = ["class", "visibility", "size", "n_gt", "found", "found_as_other_class"]


def recall_breakdown(images: pd.DataFrame, gt: pd.DataFrame, predictions: pd.DataFrame,
                     cfg: EvalConfig) -> pd.DataFrame:
    """One row per (class, visible/occluded, small/not) that has GT: n_gt, found,
    found_as_other_class (columns COLUMNS). The tables are evaluate()'s, validated the same way,
    and matched by the same COCO matcher."""
    arrays = to_arrays(images, gt, predictions, cfg)
    boxes, detections, n_images = arrays.gt, arrays.dt, len(arrays.images)
    matches = match_detections(boxes, detections, n_images, len(cfg.classes),
                               np.array([cfg.iou]), cfg.max_dets, record_gt=True)
    matched = matches.gt[0][matches.score >= cfg.report_score]
    found = np.zeros(len(boxes), bool)
    found[matched[matched >= 0]] = True
    above = np.flatnonzero(detections.score >= cfg.report_score)  # still image-major
    det, box = same_image_pairs(boxes, BoxArrays(detections.image[above], detections.cls[above],
                                                 detections.xywh[above]), n_images, cfg.iou)
    as_other = np.zeros(len(boxes), bool)
    as_other[box[detections.cls[above][det] != boxes.cls[box]]] = True
    counted = ~boxes.crowd  # ignore regions are not counted
    source = gt.iloc[boxes.row[counted]]
    extra = 1.0 if cfg.convention == "bdd" else 0.0
    table = pd.DataFrame({
        "class_index": boxes.cls[counted],
        "occluded": source["occluded"].fillna(False).astype(bool).to_numpy(),
        "small": (source["y2"] - source["y1"] + extra < cfg.report_small_height).to_numpy(),
        "found": found[counted], "found_as_other_class": as_other[counted] & ~found[counted],
    })
    grouped = table.groupby(["class_index", "occluded", "small"]).agg(
        n_gt=("found", "size"), found=("found", "sum"),
        found_as_other_class=("found_as_other_class", "sum")).reset_index()
    grouped["class"] = [cfg.classes[k] for k in grouped["class_index"]]
    grouped["visibility"] = np.where(grouped["occluded"], "occluded", "visible")
    small = f"{cfg.report_small_height:g} px"
    grouped["size"] = np.where(grouped["small"], f"< {small}", f">= {small}")
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
