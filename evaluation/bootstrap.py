"""Paired bootstrap over images: every bucket's mAP with its uncertainty, for several runs at once.

A replicate draws a bucket's images with replacement (as many as the bucket holds) and scores
every run on that same draw, so the difference of two runs is paired image by image. Its AP is
exactly what the evaluator gives on the drawn image list written out (duplicated frames renamed
apart, in place): COCO matching is per image, so it does not change under resampling. We match
once per run and only re-weight:

* A detection's outcome (TP / FP / ignored at each IoU threshold) is fixed. An image drawn w
  times contributes w copies of its detections; in COCO's global order (stable sort on score of
  the image-major list) the copies of an image's run of equal-score detections follow each
  other, so the replicate's sequence is known without sorting anything again.
* Precision at the 101 recall points needs the running TP count and the running detection count
  only where a TP occurs: FPs change nothing but the count, and a run of FPs never raises COCO's
  precision envelope above the TP before it. So a replicate walks the blocks of equal (image,
  score) once to get running counts, then, per threshold, only the blocks holding a TP or an
  ignored detection. The envelope's maxima are found on exact integer ratios and divided with
  the evaluator's arithmetic (tp / (n + eps), `searchsorted` on tp / n_gt), so replicate APs
  equal the explicit evaluation bit for bit.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd
from tqdm import tqdm

from evaluation.ap import IGNORED, IOU_THRESHOLDS, RECALL_THRESHOLDS, TP, Matches, match_detections
from evaluation.buckets import ATTRIBUTES, image_attribute_buckets, occlusion_buckets
from evaluation.config import MAX_REPLICATES, EvalConfig
from evaluation.core import EvalArrays, to_arrays
from evaluation.errors import EvalInputError

_EPS = float(np.spacing(1))  # COCOeval adds it to every precision's denominator


@dataclass
class BucketSamples:
    """One bucket's full-set values and bootstrap replicates, for every run."""

    key: str  # "all" | "class/<c>" | "occlusion/<b>" | "weather/<w>" | "timeofday/<t>"
    n_images: int
    map50: np.ndarray  # (n_runs,) each run's value on the bucket's images; NaN without GT
    map50_95: np.ndarray  # (n_runs,)
    boot_map50: np.ndarray  # (n_runs, n_boot): replicate r is one draw of images for all runs
    boot_map50_95: np.ndarray  # (n_runs, n_boot)


_GROUP = 16  # replicates walked in lockstep: one pass over the event arrays serves them all


@numba.njit(inline="always")
def _keep_best(best_tp, best_n, g, tp, n):
    """Lane g's best (tp, n) := (tp, n) if its ratio tp / n is higher; on equal ratios the
    larger n (COCO's eps lowers only n = 1: 1 / (1 + eps) < 2 / 2). Branch-free: which way it
    goes is data, and mispredicted branches would cost more than the selects."""
    lhs, rhs = tp * best_n[g], best_tp[g] * n
    better = (lhs > rhs) | ((lhs == rhs) & (n > best_n[g]))
    best_tp[g] = tp if better else best_tp[g]
    best_n[g] = n if better else best_n[g]


@numba.njit(cache=True)
def _first_tp_counts(recall, n_gt, first_tp):
    """The running TP count at which each recall point is reached: exactly COCO's searchsorted
    (side 'left') on tp / n_gt. Recall 0 is reached at the first detection, where the envelope
    is the overall maximum, i.e. that at the first TP."""
    for q in range(len(recall)):
        k = int(np.ceil(recall[q] * n_gt))
        while k > 0 and (k - 1) / n_gt >= recall[q]:
            k -= 1
        while k / n_gt < recall[q]:
            k += 1
        first_tp[q] = max(k, 1)


@numba.njit(inline="always")
def _next_segment(g, first_tp, point, bound, cur_tp, cur_n, best_tp, best_n):
    """Lane g leaves recall segment point[g]: store its best, start the next one."""
    best_tp[g, point[g]], best_n[g, point[g]] = cur_tp[g], cur_n[g]
    point[g] += 1
    cur_tp[g], cur_n[g] = -1, 1
    bound[g] = first_tp[g, point[g] + 1] if point[g] + 1 < first_tp.shape[1] else 1 << 62


