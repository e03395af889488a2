"""metrics.json, the DVC plot CSVs, the report's pictures and report.md, each written atomically.

write_outputs is the one writer: it renders report.md once, from the metrics it writes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from evaluation import figures
from evaluation.config import EvalConfig
from evaluation.core import EvalResult

BUCKET_GROUPS = ("occlusion", "weather", "timeofday")
# the DVC plot tables (dvc.yaml `plots`) and the pictures report.md shows next to its table
TABLES = ("pr_occlusion.csv", "buckets.csv", "pr_class.csv", "pr_score.csv")
PICTURES = {"pr_occlusion.png": "PR curve per occlusion bucket", "buckets.png": "mAP50 per bucket",
            "pr_class.png": "PR curve per class", "pr_score.png": "precision and recall against "
            "the score threshold", "delta.png": "Δ mAP50 against the baseline"}


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
                  baseline: dict | None = None, pictures: tuple[str, ...] = ()) -> str:
    """Markdown table: bucket | baseline | this run | Δ with a baseline metrics dict, else
    bucket | mAP50 | images | GT; then the `pictures` (PICTURES names, next to report.md)."""
    lines = ["# Detection evaluation", ""]
    if cfg is not None:
        lines += [f"COCO AP at IoU {cfg.iou} (101 recall points, max {cfg.max_dets} detections "
                  f"per image and class, `{cfg.convention}` box convention) over "
                  f"{', '.join(cfg.classes)}; occlusion buckets count occluded vehicles per "
                  "image.", ""]
    lines += [f"{metrics.get('n_images', 0)} images, {metrics.get('n_gt', 0)} ground-truth boxes, "
              f"{metrics.get('n_predictions', 0)} scored predictions.", ""]
    warnings = coverage_warnings(metrics.get("coverage", {}))
    if warnings:
        lines += [f"**Coverage:** {'; '.join(warnings)} (see Coverage below).", ""]
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
    if pictures:
        lines += ["", " ".join(f"![{PICTURES[name]}]({name})" for name in pictures)]
    return "\n".join(lines) + "\n"


def coverage_warnings(coverage: dict) -> list[str]:
    """What the predictions miss or add (evaluation/coverage.py), one phrase each; [] when they
    cover every GT frame with evaluated classes only. report.md's top line and the CLI's
    stderr say the same."""
    warnings = []
    missing = coverage.get("gt_frames_without_entry")
    if missing:
        examples = ", ".join(coverage["gt_frames_without_entry_examples"])
        warnings.append(f"{missing} of {coverage['gt_frames']} GT frames have no entry in the "
                        f"predictions (e.g. {examples}; scored as frames without detections)")
    if coverage.get("prediction_frames_not_in_gt"):
        warnings.append(f"{coverage['prediction_frames_not_in_gt']} prediction frames match no "
                        "GT frame (not scored)")
    near = coverage.get("near_misses", {})
    not_evaluated = [f"{name} {coverage['predicted_classes'][name]}"
                     + (f" (differs from {near[name]!r} only in case)" if name in near else "")
                     for name in coverage.get("classes_not_evaluated", [])]
    if not_evaluated:
        warnings.append(f"predicted classes not evaluated (boxes not scored): "
                        f"{', '.join(not_evaluated)}")
    return warnings


def render_coverage(coverage: dict) -> str:
    """report.md's account of how the prediction frames met the GT frames."""
    c = coverage
    paragraphs = [
        f"{c['matched_by_name'] + c['matched_by_stem']} of the {c['prediction_frames']} "
        f"prediction frames match a GT frame ({c['matched_by_name']} by name, "
        f"{c['matched_by_stem']} by the name without directory and extension); "
        f"{c['prediction_frames_not_in_gt']} match none (not scored)."]
    missing = c["gt_frames_without_entry"]
    if missing is None:
        paragraphs.append(
            f"The predictions are a COCO results list, which has entries only for frames with "
            f"detections: {c['gt_frames_without_detections']} of the {c['gt_frames']} GT frames "
            "have none, scored as frames without detections (whether the detector saw them, the "
            "file cannot tell).")
    elif missing:
        paragraphs.append(
            f"**{missing} of the {c['gt_frames']} GT frames have no entry in the predictions** "
            f"(e.g. {', '.join(c['gt_frames_without_entry_examples'])}): they are scored as "
            "frames without detections, as pycocotools scores them. A frame listed with no "
            "labels is the detector's answer; a frame not listed is missing from the file.")
    else:
        paragraphs.append(f"Every one of the {c['gt_frames']} GT frames has an entry in the "
                          f"predictions ({c['gt_frames_without_detections']} without "
                          "detections).")
    classes = ", ".join(f"{name} {n}" for name, n in c["predicted_classes"].items())
    paragraphs.append(f"Predicted boxes per class in the matched frames: {classes or 'none'}"
                      + (f"; not evaluated (not scored): {', '.join(c['classes_not_evaluated'])}"
                         if c["classes_not_evaluated"] else "") + ".")
    return "\n## Coverage\n\n" + "\n\n".join(paragraphs) + "\n"


