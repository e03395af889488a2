"""metrics.json, the DVC plot CSVs and report.md, each written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evaluation.core import EvalConfig, EvalResult

BUCKET_GROUPS = ("occlusion", "weather", "timeofday")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _delta(current: float | None, baseline: float | None) -> str:
    return "n/a" if current is None or baseline is None else f"{current - baseline:+.4f}"


def _rows(metrics: dict) -> list[tuple[str, float | None, dict | None]]:
    """(label, mAP at cfg.iou, bucket dict or None) for every row of the report tables."""
    rows: list[tuple[str, float | None, dict | None]] = [
        ("mAP50 (all images)", metrics.get("map50"), None),
        ("mAP50:95 (all images)", metrics.get("map50_95"), None),
    ]
    for name, values in metrics.get("per_class", {}).items():
        rows.append((f"AP50 {name}", values.get("ap50"), None))
    for group in BUCKET_GROUPS:
        for name, values in metrics.get(group, {}).items():
            rows.append((f"{group} {name}", values.get("map50"), values))
    return rows


def _lookup(metrics: dict, label: str) -> float | None:
    for row_label, value, _ in _rows(metrics):
        if row_label == label:
            return value
    return None


def render_report(metrics: dict, cfg: EvalConfig | None = None,
                  baseline: dict | None = None) -> str:
    """Markdown table: bucket | baseline | this run | Δ with a baseline metrics dict, else
    bucket | mAP50 | images | GT."""
    lines = ["# Detection evaluation", ""]
    if cfg is not None:
        lines += [f"COCO AP at IoU {cfg.iou} (101 recall points, max {cfg.max_dets} detections "
                  f"per image and class, `{cfg.convention}` box convention) over "
                  f"{', '.join(cfg.classes)}; occlusion buckets count occluded vehicles per "
                  "image.", ""]
    lines += [f"{metrics.get('n_images', 0)} images, {metrics.get('n_gt', 0)} ground-truth boxes, "
              f"{metrics.get('n_predictions', 0)} scored predictions.", ""]
    if baseline is not None:
        lines += ["| bucket | baseline | this run | Δ |", "|---|---:|---:|---:|"]
        for label, value, _ in _rows(metrics):
            before = _lookup(baseline, label)
            lines.append(f"| {label} | {_fmt(before)} | {_fmt(value)} | {_delta(value, before)} |")
    else:
        lines += ["| bucket | mAP50 | images | GT |", "|---|---:|---:|---:|"]
        for label, value, bucket in _rows(metrics):
            images = bucket["n_images"] if bucket else metrics.get("n_images", "")
            n_gt = bucket["n_gt"] if bucket else metrics.get("n_gt", "")
            if label.startswith("AP50 "):
                n_gt = metrics["per_class"][label[len("AP50 "):]]["n_gt"]
            lines.append(f"| {label} | {_fmt(value)} | {images} | {n_gt} |")
    return "\n".join(lines) + "\n"


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temp file in the same directory, then rename: never a half-written file.

    (open() rather than mkstemp so the file gets the usual umask permissions, not 0600.)
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def metrics_json(metrics: dict) -> str:
    """Deterministic JSON; allow_nan=False guarantees no NaN/Infinity ever reaches DVC."""
    return json.dumps(metrics, indent=2, allow_nan=False) + "\n"


def write_outputs(result: EvalResult, out_dir: Path, baseline: dict | None = None, *,
                  metrics_name: str = "metrics.json", appendix: str = "") -> None:
    """metrics.json, pr_occlusion.csv, buckets.csv and report.md (+ `appendix`, e.g. the
    recall section of evaluation/recall.py) under out_dir (atomic each)."""
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / metrics_name, metrics_json(result.metrics))
    # empty cell (not NaN) for a bucket without ground truth
    atomic_write_text(out_dir / "pr_occlusion.csv",
                      result.pr_occlusion.to_csv(index=False, na_rep="", lineterminator="\n"))
    atomic_write_text(out_dir / "buckets.csv",
                      result.buckets.to_csv(index=False, na_rep="", lineterminator="\n"))
    report = result.report if baseline is None else render_report(result.metrics, result.config,
                                                                  baseline)
    atomic_write_text(out_dir / "report.md", report + appendix)


def _fmt3(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def render_held_out(held_out: dict, target_map50: float | None) -> str:
    """report.md's answer to "does it learn at all?", next to how far it carries over."""
    return ("\n## How far it gets\n\n"
            f"On held-out frames of the domain it was trained on (the `dataset.val_fraction` "
            f"share, never trained on; ultralytics' validation of the kept checkpoint) the "
            f"detector reaches mAP50 {_fmt3(held_out.get('map50'))} (mAP50:95 "
            f"{_fmt3(held_out.get('map50_95'))}); on the BDD100K val frames above, "
            f"{_fmt3(target_map50)}. One run's figures: the seed alone moves them by several "
            "points (`make study` gives the intervals).\n")