@numba.njit(cache=True)
def _replicate_group(w, seq, gt_per_image, recall, before, first_tp, best_tp, best_n, out):
    """out[g, t, :] for the replicates whose weights are the columns of w (m, lanes): image-major,
    so the lanes' weights of one image share a cache line.

    Per lane: tp (TPs so far), ignored (ignored detections so far), point (the recall segment:
    TP counts first_tp[point] .. bound - 1) and the segment's best (cur_tp, cur_n) so far.
    """
    (block_image, block_size, block_slot, event_ptr, event_slot, event_image, event_size,
     event_ignored, mixed_kept, mixed_tp_ptr, tp_offset, _) = seq
    lanes, n_points = w.shape[1], len(recall)
    n_gt = np.zeros(lanes, np.int64)
    for g in range(lanes):
        for i in range(len(gt_per_image)):
            n_gt[g] += w[i, g] * gt_per_image[i]
        if n_gt[g] > 0:
            _first_tp_counts(recall, n_gt[g], first_tp[g])
        else:
            first_tp[g, :] = 1
    total = np.zeros(lanes, np.int64)  # detections (ignored ones too) before each event block
    for b in range(len(block_image)):
        slot, image, size = block_slot[b], block_image[b], block_size[b]
        for g in range(lanes):  # blocks without events all write the spare last slot
            before[slot, g] = total[g]
            total[g] += w[image, g] * size
    state = np.zeros((8, lanes), np.int64)
    tp, ignored, point, bound, cur_tp, cur_n, end, base = state
    for t in range(len(event_ptr) - 1):
        best_tp[:, :] = -1
        best_n[:, :] = 1
        tp[:], ignored[:], point[:], cur_tp[:], cur_n[:] = 0, 0, 0, -1, 1
        for g in range(lanes):
            bound[g] = first_tp[g, 1]
        for e in range(event_ptr[t], event_ptr[t + 1]):
            slot, image, size, n_ignored = (event_slot[e], event_image[e], event_size[e],
                                            event_ignored[e])
            if size >= 0:
                # `size` TPs per copy, or none (FPs and ignored detections only): the copies'
                # TPs tp+1 .. end sit at detections base, base+1, ...; tp/n never falls along
                # such a run, so each recall segment it crosses keeps its last TP. With no TP,
                # (tp, base - 1) is no better than the TP before: a no-op, no branch needed.
                crossing = False
                for g in range(lanes):
                    copies = w[image, g]
                    base[g] = before[slot, g] - ignored[g] + 1  # kept detections to block start
                    end[g] = tp[g] + copies * size
                    ignored[g] += copies * n_ignored
                    crossing |= end[g] >= bound[g]
                if crossing:  # rare: ~100 times per threshold and lane
                    for g in range(lanes):
                        while end[g] >= bound[g]:
                            last = bound[g] - 1
                            if last > tp[g] and last >= first_tp[g, point[g]]:
                                _keep_best(cur_tp, cur_n, g, last, base[g] + last - tp[g] - 1)
                            _next_segment(g, first_tp, point, bound, cur_tp, cur_n, best_tp,
                                          best_n)
                for g in range(lanes):
                    _keep_best(cur_tp, cur_n, g, end[g], base[g] + end[g] - tp[g] - 1)
                    tp[g] = end[g]
                continue
            # TPs mixed with FPs or ignored detections: copy by copy, TP by TP, all lanes in
            # step. A lane with fewer copies makes no-op candidates (its tp stays, n grows).
            m = -size - 1
            most = 0
            for g in range(lanes):
                base[g] = before[slot, g] - ignored[g] + 1
                most = max(most, w[image, g])
            for c in range(most):
                for q in range(mixed_tp_ptr[m], mixed_tp_ptr[m + 1]):
                    crossing = False
                    for g in range(lanes):
                        tp[g] += c < w[image, g]
                        crossing |= tp[g] >= bound[g]
                    if crossing:
                        for g in range(lanes):
                            while tp[g] >= bound[g]:
                                _next_segment(g, first_tp, point, bound, cur_tp, cur_n,
                                              best_tp, best_n)
                    for g in range(lanes):
                        _keep_best(cur_tp, cur_n, g, tp[g],
                                   base[g] + c * mixed_kept[m] + tp_offset[q])
            for g in range(lanes):
                ignored[g] += w[image, g] * n_ignored
        for g in range(lanes):
            best_tp[g, point[g]], best_n[g, point[g]] = cur_tp[g], cur_n[g]
            for q in range(n_points - 2, -1, -1):  # suffix maximum: the envelope
                if best_tp[g, q + 1] >= 0:
                    _keep_best(best_tp[g], best_n[g], q, best_tp[g, q + 1], best_n[g, q + 1])
            for q in range(n_points):
                if n_gt[g] == 0:
                    out[g, t, q] = np.nan  # COCO's -1: the class has no GT in this draw
                elif first_tp[g, q] > tp[g] or best_tp[g, q] <= 0:
                    out[g, t, q] = 0.0  # recall point never reached
                else:
                    out[g, t, q] = best_tp[g, q] / (best_n[g, q] + _EPS)


