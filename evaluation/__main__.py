"""Standalone evaluation, no DVC needed.

    python -m evaluation --gt GT.json --pred PRED.json --out metrics.json
    python -m evaluation compare --gt GT.json --pred A.json --pred B.json [--names a,b]
        [--bootstrap 2000] [--ci 0.95] [--seed 0] --out DIR
    python -m evaluation gap --model best.pt --a DIR_OR_MANIFEST --b DIR_OR_MANIFEST --out gap.json
        [--backbone ARCH --weights STATE_DICT] [--imgsz 320] [--batch 16] [--device auto]

GT is any BDD100K labels file the data package reads (legacy, det_20 or Scalabel frames), with
the toolkit's renames and ignored classes applied. The first form writes the plot tables
(pr_occlusion, buckets, pr_class, pr_score .csv), report.md and its pictures (.png) next to
--out; `compare` writes compare.json, compare.md and forest.png into DIR: every bucket's mAP50
and mAP50:95 per run with a bootstrap interval, and each run's Δ against the first with a paired
interval (the same resampled images for both). `gap` writes the Fréchet distance and KID between
two sets of frames in a detector's feature space (evaluation/gap.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import MissingInputError, UserError
from evaluation.config import MAX_REPLICATES, EvalConfig, GapConfig
from evaluation.errors import EvalInputError
from evaluation.predictions import load_predictions
from evaluation.report import atomic_write_text
from evaluation.run import run_evaluation, skip_record

if TYPE_CHECKING:
    from data.manifest import IngestResult


def _csv(kind: type) -> Callable[[str], list]:
    def parse(text: str) -> list:
        try:
            return [kind(part.strip()) for part in text.split(",") if part.strip()]
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"{text!r}: {err}") from err
    return parse


def _add_eval_options(parser: argparse.ArgumentParser) -> None:
    """The options both forms share: what is evaluated, and how."""
    defaults = EvalConfig()
    parser.add_argument("--gt", type=Path, required=True, help="BDD100K / Scalabel labels JSON")
    parser.add_argument("--categories", type=_csv(str), default=defaults.classes)
    parser.add_argument("--occlusion-edges", type=_csv(int), default=defaults.occlusion_edges)
    parser.add_argument("--iou", type=float, default=defaults.iou)
    parser.add_argument("--max-dets", type=int, default=defaults.max_dets)
    parser.add_argument("--convention", choices=["coco", "bdd"], default=defaults.convention)


def _config(args: argparse.Namespace, **extra: float) -> EvalConfig:
    return EvalConfig(classes=args.categories, occlusion_edges=args.occlusion_edges,
                      iou=args.iou, max_dets=args.max_dets, convention=args.convention, **extra)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = EvalConfig()
    parser = argparse.ArgumentParser(prog="python -m evaluation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_eval_options(parser)
    parser.add_argument("--pred", type=Path, required=True,
                        help="Scalabel frames with scored labels, or COCO results + images map")
    parser.add_argument("--out", type=Path, required=True, help="metrics JSON to write")
    parser.add_argument("--report-score", type=float, default=defaults.report_score,
                        help="report.md's recall table counts detections scoring at least this")
    parser.add_argument("--report-small-height", type=float,
                        default=defaults.report_small_height,
                        help="report.md's recall table splits boxes at this height (pixels)")
    parser.add_argument("--baseline", type=Path, help="another run's metrics JSON to compare to")
    return parser.parse_args(argv)


def parse_compare_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m evaluation compare",
                                     description="Paired bootstrap comparison of several runs "
                                                 "on the same ground truth.")
    _add_eval_options(parser)
    parser.add_argument("--pred", type=Path, action="append", required=True,
                        help="a run's predictions (repeat; the first is the reference of Δ)")
    parser.add_argument("--names", type=_csv(str), help="run names, comma-separated "
                        "(default: the prediction files' names)")
    parser.add_argument("--bootstrap", type=int, default=2000, help="replicates")
    parser.add_argument("--ci", type=float, default=0.95, help="interval coverage, in (0, 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the image draws")
    parser.add_argument("--out", type=Path, required=True, help="directory for compare.json/.md")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.names is None:
        stems = [p.stem for p in args.pred]
        args.names = stems if len(set(stems)) == len(stems) else [
            f"{i}:{stem}" for i, stem in enumerate(stems)]
    if len(args.names) != len(args.pred) or len(set(args.names)) != len(args.names):
        parser.error(f"--names needs {len(args.pred)} distinct names, one per --pred, "
                     f"got {args.names}")
    if not 1 <= args.bootstrap <= MAX_REPLICATES:
        parser.error(f"--bootstrap must be between 1 and {MAX_REPLICATES}, got {args.bootstrap}")
    if not 0.0 < args.ci < 1.0:
        parser.error(f"--ci must be between 0 and 1 (exclusive), got {args.ci}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} exists and is not a directory")
    return args


def _load_gt(path: Path, classes: list[str]) -> IngestResult:
    # imported here so that `evaluation` itself does not depend on the data package
    from data.bdd100k import frames_to_tables, load_frames

    frames = load_frames(path)
    if not frames:
        raise EvalInputError(f"{path}: no frames")
    return frames_to_tables(frames, {c: c for c in classes}, split="val", source=str(path))


_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean",
               type(None): "null"}


def read_baseline(path: Path) -> dict:
    """Another run's metrics JSON (this tool's or the stage's metrics.json), checked up front:
    a bad one is one error line naming it, not a traceback halfway through the report."""
    if not path.is_file():
        raise MissingInputError(f"{path}: baseline metrics file not found")
    try:
        baseline = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise EvalInputError(f"{path}: baseline metrics file is not UTF-8 text ({err.reason} "
                             f"at byte {err.start})") from err
    except json.JSONDecodeError as err:
        raise EvalInputError(f"{path}: baseline metrics file is not valid JSON (line "
                             f"{err.lineno} column {err.colno}: {err.msg})") from err
    if not isinstance(baseline, dict):
        kind = _JSON_KINDS.get(type(baseline), type(baseline).__name__)
        raise EvalInputError(f"{path}: baseline metrics file holds a JSON {kind}, expected an "
                             "object like metrics.json")
    for key in ("per_class", "occlusion", "weather", "timeofday"):
        part = baseline.get(key, {})
        if not isinstance(part, dict) or not all(isinstance(v, dict) for v in part.values()):
            raise EvalInputError(f"{path}: baseline {key!r} is not an object of "
                                 "{name: {...}} as in metrics.json")
    return baseline


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compare"]:
        return compare_main(argv[1:])
    if argv[:1] == ["gap"]:
        return gap_main(argv[1:])
    args = parse_args(argv)
    cfg = _config(args, report_score=args.report_score,
                  report_small_height=args.report_small_height)
    try:
        if args.out.is_dir():
            raise EvalInputError(f"--out {args.out}: is a directory; name the metrics JSON to "
                                 f"write, e.g. {args.out / 'metrics.json'}")
        baseline = None if args.baseline is None else read_baseline(args.baseline)
        ground_truth = _load_gt(args.gt, cfg.classes)
        # no known_images: evaluate() counts predictions of frames absent from GT itself
        predictions, read_report = load_predictions(args.pred, convention=cfg.convention)
        skipped = {"ground_truth": skip_record(str(args.gt),
                                               ground_truth.report.get("skipped", {})),
                   "predictions": skip_record(str(args.pred), read_report["skipped"])}
        result, report = run_evaluation(ground_truth.images, ground_truth.objects, predictions,
                                        cfg, args.out.parent, baseline=baseline,
                                        skipped=skipped, metrics_name=args.out.name)
    except (UserError, OSError) as err:  # OSError: the file system (permissions, disk full)
        print(f"evaluation: error: {err}", file=sys.stderr)
        return 2
    gt_skips = {k: v["count"] for k, v in ground_truth.report.get("skipped", {}).items()}
    print(f"GT {args.gt}: {len(ground_truth.images)} frames; skipped {gt_skips or 'none'}",
          file=sys.stderr)
    print(f"predictions {args.pred}: {read_report['n_boxes_read']} boxes "
          f"({read_report['format']}); skipped {read_report['skipped']}; "
          f"{result.metrics['unmatched_prediction_frames']} frame(s) not in GT "
          f"({result.metrics['n_predictions_unmatched_frames']} boxes, not scored)",
          file=sys.stderr)
    print(report)
    return 0


def compare_main(argv: list[str]) -> int:
    # imported here: numba's start-up is not needed by the plain evaluation
    from evaluation.bootstrap import bootstrap_buckets
    from evaluation.compare import compare, compare_json, forest_rows, render_compare
    from evaluation.figures import forest_figure

    args = parse_compare_args(argv)
    cfg = _config(args)
    try:
        ground_truth = _load_gt(args.gt, cfg.classes)
        predictions = []
        for path in args.pred:
            table, read_report = load_predictions(path, convention=cfg.convention)
            print(f"predictions {path}: {read_report['n_boxes_read']} boxes "
                  f"({read_report['format']}); skipped {read_report['skipped']}",
                  file=sys.stderr)
            predictions.append(table)
        samples = bootstrap_buckets(ground_truth.images, ground_truth.objects, predictions, cfg,
                                    n_boot=args.bootstrap, seed=args.seed,
                                    progress=not args.quiet)
    except (UserError, OSError) as err:  # OSError: the file system (permissions, disk full)
        print(f"evaluation compare: error: {err}", file=sys.stderr)
        return 2
    result = compare(args.names, samples, args.bootstrap, args.ci)
    forest_figure(forest_rows(result), args.names,
                  f"Δ mAP50 against {args.names[0]} ({100 * args.ci:g} % paired interval)",
                  args.out / "forest.png")
    report = render_compare(result) + "\n![Δ mAP50 with its interval](forest.png)\n"
    atomic_write_text(args.out / "compare.json", compare_json(result))
    atomic_write_text(args.out / "compare.md", report)
    print(report)
    return 0


def parse_gap_args(argv: list[str]) -> argparse.Namespace:
    defaults = GapConfig()
    parser = argparse.ArgumentParser(prog="python -m evaluation gap",
                                     description="Fréchet distance and KID between two sets of "
                                                 "frames, in a detector's feature space.")
    parser.add_argument("--model", type=Path, help="YOLO checkpoint: its SPPF output, pooled")
    parser.add_argument("--backbone", help="instead: a torchvision architecture, e.g. resnet18")
    parser.add_argument("--weights", type=Path, help="the --backbone's local state-dict file")
    parser.add_argument("--a", type=Path, required=True, help="directory of images or manifest")
    parser.add_argument("--b", type=Path, required=True, help="directory of images or manifest")
    parser.add_argument("--out", type=Path, required=True, help="JSON to write")
    parser.add_argument("--imgsz", type=int, default=defaults.imgsz, help="resize width")
    parser.add_argument("--batch", type=int, default=defaults.batch)
    parser.add_argument("--device", default=defaults.device,
                        help="auto | cpu | cuda | a GPU index (default auto)")
    parser.add_argument("--max-frames", type=int, default=0,
                        help="at most this many frames per set, evenly spaced (0 = all)")
    parser.add_argument("--kid-subset", type=int, default=defaults.kid_subset)
    parser.add_argument("--kid-subsets", type=int, default=defaults.kid_subsets)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if (args.model is None) == (args.backbone is None):
        parser.error("give --model (a YOLO checkpoint) or --backbone with --weights")
    if args.backbone and args.weights is None:
        parser.error("--backbone needs --weights (a local state dict; nothing is downloaded)")
    return args


def gap_main(argv: list[str]) -> int:
    from evaluation.gap import (
        GapConfig,
        evenly_spaced,
        extract_features,
        frame_paths,
        gap_scores,
        gap_warnings,
        load_extractor,
        load_torchvision_extractor,
    )

    args = parse_gap_args(argv)
    try:
        cfg = GapConfig(imgsz=args.imgsz, batch=args.batch, device=args.device,
                        max_frames=args.max_frames, kid_subset=args.kid_subset,
                        kid_subsets=args.kid_subsets)
        extractor = (load_extractor(args.model, cfg.device) if args.model else
                     load_torchvision_extractor(args.backbone, args.weights, cfg.device))
        sets = {}
        for name in ("a", "b"):
            source = getattr(args, name)
            paths = evenly_spaced(frame_paths(source), cfg.max_frames)
            sets[name] = (source, extract_features(extractor, paths, cfg, f"gap {name}",
                                                   progress=not args.quiet))
            if len(sets[name][1].paths) < 2:
                raise EvalInputError(f"--{name} {source}: {len(sets[name][1].paths)} readable "
                                     "frame(s); both scores need at least 2")
        scores = gap_scores(sets["a"][1].values, sets["b"][1].values, cfg)
    except (ValueError, FileNotFoundError) as err:  # EvalInputError, BadInputError
        print(f"evaluation gap: error: {err}", file=sys.stderr)
        return 2
    result = {"features": extractor.name, **extractor.meta,
              "checkpoint_sha256": extractor.checkpoint_sha256, "imgsz": cfg.imgsz, **scores}
    for name, (source, feats) in sets.items():
        result[name] = {"source": str(source), "n_frames": len(feats.paths),
                        "n_skipped": len(feats.skipped), "skipped": feats.skipped[:20]}
        if feats.skipped:
            print(f"evaluation gap: skipped {len(feats.skipped)} unreadable frame(s) of --{name}, "
                  f"e.g. {feats.skipped[0]}", file=sys.stderr)
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    for warning in gap_warnings(extractor, {f"--{n}": len(f.paths) for n, (_, f) in sets.items()}):
        print(f"evaluation gap: warning: {warning}", file=sys.stderr)
    kid_sd = "" if scores["kid_sd"] is None else f" ± {scores['kid_sd']:.4g}"
    print(f"FD {scores['fd']:.4f}  KID {scores['kid']:.4g}{kid_sd}  "
          f"({len(sets['a'][1].paths)} vs {len(sets['b'][1].paths)} frames; {extractor.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