def render_skipped(skipped: dict, gt_frames_without_entry: int | None = 0) -> str:
    """report.md's account of the input left out, so no figure is read as covering all of it;
    GT frames the predictions do not list are not input left out, but are named here too."""
    lines = []
    for part, record in skipped.items():
        for reason, entry in record["reasons"].items():
            if entry["count"]:
                example = (entry.get("examples") or [{}])[0].get("detail", "")
                lines.append(f"| {part} | {reason} | {entry['count']} | {example} |")
    if not lines:
        if gt_frames_without_entry:
            return (f"\nNo input was skipped, but {gt_frames_without_entry} GT frames have no "
                    "entry in the predictions (see Coverage).\n")
        return "\nNo input was skipped.\n"
    return "\n".join(["", "## Skipped input (not evaluated)", "",
                      f"Source: {', '.join(r['source'] for r in skipped.values())}.", "",
                      "| input | reason | count | first example |", "|---|---|---:|---|",
                      *lines]) + "\n"


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


def _csv(table: pd.DataFrame) -> str:
    # an empty cell (not NaN) where there is no value, e.g. a bucket without ground truth
    return table.to_csv(index=False, na_rep="", lineterminator="\n")


def write_pictures(result: EvalResult, out_dir: Path,
                   baseline: dict | None = None) -> tuple[str, ...]:
    """The PNGs report.md embeds (figures.py); returns their PICTURES names."""
    figures.pr_figure(result.pr_occlusion, "PR curve per occlusion bucket",
                      out_dir / "pr_occlusion.png")
    figures.bucket_figure(result.buckets, out_dir / "buckets.png")
    figures.pr_figure(result.pr_class, "PR curve per class (all images)", out_dir / "pr_class.png")
    figures.score_figure(result.pr_score, result.config.report_score, out_dir / "pr_score.png")
    names = ("pr_occlusion.png", "buckets.png", "pr_class.png", "pr_score.png")
    if baseline is None:
        (out_dir / "delta.png").unlink(missing_ok=True)  # no stale picture of an old comparison
        return names
    rows = [(label, None if value is None or _lookup(baseline, label) is None
             else value - _lookup(baseline, label))
            for label, value, _ in _rows(result.metrics) if label != "mAP50:95 (all images)"]
    figures.delta_figure(rows, "the baseline", out_dir / "delta.png")
    return (*names, "delta.png")


def write_outputs(result: EvalResult, out_dir: Path, baseline: dict | None = None, *,
                  metrics_name: str = "metrics.json", appendix: str = "") -> str:
    """metrics.json, the TABLES, the PICTURES and report.md (+ `appendix`, e.g. the recall
    section of evaluation/recall.py) under out_dir, atomic each; returns report.md's text."""
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / metrics_name, metrics_json(result.metrics))
    for name in TABLES:
        atomic_write_text(out_dir / name, _csv(getattr(result, name.removesuffix(".csv"))))
    pictures = write_pictures(result, out_dir, baseline)
    report = render_report(result.metrics, result.config, baseline, pictures) + appendix
    atomic_write_text(out_dir / "report.md", report)
    return report


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