@numba.njit(parallel=True, cache=True)
def _replicate_precision(weights, seq, gt_per_image, recall, out):
    """out[r, t, :] = COCO's interpolated precision at the recall points for replicate r.

    weights (R, m): times each of the bucket's m images is drawn; seq: _class_sequence's arrays.
    COCO's value at recall point q is the envelope (the highest precision at or after) at the
    first detection whose running TP count k reaches recall[q] * n_gt. Precision only peaks at
    a TP, so we keep, per recall point, the best TP between its k and the next point's, as the
    exact pair (TPs so far, detections so far) compared by cross-multiplication, and divide
    once at the end with COCO's arithmetic, tp / (n + eps).
    """
    n_boot, n_slots = weights.shape[0], seq[-1]
    n_groups = (n_boot + _GROUP - 1) // _GROUP
    for group in numba.prange(n_groups):
        start, stop = group * _GROUP, min((group + 1) * _GROUP, n_boot)
        lanes = stop - start
        _replicate_group(np.ascontiguousarray(weights[start:stop].T), seq, gt_per_image, recall,
                         np.empty((n_slots + 1, lanes), np.int32),
                         np.empty((lanes, len(recall)), np.int64),
                         np.empty((lanes, len(recall)), np.int64),
                         np.empty((lanes, len(recall)), np.int64), out[start:stop])


