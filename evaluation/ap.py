"""COCO-exact box matching and average precision, vectorised over all images at once.

This reproduces pycocotools' COCOeval (bbox, area range "all", one max-dets value) bit for bit
without calling it, and without its per-image Python loops:

* IoU is computed with the very arithmetic of pycocotools' C `bbIou` on [x, y, w, h] boxes
  (intersection over the *detection's* area for crowd regions), so threshold ties resolve the same.
* Detections are ordered like COCOeval: within an (image, class) by descending score with a stable
  sort on input order, cut to `max_dets`; globally by a stable sort on descending score of the
  image-major concatenation.
* Greedy matching: a detection takes the unmatched non-crowd ground truth of highest IoU >= t
  (the last one on an IoU tie, as COCOeval's `>=` update does); failing that, a crowd region with
  IoU >= t makes it "ignored" (neither TP nor FP); crowd regions can absorb many detections.
  The sequential greedy loop is replaced by rounds: in each round every detection none of whose
  candidate ground truths is wanted by an earlier unresolved detection of its image is settled at
  once. Such a detection's candidate set can no longer change, so the result equals the
  sequential one; the first unresolved detection of every image is always settled, so it ends.
* Precision at the 101 recall thresholds with COCO's envelope and `searchsorted`, same float ops.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# The exact threshold grids of pycocotools' Params (linspace, not arange: see its comment).
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)

TP, FP, IGNORED = 1, 0, -1
_PAIR_CHUNK = 1 << 17  # (det, gt) pairs per chunk: cache-sized, bounds peak memory


@dataclass
class BoxArrays:
    """Boxes of one kind (ground truth or detections) as parallel arrays.

    image/cls: int indices; xywh: (N, 4) float64 COCO boxes; crowd (GT only): ignore region;
    score (detections only).
    """

    image: np.ndarray
    cls: np.ndarray
    xywh: np.ndarray
    crowd: np.ndarray | None = None
    score: np.ndarray | None = None
    row: np.ndarray | None = None  # GT only: the objects-table row each box came from

    def __len__(self) -> int:
        return len(self.image)


@dataclass
class Matches:
    """Outcome of every kept detection (max_dets applied), in COCOeval's global score order."""

    thresholds: np.ndarray  # (T,) IoU thresholds
    image: np.ndarray  # (K,) image index per kept detection
    cls: np.ndarray  # (K,) class index
    status: np.ndarray  # (T, K) int8: TP / FP / IGNORED
    n_beyond_max_dets: int  # detections cut by max_dets (per image and class, like COCO)
    by_class: list[np.ndarray] = field(default_factory=list)  # positions of each class, in order
    score: np.ndarray | None = None  # (K,) each kept detection's score
    gt: np.ndarray | None = None  # (T, K) with record_gt: index of the matched GT box, or -1


def xyxy_to_xywh(x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray,
                 convention: str) -> np.ndarray:
    """COCO [x, y, w, h]; `bdd` is the BDD100K/Scalabel toolkit's inclusive width x2 - x1 + 1."""
    if convention not in ("coco", "bdd"):
        raise ValueError(f"convention must be 'coco' or 'bdd', got {convention!r}")
    extra = 1.0 if convention == "bdd" else 0.0
    return np.stack([x1, y1, x2 - x1 + extra, y2 - y1 + extra], axis=1).astype(np.float64)


def _group_order(image: np.ndarray, cls: np.ndarray, n_classes: int) -> np.ndarray:
    return image.astype(np.int64) * n_classes + cls


def stable_argsort_ints(keys: np.ndarray) -> np.ndarray:
    """Stable argsort of non-negative int keys by 16-bit LSD radix passes.

    numpy radix-sorts 16-bit ints (a few times faster than its timsort on int64); passes whose
    digit is the same for every key are skipped.
    """
    keys = np.asarray(keys, np.int64)
    order = np.arange(len(keys))
    top = int(keys.max()) if len(keys) else 0
    shift = 0
    while (top >> shift) > 0:
        digit = ((keys[order] >> shift) & 0xFFFF).astype(np.uint16)
        if shift == 0 or digit.min() != digit.max():
            order = order[np.argsort(digit, kind="stable")]
        shift += 16
    return order


