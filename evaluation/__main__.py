"""Standalone evaluation: `python -m evaluation --gt GT.json --pred PRED.json --out metrics.json`.

GT is any BDD100K labels file the data package reads (legacy, det_20 or Scalabel frames), with
the toolkit's renames and ignored classes applied. pr_occlusion.csv, buckets.csv and report.md
are written next to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from evaluation.core import EvalConfig, evaluate
from evaluation.errors import EvalInputError
from evaluation.predictions import load_predictions
from evaluation.recall import recall_breakdown, render_recall
from evaluation.report import write_outputs

if TYPE_CHECKING:
    from data.manifest import IngestResult


def _csv(kind: type) -> Callable[[str], list]:
    def parse(text: str) -> list:
        try:
            return [kind(part.strip()) for part in text.split(",") if part.strip()]
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"{text!r}: {err}") from err
    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = EvalConfig()
    parser = argparse.ArgumentParser(prog="python -m evaluation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gt", type=Path, required=True, help="BDD100K / Scalabel labels JSON")
    parser.add_argument("--pred", type=Path, required=True,
                        help="Scalabel frames with scored labels, or COCO results + images map")
    parser.add_argument("--out", type=Path, required=True, help="metrics JSON to write")
    parser.add_argument("--categories", type=_csv(str), default=defaults.classes)
    parser.add_argument("--occlusion-edges", type=_csv(int), default=defaults.occlusion_edges)
    parser.add_argument("--iou", type=float, default=defaults.iou)
    parser.add_argument("--max-dets", type=int, default=defaults.max_dets)
    parser.add_argument("--convention", choices=["coco", "bdd"], default=defaults.convention)
    parser.add_argument("--report-score", type=float, default=defaults.report_score,
                        help="report.md's recall table counts detections scoring at least this")
    parser.add_argument("--report-small-height", type=float,
                        default=defaults.report_small_height,
                        help="report.md's recall table splits boxes at this height (pixels)")
    parser.add_argument("--baseline", type=Path, help="another run's metrics JSON to compare to")
    return parser.parse_args(argv)


def _load_gt(path: Path, classes: list[str]) -> IngestResult:
    # imported here so that `evaluation` itself does not depend on the data package
    from data.bdd100k import frames_to_tables, load_frames

    frames = load_frames(path)
    if not frames:
        raise EvalInputError(f"{path}: no frames")
    return frames_to_tables(frames, {c: c for c in classes}, split="val", source=str(path))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = EvalConfig(classes=args.categories, occlusion_edges=args.occlusion_edges, iou=args.iou,
                     max_dets=args.max_dets, convention=args.convention,
                     report_score=args.report_score, report_small_height=args.report_small_height)
    try:
        baseline = None
        if args.baseline is not None:
            if not args.baseline.is_file():
                raise FileNotFoundError(f"{args.baseline}: baseline metrics file not found")
            baseline = json.loads(args.baseline.read_text(encoding="utf-8"))
        ground_truth = _load_gt(args.gt, cfg.classes)
        # no known_images: evaluate() counts predictions of frames absent from GT itself
        predictions, read_report = load_predictions(args.pred, convention=cfg.convention)
        result = evaluate(ground_truth.images, ground_truth.objects, predictions, cfg)
        found = render_recall(recall_breakdown(ground_truth.images, ground_truth.objects,
                                               predictions, cfg), cfg)
    except (ValueError, FileNotFoundError) as err:  # EvalInputError, BadInputError, bad JSON
        print(f"evaluation: error: {err}", file=sys.stderr)
        return 2
    write_outputs(result, args.out.parent, baseline, metrics_name=args.out.name, appendix=found)
    gt_skips = {k: v["count"] for k, v in ground_truth.report.get("skipped", {}).items()}
    print(f"GT {args.gt}: {len(ground_truth.images)} frames; skipped {gt_skips or 'none'}",
          file=sys.stderr)
    print(f"predictions {args.pred}: {read_report['n_boxes_read']} boxes "
          f"({read_report['format']}); skipped {read_report['skipped']}; "
          f"{result.metrics['unmatched_prediction_frames']} frame(s) not in GT "
          f"({result.metrics['n_predictions_unmatched_frames']} boxes, not scored)",
          file=sys.stderr)
    print((args.out.parent / "report.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