def _class_sequence(matches: Matches, k: int, local: np.ndarray) -> tuple:
    """Class k's detections in the images with local >= 0, as the kernel's compact arrays.

    Blocks: runs of one image's equal-score detections in COCO order (the unit a drawn image
    repeats). Per threshold, events: the blocks holding a TP or an ignored detection, each with
    its slot (where the walk over blocks leaves the count before it), image, TP count (all of
    the block, or 0) and ignored count; a block mixing TPs with FPs or ignored detections gets
    size -(m + 1) instead, m indexing its kept count and its TPs' offsets among its kept
    detections.
    """
    positions = matches.by_class[k]
    positions = positions[local[matches.image[positions]] >= 0]
    image = local[matches.image[positions]]
    score = matches.score[positions]
    new_block = np.ones(len(positions), bool)
    new_block[1:] = (image[1:] != image[:-1]) | (score[1:] != score[:-1])
    starts = np.flatnonzero(new_block)
    n_blocks = len(starts)
    block_size = np.diff(np.r_[starts, len(positions)])
    block_of = np.repeat(np.arange(n_blocks), block_size)
    per_threshold = []
    for t in range(len(matches.thresholds)):
        status = matches.status[t, positions]
        tp, ignored = status == TP, status == IGNORED
        kept_before = np.cumsum(~ignored) - ~ignored  # kept detections before each position
        offset = kept_before - kept_before[starts][block_of]  # ... inside its block
        event = np.flatnonzero(np.bincount(block_of[tp | ignored], minlength=n_blocks))
        n_tp = np.bincount(block_of[tp], minlength=n_blocks)[event]
        n_ignored = np.bincount(block_of[ignored], minlength=n_blocks)[event]
        per_threshold.append((event, n_tp, n_ignored, offset[tp], block_of[tp]))
    union = np.unique(np.concatenate([p[0] for p in per_threshold])) if per_threshold else []
    block_slot = np.full(n_blocks, len(union), np.int64)
    block_slot[union] = np.arange(len(union))
    event_ptr, sizes, ignored_counts, mixed_kept, mixed_tps, offsets = [0], [], [], [], [0], []
    for event, n_tp, n_ignored, tp_offset, tp_block in per_threshold:
        mixed = (n_tp > 0) & (n_tp != block_size[event])
        size = np.where(n_tp == block_size[event], block_size[event], 0)
        size[mixed] = -(len(mixed_kept) + np.arange(mixed.sum()) + 1)
        sizes.append(size)
        ignored_counts.append(n_ignored)
        mixed_kept.extend(block_size[event][mixed] - n_ignored[mixed])
        in_mixed = np.isin(tp_block, event[mixed])  # TPs are in block order, so grouped
        mixed_tps.extend(mixed_tps[-1] + np.cumsum(n_tp[mixed]))
        offsets.append(tp_offset[in_mixed])
        event_ptr.append(event_ptr[-1] + len(event))
    events = np.concatenate([p[0] for p in per_threshold]) if per_threshold else np.zeros(0, int)

    def i32(values) -> np.ndarray:  # the arrays every replicate streams: half the bytes
        return np.asarray(values, np.int32)

    def i64(values) -> np.ndarray:
        return np.asarray(values, np.int64)

    return (i32(image[starts]), i32(block_size), i32(block_slot), i64(event_ptr),
            i32(block_slot[events]), i32(image[starts][events]), i32(np.concatenate(sizes)),
            i32(np.concatenate(ignored_counts)), i64(mixed_kept), i64(mixed_tps),
            i64(np.concatenate(offsets)), len(union))


