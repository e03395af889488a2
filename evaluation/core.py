"""The in-graph entry point: manifest tables + predictions -> COCO-exact metrics per bucket."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from evaluation.ap import (
    IGNORED,
    IOU_THRESHOLDS,
    RECALL_THRESHOLDS,
    TP,
    BoxArrays,
    Matches,
    match_detections,
    precision_curves,
    stable_argsort_ints,
    xyxy_to_xywh,
)
from evaluation.buckets import (
    ATTRIBUTES,
    image_attribute_buckets,
    occlusion_buckets,
)
from evaluation.config import EvalConfig
from evaluation.errors import EvalInputError

BOX_COLUMNS = ["x1", "y1", "x2", "y2"]
# pr_score.csv's score thresholds: where to set the operating point
SCORE_THRESHOLDS = np.round(np.linspace(0.0, 1.0, 101), 2)  # 0.94, not 0.9400000000000001


@dataclass
class EvalResult:
    metrics: dict  # the metrics.json schema of docs/architecture.md
    pr_occlusion: pd.DataFrame  # recall + one precision column per occlusion bucket (101 rows)
    buckets: pd.DataFrame  # bucket, map50, n_images (every occlusion/weather/timeofday bucket)
    pr_class: pd.DataFrame  # recall + one precision column per class, all images (101 rows)
    pr_score: pd.DataFrame  # score, precision, recall: classes pooled, detections >= score
    config: EvalConfig = field(default_factory=EvalConfig)  # what produced it (for the report)


def _require_columns(table: pd.DataFrame, columns: list[str], name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise EvalInputError(f"{name} table: missing column(s) {missing}")


def _first_bad(table: pd.DataFrame, bad: np.ndarray, name: str, problem: str) -> None:
    """Raise naming the first offending row's image and the count, if any row is bad."""
    if bad.any():
        row = table.iloc[int(np.flatnonzero(bad)[0])]
        raise EvalInputError(f"{name}: {problem} (image {row['image_id']!r}; "
                             f"{int(bad.sum())} row(s) in all)")


def _check_boxes(table: pd.DataFrame, name: str) -> np.ndarray:
    coords = table[BOX_COLUMNS].to_numpy(dtype=np.float64, na_value=np.nan)
    for i, column in enumerate(BOX_COLUMNS):
        _first_bad(table, ~np.isfinite(coords[:, i]), name, f"{column} is missing or not finite")
    _first_bad(table, coords[:, 2] < coords[:, 0], name, "x2 < x1")
    _first_bad(table, coords[:, 3] < coords[:, 1], name, "y2 < y1")
    return coords


def _image_index(images: pd.DataFrame) -> tuple[pd.Index, pd.DataFrame]:
    """Images in COCO's order, which breaks score ties across images: by image_id, or by the
    `coco_order` column when the images come from a COCO file (its ascending ids,
    evaluation/coco.py)."""
    _require_columns(images, ["image_id", "n_occluded_vehicles"], "images")
    if images["image_id"].isna().any():
        raise EvalInputError("images table: an image_id is missing")
    duplicated = images["image_id"][images["image_id"].duplicated()]
    if len(duplicated):
        raise EvalInputError(f"images table: duplicated image_id {duplicated.iloc[0]!r} "
                             f"({len(duplicated)} duplicate(s))")
    order = "coco_order" if "coco_order" in images else "image_id"
    table = images.sort_values(order, kind="stable").reset_index(drop=True)
    occluded = pd.to_numeric(table["n_occluded_vehicles"], errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan)
    _first_bad(table, ~(occluded >= 0), "images table", "n_occluded_vehicles missing or < 0")
    return pd.Index(table["image_id"].astype(str)), table


