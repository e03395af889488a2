"""The one evaluation run both entry points call (the `evaluate` stage and `python -m
evaluation`): check_coverage matches the frames, evaluate computes, recall_breakdown adds what it
finds, write_outputs renders."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from evaluation.config import EvalConfig
from evaluation.core import EvalResult, evaluate
from evaluation.coverage import check_coverage
from evaluation.recall import recall_breakdown, render_recall
from evaluation.report import render_coverage, render_held_out, render_skipped, write_outputs


def skip_record(source: str, skipped: dict) -> dict:
    """metrics.json's record of one input's skips: {"source", "total", "reasons": {reason:
    {"count", "examples"?}}}, from a data reader's report["skipped"] (counts with file/line/detail
    examples) or load_predictions' (plain counts)."""
    reasons = {reason: entry if isinstance(entry, dict) else {"count": int(entry)}
               for reason, entry in sorted(skipped.items())}
    return {"source": source, "total": sum(e["count"] for e in reasons.values()),
            "reasons": reasons}


def run_evaluation(images: pd.DataFrame, gt: pd.DataFrame, predictions: pd.DataFrame,
                   cfg: EvalConfig, out_dir: Path, *, baseline: dict | None = None,
                   held_out: dict | None = None, skipped: dict | None = None,
                   metrics_name: str = "metrics.json") -> tuple[EvalResult, str]:
    """Evaluate and write every output under out_dir; returns the result and report.md's text.

    held_out: the detector's own validation (the stage's predict/held_out.json), kept in
    metrics.json under "held_out". skipped: {input: skip_record(...)}, kept under "skipped",
    so that a figure computed on less than the user gave says so; the coverage check's skips
    (prediction frames not in the GT, classes not evaluated) join skipped["predictions"], and
    its counts are metrics.json["coverage"].
    """
    skipped = dict(skipped or {})
    source = skipped.get("predictions", {}).get("source", "predictions")
    coverage = check_coverage(images, predictions, cfg.classes, source)
    if coverage.skips:
        record = skipped.get("predictions", skip_record(source, {}))
        skipped["predictions"] = skip_record(source, {**record["reasons"], **coverage.skips})
    predictions = coverage.predictions
    result = evaluate(images, gt, predictions, cfg)
    result.metrics["coverage"] = coverage.record
    appendix = render_coverage(coverage.record)
    appendix += render_recall(recall_breakdown(images, gt, predictions, cfg), cfg)
    if held_out is not None:
        result.metrics["held_out"] = held_out
        appendix += render_held_out(held_out, result.metrics["map50"])
    if skipped:
        result.metrics["skipped"] = skipped
        appendix += render_skipped(skipped, coverage.record["gt_frames_without_entry"])
    report = write_outputs(result, out_dir, baseline, metrics_name=metrics_name,
                           appendix=appendix)
    return result, report