def _draw_weights(n_images: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n_images) int32: how often each image is drawn in each replicate."""
    weights = np.empty((n_boot, n_images), np.int32)
    rows = max(1, (1 << 22) // max(n_images, 1))  # ~32 MB of draws at a time
    for start in range(0, n_boot, rows):
        stop = min(start + rows, n_boot)
        draws = rng.integers(0, n_images, (stop - start, n_images), dtype=np.int64)
        draws += np.arange(stop - start)[:, None] * n_images
        weights[start:stop] = np.bincount(draws.ravel(), minlength=(stop - start) * n_images
                                          ).reshape(stop - start, n_images)
    return weights


def _class_aps(arrays: EvalArrays, matches: Matches, local: np.ndarray, weights: np.ndarray,
               n_classes: int) -> np.ndarray:
    """(R, T, n_classes) AP of each replicate (weights rows), NaN for a class without GT."""
    n_boot, n_local = weights.shape
    gt = arrays.gt
    regular = ~gt.crowd & (local[gt.image] >= 0)
    aps = np.empty((n_boot, len(matches.thresholds), n_classes))
    for k in range(n_classes):
        of_class = regular & (gt.cls == k)
        gt_per_image = np.bincount(local[gt.image[of_class]], minlength=n_local).astype(np.int64)
        seq = _class_sequence(matches, k, local)
        curves = np.empty((n_boot, len(matches.thresholds), len(RECALL_THRESHOLDS)))
        _replicate_precision(weights, seq, gt_per_image, RECALL_THRESHOLDS, curves)
        aps[:, :, k] = curves.mean(axis=2)  # the evaluator's per-class mean over 101 points
    return aps


def _class_mean(aps: np.ndarray) -> np.ndarray:
    """Mean over the classes that have GT (the last axis), NaN where none has."""
    valid = ~np.isnan(aps)
    count = valid.sum(axis=-1)
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, np.where(valid, aps, 0.0).sum(axis=-1) / count, np.nan)


def _bucket_masks(images: pd.DataFrame, cfg: EvalConfig) -> dict[str, np.ndarray]:
    """Every image bucket of the metrics schema, keyed as compare.json names them."""
    masks = {"all": np.ones(len(images), bool)}
    occlusion = occlusion_buckets(images["n_occluded_vehicles"].to_numpy(), cfg.occlusion_edges)
    masks.update({f"occlusion/{name}": mask for name, mask in occlusion.items()})
    for column in ATTRIBUTES:
        masks.update({f"{column}/{name}": mask
                      for name, mask in image_attribute_buckets(images, column).items()})
    return masks


def bootstrap_buckets(images: pd.DataFrame, gt: pd.DataFrame, predictions: list[pd.DataFrame],
                      cfg: EvalConfig, n_boot: int = 2000, seed: int = 0,
                      progress: bool = True) -> list[BucketSamples]:
    """Full-set mAP50 and mAP50:95 of every run in every bucket, with n_boot paired replicates.

    Images are drawn within each bucket; the draws depend only on `seed` and the bucket's
    image set, so the same call gives the same replicates, and so do runs compared later.
    """
    if not predictions:
        raise EvalInputError("compare needs at least one prediction set")
    if not 1 <= n_boot <= MAX_REPLICATES:
        raise EvalInputError(f"bootstrap replicates must be between 1 and {MAX_REPLICATES}, "
                             f"got {n_boot}")
    runs = [to_arrays(images, gt, p, cfg) for p in predictions]
    n_classes = len(cfg.classes)
    thresholds = IOU_THRESHOLDS
    if cfg.iou in IOU_THRESHOLDS:
        t_main = int(np.flatnonzero(IOU_THRESHOLDS == cfg.iou)[0])
    else:
        thresholds, t_main = np.append(IOU_THRESHOLDS, cfg.iou), len(IOU_THRESHOLDS)
    all_matches = [match_detections(run.gt, run.dt, len(run.images), n_classes, thresholds,
                                    cfg.max_dets) for run in runs]
    image_table = runs[0].images
    masks = _bucket_masks(image_table, cfg)
    results: list[BucketSamples] = []
    bar = tqdm(total=len(masks) * len(runs), desc="bootstrap", unit="bucket-run",
               disable=not progress)
    done: dict[bytes, list[BucketSamples]] = {}
    for key, mask in masks.items():
        n_images = int(mask.sum())
        signature = np.packbits(mask).tobytes()
        if signature in done:  # e.g. occlusion/all is `all`: the same draws, the same numbers
            results.append(_renamed(done[signature][0], key))
            bar.update(len(runs))
            continue
        local = np.full(len(image_table), -1, np.int64)
        local[mask] = np.arange(n_images)
        rng = np.random.default_rng([seed, zlib.crc32(signature)])
        weights = np.vstack([np.ones((1, n_images), np.int32),  # row 0: the full set itself
                             _draw_weights(n_images, n_boot, rng)])
        per_run = []
        for run, matches in zip(runs, all_matches, strict=True):
            per_run.append(_class_aps(run, matches, local, weights, n_classes))
            bar.update(1)
        aps = np.stack(per_run)  # (runs, 1 + R, T, K)
        ap50 = aps[:, :, t_main, :]
        ap50_95 = aps[:, :, :len(IOU_THRESHOLDS), :].mean(axis=2)
        bucket = [_samples(key, n_images, _class_mean(ap50), _class_mean(ap50_95))]
        if key == "all":
            bucket += [_samples(f"class/{name}", n_images, ap50[:, :, c], ap50_95[:, :, c])
                       for c, name in enumerate(cfg.classes)]
        done[signature] = bucket
        results.extend(bucket)
    bar.close()
    return results


def _samples(key: str, n_images: int, map50: np.ndarray, map50_95: np.ndarray) -> BucketSamples:
    """Split (runs, 1 + R) arrays into the full-set column and the replicates."""
    return BucketSamples(key, n_images, map50[:, 0].copy(), map50_95[:, 0].copy(),
                         map50[:, 1:].copy(), map50_95[:, 1:].copy())


def _renamed(samples: BucketSamples, key: str) -> BucketSamples:
    return BucketSamples(key, samples.n_images, samples.map50, samples.map50_95,
                         samples.boot_map50, samples.boot_map50_95)