def score_order(score: np.ndarray) -> np.ndarray:
    """Stable argsort by descending score (COCO's mergesort on -score), for scores >= 0.

    Detector scores are float32 values in practice: then the float32 bits (monotone for
    non-negative floats) and the position pack into one unique uint64 key, and a plain value
    sort (no stability needed) is about twice as fast. Other scores take numpy's stable sort.
    """
    single = score.astype(np.float32)
    if len(score) >= 2**32 or not np.array_equal(single.astype(np.float64), score):
        return np.argsort(-score, kind="stable")
    bits = (single + np.float32(0)).view(np.uint32).astype(np.uint64)  # + 0 folds -0.0 into 0
    keys = ((np.uint64(0xFFFFFFFF) - bits) << np.uint64(32)) | np.arange(len(score),
                                                                         dtype=np.uint64)
    return (np.sort(keys) & np.uint64(0xFFFFFFFF)).astype(np.int64)


def _pair_ious(dt_xywh: np.ndarray, gt: BoxArrays, det: np.ndarray,
               gt_idx: np.ndarray) -> np.ndarray:
    """pycocotools bbIou for the given (det, gt) pairs, with its exact float operations."""
    dx, dy, dw, dh = (dt_xywh[det, i] for i in range(4))
    gx, gy, gw, gh = (gt.xywh[gt_idx, i] for i in range(4))
    w = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
    h = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
    overlap = (w > 0) & (h > 0)
    inter = w * h
    det_area = dw * dh
    union = np.where(gt.crowd[gt_idx], det_area, det_area + gw * gh - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(overlap, inter / np.where(overlap, union, 1.0), 0.0)


def _candidate_pairs(dt_xywh: np.ndarray, dt_group: np.ndarray, gt: BoxArrays,
                     gt_group: np.ndarray, n_groups: int,
                     min_iou: float) -> tuple[np.ndarray, ...]:
    """All (det, gt) pairs of the same image and class with IoU >= min_iou, det-major order.

    Both inputs must be sorted by group. Pairs are made chunk by chunk (cache-sized). IoU >= t
    implies overlap_w >= t * det_w (for crowd regions too), i.e. gt_left <= det_right - t*det_w
    and gt_right >= det_left + t*det_w: two compares per pair against per-detection bounds
    discard most pairs; the same on y, then the exact IoU on the few left. A tolerance far
    above float rounding keeps these filters conservative.
    """
    gt_count = np.bincount(gt_group, minlength=n_groups)
    gt_start = np.concatenate([[0], np.cumsum(gt_count)[:-1]])
    pairs_per_det = gt_count[dt_group]
    ends = np.cumsum(pairs_per_det)
    index_type = np.int32 if (ends[-1] if len(ends) else 0) < 2**31 else np.int64
    # gt index of pair p = p + offset of its det (pairs of a det cover its group's GT run)
    gt_offset = (gt_start[dt_group] - (ends - pairs_per_det)).astype(index_type)
    scale = max(float(np.abs(dt_xywh).max(initial=0)), float(np.abs(gt.xywh).max(initial=0)))
    tol = 1e-7 * (1.0 + 2 * scale)
    bounds = []
    for axis in (0, 1):  # x then y: det-side limits for gt's near and far edges
        start, size = dt_xywh[:, axis], dt_xywh[:, axis + 2]
        need = min_iou * size
        bounds.append((size + start - need + tol, start + need - tol))
    gt_near = [gt.xywh[:, 0], gt.xywh[:, 1]]
    gt_far = [gt.xywh[:, 2] + gt.xywh[:, 0], gt.xywh[:, 3] + gt.xywh[:, 1]]
    (x_near_max, x_far_min), (y_near_max, y_far_min) = bounds
    out_det, out_gt, out_iou = [], [], []
    begin = 0
    while begin < len(dt_xywh):
        first_pair = ends[begin - 1] if begin else 0
        end = max(begin + 1, int(np.searchsorted(ends, first_pair + _PAIR_CHUNK, side="right")))
        counts = pairs_per_det[begin:end]
        gt_idx = (np.arange(first_pair, ends[end - 1], dtype=index_type)
                  + np.repeat(gt_offset[begin:end], counts))
        near = np.flatnonzero((gt_near[0][gt_idx] <= np.repeat(x_near_max[begin:end], counts))
                              & (gt_far[0][gt_idx] >= np.repeat(x_far_min[begin:end], counts)))
        det = np.repeat(np.arange(begin, end, dtype=index_type), counts)[near]
        gt_idx = gt_idx[near]
        near = np.flatnonzero((gt_near[1][gt_idx] <= y_near_max[det])
                              & (gt_far[1][gt_idx] >= y_far_min[det]))
        det, gt_idx = det[near], gt_idx[near]
        iou = _pair_ious(dt_xywh, gt, det, gt_idx)
        keep = np.flatnonzero(iou >= min_iou)
        out_det.append(det[keep])
        out_gt.append(gt_idx[keep])
        out_iou.append(iou[keep])
        begin = end
    if not out_det:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return (np.concatenate(out_det).astype(np.int64), np.concatenate(out_gt).astype(np.int64),
            np.concatenate(out_iou))


def same_image_pairs(gt: BoxArrays, dt: BoxArrays, n_images: int,
                     min_iou: float) -> tuple[np.ndarray, np.ndarray]:
    """(det, gt) index pairs of the same image, whatever their classes, with COCO's IoU >=
    min_iou. Detections must come image-major."""
    by_image = stable_argsort_ints(gt.image)
    gt_sorted = BoxArrays(gt.image[by_image], gt.cls[by_image], gt.xywh[by_image],
                          crowd=gt.crowd[by_image])
    det, gt_idx, _ = _candidate_pairs(dt.xywh, dt.image, gt_sorted, gt_sorted.image, n_images,
                                      min(min_iou, 1 - 1e-10))
    return det, by_image[gt_idx]


def _greedy_match(det: np.ndarray, gt: np.ndarray, iou: np.ndarray, n_det: int,
                  n_gt: int) -> np.ndarray:
    """COCO greedy matching on non-crowd candidate pairs (sorted by det; any order inside).

    Returns the matched gt index per detection (-1 if none).
    """
    match = np.full(n_det, -1, np.int64)
    taken = np.zeros(n_gt, bool)
    while len(det):
        # a detection is blocked if an earlier unresolved detection also wants one of its GT
        earliest = np.full(n_gt, np.iinfo(np.int64).max)
        np.minimum.at(earliest, gt, det)
        blocked = np.zeros(n_det, bool)
        blocked[det[earliest[gt] < det]] = True
        free = ~blocked[det]
        f_det, f_gt, f_iou = det[free], gt[free], iou[free]
        # per free detection: highest IoU; on a tie the GT that comes last in the image's
        # input order (COCOeval's `>=` update keeps the last one)
        run_start = np.flatnonzero(np.r_[True, f_det[1:] != f_det[:-1]])
        best = np.maximum.reduceat(f_iou, run_start)
        is_best = f_iou == np.repeat(best, np.diff(np.r_[run_start, len(f_det)]))
        chosen = np.maximum.reduceat(np.where(is_best, f_gt, -1), run_start)
        match[f_det[run_start]] = chosen
        taken[chosen] = True
        keep = ~free & ~taken[gt]
        det, gt, iou = det[keep], gt[keep], iou[keep]
    return match


def _within_max_dets(group: np.ndarray, max_dets: int) -> np.ndarray:
    """Mask of the detections (given in global score order) COCO keeps: the first max_dets of
    each (image, class) group. Global order restricted to a group is the group's COCO order."""
    if not len(group) or np.bincount(group).max() <= max_dets:
        return np.ones(len(group), bool)
    by_group = stable_argsort_ints(group)  # groups together, score order inside
    sorted_group = group[by_group]
    positions = np.arange(len(group))
    new_group = np.r_[True, sorted_group[1:] != sorted_group[:-1]]
    rank = positions - np.maximum.accumulate(np.where(new_group, positions, 0))
    keep = np.empty(len(group), bool)
    keep[by_group] = rank < max_dets
    return keep


def match_detections(gt: BoxArrays, dt: BoxArrays, n_images: int, n_classes: int,
                     thresholds: np.ndarray, max_dets: int, record_gt: bool = False) -> Matches:
    """Match detections to ground truth at every IoU threshold, exactly as COCOeval does.

    Detections must come image-major with each image's rows in input order (COCO's tie order).
    Internally a detection's id is its position in COCO's global score order: inside an
    (image, class) group that is exactly the group's processing order. With `record_gt` the
    result also says which GT box (index into `gt`) each detection matched.
    """
    if max_dets < 1:
        raise ValueError(f"max_dets must be >= 1, got {max_dets}")
    thresholds = np.asarray(thresholds, np.float64)
    if thresholds.ndim != 1 or not len(thresholds):
        raise ValueError("match_detections needs at least one IoU threshold")
    n_groups = n_images * n_classes
    # COCO's global order: stable sort on -score of the image-major input
    order = score_order(dt.score)
    group = _group_order(dt.image, dt.cls, n_classes)[order]
    keep = _within_max_dets(group, max_dets)
    order, group = order[keep], group[keep]

    # GT by group, input order inside (crowd regions are matched apart, after the regular GT,
    # so COCO's "non-crowd first" sort is implied)
    gt_group = _group_order(gt.image, gt.cls, n_classes)
    gt_order = stable_argsort_ints(gt_group)
    gt_sorted = BoxArrays(gt.image[gt_order], gt.cls[gt_order], gt.xywh[gt_order],
                          crowd=gt.crowd[gt_order])
    effective = np.minimum(thresholds, 1 - 1e-10)  # COCOeval caps the threshold like this
    # Pairs are built walking the detections group by group (nearly the input order, so memory
    # access stays local); ids are global positions, increasing inside each group.
    by_group = stable_argsort_ints(group)
    source = order[by_group]
    p_det, p_gt, p_iou = _candidate_pairs(dt.xywh[source], group[by_group], gt_sorted,
                                          gt_group[gt_order], n_groups, float(effective.min()))
    p_det = by_group[p_det]
    p_crowd = gt_sorted.crowd[p_gt]

    status = np.empty((len(thresholds), len(order)), np.int8)
    matched_gt = np.full((len(thresholds), len(order)), -1, np.int64) if record_gt else None
    for t, threshold in enumerate(effective):
        ok = p_iou >= threshold
        regular = ok & ~p_crowd
        match = _greedy_match(p_det[regular], p_gt[regular], p_iou[regular], len(order),
                              len(gt))
        status[t] = FP
        status[t, p_det[ok & p_crowd]] = IGNORED
        status[t, match >= 0] = TP
        if matched_gt is not None:
            matched_gt[t, match >= 0] = gt_order[match[match >= 0]]
    cls = dt.cls[order]
    by_class = np.split(stable_argsort_ints(cls), np.cumsum(np.bincount(cls, minlength=n_classes)))
    return Matches(thresholds=thresholds, image=dt.image[order], cls=cls, status=status,
                   n_beyond_max_dets=len(dt) - len(order), by_class=by_class[:n_classes],
                   score=dt.score[order], gt=matched_gt)


def precision_at_recall(is_tp: np.ndarray, n_gt: int) -> np.ndarray:
    """COCO's interpolated precision at the 101 recall thresholds.

    is_tp: TP flags of the non-ignored detections in global score order (ignored detections
    change neither cumulative sum, so dropping them leaves COCO's result unchanged).
    Bit-identical to COCOeval.accumulate: its fp + tp is exactly i + 1 at position i.
    """
    if n_gt <= 0:
        raise ValueError("precision needs at least one ground-truth box")
    n = len(is_tp)
    out = np.zeros(len(RECALL_THRESHOLDS))
    if not n:
        return out
    tp = np.cumsum(is_tp, dtype=np.int32).astype(np.float64)  # int32: numpy's fast path
    precision = tp / (np.arange(1.0, n + 1.0) + np.spacing(1))
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    at = np.searchsorted(tp / n_gt, RECALL_THRESHOLDS, side="left")
    inside = at < n
    out[inside] = envelope[at[inside]]
    return out


def precision_curves(matches: Matches, gt: BoxArrays, n_classes: int, threshold_index: int,
                     image_mask: np.ndarray | None = None) -> np.ndarray:
    """(n_classes, 101) precision at one IoU threshold over a subset of images.

    A class without non-crowd ground truth in the subset gets a NaN row (COCO's -1: excluded).
    """
    gt_regular = ~gt.crowd
    if image_mask is not None:
        gt_regular = gt_regular & image_mask[gt.image]
    n_gt = np.bincount(gt.cls[gt_regular], minlength=n_classes)
    curves = np.full((n_classes, len(RECALL_THRESHOLDS)), np.nan)
    for k in range(n_classes):
        if n_gt[k]:
            positions = matches.by_class[k]
            if image_mask is not None:
                positions = positions[image_mask[matches.image[positions]]]
            status = matches.status[threshold_index, positions]
            curves[k] = precision_at_recall(status[status != IGNORED] == TP, int(n_gt[k]))
    return curves