def _lookup(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Position of each value in index; -1 if absent, -2 if missing (NA).

    Hash-encodes the column first, so only its few distinct values are looked up (a million
    string cells would otherwise each become a Python object).
    """
    codes, uniques = pd.factorize(values)
    found = index.get_indexer(pd.Index(uniques).astype(str)) if len(uniques) else np.zeros(0)
    return np.append(found, -2).astype(np.int64)[codes]  # code -1 (NA) picks the -2 at the end


def _class_codes(values: pd.Series, classes: list[str]) -> np.ndarray:
    """Index into classes; -1 for other classes, -2 for a missing class (class-agnostic)."""
    return _lookup(values, pd.Index(classes))


def _gt_arrays(gt: pd.DataFrame, index: pd.Index, cfg: EvalConfig) -> tuple[BoxArrays, dict]:
    _require_columns(gt, ["image_id", "class_name", *BOX_COLUMNS, "ignore"], "objects")
    image = _lookup(gt["image_id"], index)
    _first_bad(gt, image < 0, "objects table", "image_id missing or not in the images table")
    if gt["ignore"].isna().any():
        _first_bad(gt, gt["ignore"].isna().to_numpy(), "objects table", "ignore is missing")
    crowd = gt["ignore"].to_numpy(dtype=bool)
    cls = _class_codes(gt["class_name"], cfg.classes)
    _first_bad(gt, (cls == -2) & ~crowd, "objects table",
               "class_name missing on a box that is not an ignore region")
    coords = _check_boxes(gt, "objects table")
    xywh = xyxy_to_xywh(*coords.T, cfg.convention)
    # class-agnostic ignore regions (KITTI DontCare) are crowd regions of every class
    agnostic = np.flatnonzero(cls == -2)
    kept = np.flatnonzero(cls >= 0)
    n_classes = len(cfg.classes)
    rows = np.concatenate([kept, np.repeat(agnostic, n_classes)])
    row_cls = np.concatenate([cls[kept], np.tile(np.arange(n_classes), len(agnostic))])
    order = np.argsort(rows, kind="stable")  # keep input order inside each image and class
    rows, row_cls = rows[order], row_cls[order]
    arrays = BoxArrays(image[rows], row_cls, xywh[rows], crowd=crowd[rows], row=rows)
    counts = {"n_gt_other_class": int((cls == -1).sum()),
              "n_ignore_regions_class_agnostic": len(agnostic)}
    return arrays, counts


def _dt_arrays(predictions: pd.DataFrame, index: pd.Index,
               cfg: EvalConfig) -> tuple[BoxArrays, dict]:
    _require_columns(predictions, ["image_id", "class_name", *BOX_COLUMNS, "score"], "predictions")
    score = pd.to_numeric(predictions["score"], errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan)
    _first_bad(predictions, ~np.isfinite(score), "predictions", "score is missing or not finite")
    _first_bad(predictions, score < 0, "predictions", "score is negative")
    cls = _class_codes(predictions["class_name"], cfg.classes)
    _first_bad(predictions, cls == -2, "predictions", "class_name is missing")
    coords = _check_boxes(predictions, "predictions")
    image = _lookup(predictions["image_id"], index)
    _first_bad(predictions, image == -2, "predictions", "image_id is missing")
    unmatched = image < 0
    other = (cls == -1) & ~unmatched
    use = np.flatnonzero(~unmatched & ~other)
    use = use[stable_argsort_ints(image[use])]  # image-major, input order inside an image
    arrays = BoxArrays(image[use], cls[use], xyxy_to_xywh(*coords[use].T, cfg.convention),
                       score=score[use])
    counts = {
        "n_predictions_other_class": int(other.sum()),
        "n_predictions_unmatched_frames": int(unmatched.sum()),
        "unmatched_prediction_frames": int(predictions["image_id"][unmatched].nunique()),
    }
    return arrays, counts


def _mean_or_none(values: np.ndarray) -> float | None:
    """Mean over the non-NaN entries (classes with GT), None when there are none."""
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else None


def _none_if_nan(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def _bucket_metrics(matches: Matches, gt: BoxArrays, n_classes: int, t_index: int,
                    masks: dict[str, np.ndarray]) -> tuple[dict, dict[str, np.ndarray]]:
    """{bucket: {map50, n_images, n_gt}} and each bucket's class-mean precision curve."""
    metrics, curves = {}, {}
    for name, mask in masks.items():
        per_class = precision_curves(matches, gt, n_classes, t_index, mask)
        has_gt = ~np.isnan(per_class[:, 0])
        curve = per_class[has_gt].mean(axis=0) if has_gt.any() else np.full(per_class.shape[1],
                                                                             np.nan)
        metrics[name] = {"map50": _mean_or_none(per_class.mean(axis=1)),
                         "n_images": int(mask.sum()),
                         "n_gt": int((~gt.crowd & mask[gt.image]).sum())}
        curves[name] = curve
    return metrics, curves


@dataclass
class EvalArrays:
    """The evaluation inputs as arrays, images in COCO order (sorted image_id)."""

    images: pd.DataFrame  # the images table sorted by image_id
    gt: BoxArrays  # evaluated classes only; class-agnostic ignore regions copied to every class
    dt: BoxArrays  # image-major, input order inside an image; evaluated classes in GT frames
    counts: dict  # skipped / unmatched rows, for the metrics


def to_arrays(images: pd.DataFrame, gt: pd.DataFrame, predictions: pd.DataFrame,
              cfg: EvalConfig) -> EvalArrays:
    """Validate the three tables (clear errors naming image and field) and convert them."""
    index, image_table = _image_index(images)
    gt_arrays, gt_counts = _gt_arrays(gt, index, cfg)
    dt_arrays, dt_counts = _dt_arrays(predictions, index, cfg)
    return EvalArrays(image_table, gt_arrays, dt_arrays, {**dt_counts, **gt_counts})


def class_ap(arrays: EvalArrays, cfg: EvalConfig, thresholds: list[float]) -> np.ndarray:
    """(T, n_classes) COCO AP over all images per IoU threshold; NaN for a class without GT."""
    n_classes = len(cfg.classes)
    matches = match_detections(arrays.gt, arrays.dt, len(arrays.images), n_classes,
                               np.asarray(thresholds, np.float64), cfg.max_dets)
    return np.array([precision_curves(matches, arrays.gt, n_classes, t).mean(axis=1)
                     for t in range(len(thresholds))])


def score_sweep(matches: Matches, n_gt: int, t_index: int) -> pd.DataFrame:
    """Precision and recall of the detections scoring >= each SCORE_THRESHOLDS value, classes
    pooled, at IoU threshold t_index: the curve to pick an operating point from.

    Detections matched to an ignore region count neither way (as in AP). The table stops at
    the top score: above it no detection is left and precision is undefined (a DVC chart would
    draw an empty cell as 0). Recall is empty (NaN) without ground truth."""
    status = matches.status[t_index]
    kept = status != IGNORED
    score, is_tp = matches.score[kept], status[kept] == TP
    order = np.argsort(-score, kind="stable")
    score, is_tp = score[order], is_tp[order]
    tp_within = np.concatenate([[0], np.cumsum(is_tp)])  # TPs among the first n detections
    n_above = len(score) - np.searchsorted(score[::-1], SCORE_THRESHOLDS, side="left")
    tp_above = tp_within[n_above]
    left = n_above > 0
    n_above, tp_above = n_above[left], tp_above[left]
    recall = tp_above / n_gt if n_gt else np.full(len(n_above), np.nan)
    return pd.DataFrame({"score": SCORE_THRESHOLDS[left], "precision": tp_above / n_above,
                         "recall": recall})


def evaluate(images: pd.DataFrame, gt: pd.DataFrame, predictions: pd.DataFrame,
             cfg: EvalConfig) -> EvalResult:
    """COCO AP (pycocotools-exact) overall, per class and per occlusion/weather/time bucket."""
    arrays = to_arrays(images, gt, predictions, cfg)
    gt_arrays, dt_arrays, image_table = arrays.gt, arrays.dt, arrays.images
    n_images, n_classes = len(image_table), len(cfg.classes)

    thresholds = IOU_THRESHOLDS
    if cfg.iou in IOU_THRESHOLDS:
        t_main = int(np.flatnonzero(IOU_THRESHOLDS == cfg.iou)[0])
    else:
        thresholds, t_main = np.append(IOU_THRESHOLDS, cfg.iou), len(IOU_THRESHOLDS)
    matches = match_detections(gt_arrays, dt_arrays, n_images, n_classes, thresholds,
                               cfg.max_dets)

    class_curves = precision_curves(matches, gt_arrays, n_classes, t_main)
    ap_main = class_curves.mean(axis=1)
    ap_range = np.mean([precision_curves(matches, gt_arrays, n_classes, t).mean(axis=1)
                        for t in range(len(IOU_THRESHOLDS))], axis=0)
    n_gt = np.bincount(gt_arrays.cls[~gt_arrays.crowd], minlength=n_classes)
    per_class = {c: {"ap50": _none_if_nan(ap_main[k]), "ap50_95": _none_if_nan(ap_range[k]),
                     "n_gt": int(n_gt[k])} for k, c in enumerate(cfg.classes)}

    occlusion, occlusion_curves = _bucket_metrics(
        matches, gt_arrays, n_classes, t_main,
        occlusion_buckets(image_table["n_occluded_vehicles"].to_numpy(), cfg.occlusion_edges))
    attributes = {}
    for column in ATTRIBUTES:
        attributes[column], _ = _bucket_metrics(matches, gt_arrays, n_classes, t_main,
                                                image_attribute_buckets(image_table, column))

    metrics = {
        "map50": _mean_or_none(ap_main),
        "map50_95": _mean_or_none(ap_range),
        "per_class": per_class,
        "occlusion": occlusion,
        "weather": attributes["weather"],
        "timeofday": attributes["timeofday"],
        "n_images": n_images,
        "n_gt": int(n_gt.sum()),
        "n_predictions": len(dt_arrays) - matches.n_beyond_max_dets,
        "n_predictions_beyond_max_dets": matches.n_beyond_max_dets,
        **arrays.counts,
    }
    pr_occlusion = pd.DataFrame({"recall": RECALL_THRESHOLDS, **occlusion_curves})
    bucket_rows = [(name, values["map50"], values["n_images"])
                   for name, values in occlusion.items()]
    for column in ("weather", "timeofday"):
        bucket_rows += [(f"{column}:{name}", values["map50"], values["n_images"])
                        for name, values in metrics[column].items()]
    buckets = pd.DataFrame(bucket_rows, columns=["bucket", "map50", "n_images"])
    pr_class = pd.DataFrame({"recall": RECALL_THRESHOLDS,
                             **{c: class_curves[k] for k, c in enumerate(cfg.classes)}})
    pr_score = score_sweep(matches, int(n_gt.sum()), t_main)
    return EvalResult(metrics, pr_occlusion, buckets, pr_class, pr_score, cfg)
