"""Before any AP: which prediction frame is which GT frame, which GT frames the predictions cover
and which predicted classes are evaluated. A mismatch is counted and reported, or an error when
nothing matches: never a silent 0.

The frame rule: a prediction frame is the GT frame of the same name; else the GT frame whose
name without directory, "./" and extension (frame_key) is the same, when that key is unique among
the GT frames and among the prediction frames ("b1c6-0001" and "val/b1c6-0001.png" are
"b1c6-0001.jpg"; two GT frames "a.jpg" and "x/a.png" leave a prediction "a" unmatched).

A GT frame without an entry in the predictions is scored as a frame without detections, as
pycocotools scores it, and counted apart from a frame listed with no labels: the first is
missing, the second is the detector's answer. A plain COCO results list has entries only for
frames with detections, so for it the two cannot be told apart and the count is `null`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from evaluation.errors import EvalInputError

EXAMPLES = 5  # names listed per count in metrics.json and report.md


def frame_key(name: str) -> str:
    """`name` without directory and extension: "./val/b1c6-0001.jpg" -> "b1c6-0001"."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, _ = base.rpartition(".")
    return stem if dot and stem else base


def match_frames(gt_names: Iterable[str], prediction_names: Iterable[str]) -> dict[str, str]:
    """{prediction frame: GT frame} for every prediction frame that matches one (module rule)."""
    gt = set(gt_names)
    gt_keys = Counter(frame_key(name) for name in gt)
    gt_by_key = {frame_key(name): name for name in gt}
    predicted = set(prediction_names)
    predicted_keys = Counter(frame_key(name) for name in predicted)
    matches = {}
    for name in predicted:
        key = frame_key(name)
        if name in gt:
            matches[name] = name
        elif gt_keys[key] == 1 and predicted_keys[key] == 1:
            matches[name] = gt_by_key[key]
    return matches


@dataclass
class Coverage:
    predictions: pd.DataFrame  # image_id rewritten to the GT frame it matched
    record: dict  # metrics.json["coverage"]
    skips: dict  # {reason: {"count", "examples"}}, added to metrics.json["skipped"]["predictions"]
    covered: frozenset[str] | None  # GT frames with an entry; None: the format cannot tell
    near_misses: dict[str, str]  # predicted class -> the evaluated class it is but for case


def _example(source: str, detail: str) -> dict:
    return {"file": source, "line": None, "detail": detail}


def check_coverage(images: pd.DataFrame, predictions: pd.DataFrame, classes: list[str],
                   source: str) -> Coverage:
    """Match the frames, count what the predictions miss or add; EvalInputError (naming
    `source`, the predictions file) when no frame or no class matches."""
    gt_names = sorted(images["image_id"].astype(str))
    if not gt_names:
        raise EvalInputError("the ground truth has no frames: nothing to evaluate")
    listed = predictions.attrs.get("frames")
    boxes_per_frame = predictions["image_id"].astype(str).value_counts()
    names = list(dict.fromkeys([*(listed or []), *sorted(boxes_per_frame.index)]))
    if not names:
        raise EvalInputError(f"{source}: no prediction frames and no detections: nothing to "
                             "evaluate")
    matches = match_frames(gt_names, names)
    if not matches:
        raise EvalInputError(
            f"{source}: none of its {len(names)} frame(s) matches a GT frame (e.g. {names[0]!r};"
            f" GT frames are named like {gt_names[0]!r}); frames match by exact name, or by the "
            "name without directory and extension when that is unique on both sides")
    renamed = predictions["image_id"].astype(str).map(matches)
    matched_rows = renamed.notna().to_numpy()
    out = predictions.assign(image_id=renamed.fillna(predictions["image_id"]).astype("string"))
    skips: dict = {}

    unmatched = [n for n in names if n not in matches]
    if unmatched:
        skips["frame_not_in_gt"] = {"count": len(unmatched), "examples": [
            _example(source, f"frame {n!r} ({int(boxes_per_frame.get(n, 0))} boxes): no GT "
                             f"frame is named so or, uniquely, {frame_key(n)!r}")
            for n in unmatched[:EXAMPLES]]}

    per_class = predictions["class_name"][matched_rows].astype(str).value_counts()
    per_class = {str(k): int(v) for k, v in sorted(per_class.items())}
    folded = {c.casefold(): c for c in classes}
    not_evaluated = {c: n for c, n in per_class.items() if c not in classes}
    near = {c: folded[c.casefold()] for c in not_evaluated if c.casefold() in folded}
    if per_class and len(not_evaluated) == len(per_class):
        hint = "".join(f"; {c!r} differs from {e!r} only in case" for c, e in near.items())
        raise EvalInputError(f"{source}: none of its predicted classes "
                             f"({', '.join(map(repr, per_class))}) is an evaluated class "
                             f"({', '.join(map(repr, classes))}){hint}")
    if not_evaluated:
        skips["class_not_evaluated"] = {"count": sum(not_evaluated.values()), "examples": [
            _example(source, f"{c!r}: {n} boxes" + (f", differs from the evaluated class "
                                                    f"{near[c]!r} only in case" if c in near
                                                    else ""))
            for c, n in list(not_evaluated.items())[:EXAMPLES]]}

    covered = None if listed is None else frozenset(matches[n] for n in listed if n in matches)
    with_boxes = set(out["image_id"][matched_rows])
    missing = None if covered is None else [n for n in gt_names if n not in covered]
    by_stem = sum(1 for p, g in matches.items() if p != g)
    record = {
        "gt_frames": len(gt_names),
        "prediction_frames": len(names),
        "prediction_frames_listed": listed is not None,
        "matched_by_name": len(matches) - by_stem,
        "matched_by_stem": by_stem,
        "prediction_frames_not_in_gt": len(unmatched),
        "gt_frames_without_entry": None if missing is None else len(missing),
        "gt_frames_without_entry_examples": None if missing is None else missing[:EXAMPLES],
        "gt_frames_without_detections": sum(1 for n in gt_names if n not in with_boxes),
        "predicted_classes": per_class,
        "classes_not_evaluated": sorted(not_evaluated),
        "near_misses": near,
    }
    return Coverage(out, record, skips, covered, near)
