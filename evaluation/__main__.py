"""Standalone evaluation, no DVC needed.

    python -m evaluation --gt GT.json --pred PRED.json --out DIR
    python -m evaluation compare --gt GT.json --pred A.json --pred B.json [--names a,b]
        [--bootstrap 2000] [--ci 0.95] [--seed 0] --out DIR
    python -m evaluation gap --model best.pt --a DIR_OR_MANIFEST --b DIR_OR_MANIFEST --out gap.json
        [--backbone ARCH --weights STATE_DICT] [--imgsz 320] [--batch 16] [--device auto]

--gt, the ground truth, is told apart by its content:
  * BDD100K / Scalabel labels (legacy, det_20 or Scalabel frames: a list of frames or
    {"frames": [...]}), with the BDD100K toolkit's renames and ignored classes applied;
  * a COCO instances file {"images", "annotations", "categories"}: frames are named by
    file_name, iscrowd 1 is an ignore region, pycocotools' image order (ascending id) is kept.
--pred, the detections (each box needs a score):
  * Scalabel frames [{"name", "labels": [{"category", "score", "box2d": {x1, y1, x2, y2}}]}]
    or {"frames": [...]}: every listed frame counts as seen by the detector;
  * a COCO results list [{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]
    (pycocotools' loadRes input, ultralytics' save_json predictions.json): integer image_ids
    and category_ids are named by a COCO --gt's images and categories; ultralytics'
    "file_name" names the frame; --category-ids 0=car,1=truck names class indices
    (ultralytics writes its model's class index for a non-COCO dataset; an id no map names
    is counted as a class not evaluated); a result may also
    give "category" (a name) and a string image_id (the frame name);
  * the same results wrapped with their own maps: {"images": [{"id", "file_name"}],
    "categories": [{"id", "name"}], "annotations": [...]}.
Prediction frames match GT frames by exact name, else by the name without directory, "./"
and extension when that is unique on both sides. What matched, GT frames without an entry in
the predictions, prediction frames not in the GT and predicted classes that are not evaluated
are counted in metrics.json ("coverage", "skipped") and report.md; no frame or no class in
common is an error (exit 2), not an mAP of 0.

--out is a directory (created; a trailing slash is fine) for every output, or a path ending
in .json that names the main JSON (metrics.json / compare.json), the other outputs written
next to it. The first form writes metrics.json, the plot tables (pr_occlusion, buckets,
pr_class, pr_score .csv), report.md and its pictures (.png); `compare` writes compare.json,
compare.md and forest.png: every bucket's mAP50 and mAP50:95 per run with a bootstrap interval,
and each run's Δ against the first with a paired interval (the same resampled images for
both); it refuses runs that cover different GT frames. `gap` writes the Fréchet distance and
KID between two sets of frames in a detector's feature space (evaluation/gap.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from common.config import ParamError
from common.errors import MissingInputError, UserError
from evaluation.config import MAX_REPLICATES, EvalConfig, GapConfig
from evaluation.coverage import check_coverage
from evaluation.errors import EvalInputError
from evaluation.ground_truth import load_ground_truth
from evaluation.predictions import load_predictions
from evaluation.report import atomic_write_text, coverage_warnings
from evaluation.run import run_evaluation, skip_record

# EvalConfig's fields as the flags that set them, for its errors
_FLAGS = {"classes": "--categories", "occlusion_edges": "--occlusion-edges", "iou": "--iou",
          "max_dets": "--max-dets", "convention": "--convention",
          "report_score": "--report-score", "report_small_height": "--report-small-height"}


class _Parser(argparse.ArgumentParser):
    """A bad flag is one line naming it and what is allowed (exit 2), without the usage."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog.removeprefix('python -m ')}: error: {message}", file=sys.stderr)
        sys.exit(2)


def _csv(kind: type) -> Callable[[str], list]:
    def parse(text: str) -> list:
        try:
            return [kind(part.strip()) for part in text.split(",") if part.strip()]
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"{text!r}: {err}") from err
    return parse


def _id_names(text: str) -> dict[str, str]:
    pairs = [part.strip().partition("=") for part in text.split(",") if part.strip()]
    if not pairs or any(not ident.strip() or not eq or not name.strip()
                        for ident, eq, name in pairs):
        raise argparse.ArgumentTypeError(f"{text!r}: expected ID=NAME pairs, e.g. 0=car,1=truck")
    return {ident.strip(): name.strip() for ident, _, name in pairs}


def _add_eval_options(parser: argparse.ArgumentParser) -> None:
    """The options both forms share: what is evaluated, and how."""
    defaults = EvalConfig()
    parser.add_argument("--gt", type=Path, required=True,
                        help="BDD100K / Scalabel labels JSON, or a COCO instances JSON")
    parser.add_argument("--categories", type=_csv(str), default=defaults.classes,
                        help="classes to evaluate, comma-separated; each must be a class of "
                             f"--gt (default {','.join(defaults.classes)})")
    parser.add_argument("--occlusion-edges", type=_csv(int), default=defaults.occlusion_edges,
                        help="occlusion bucket upper bounds, strictly increasing whole numbers "
                             ">= 0 (default 5,10)")
    parser.add_argument("--iou", type=float, default=defaults.iou,
                        help="IoU threshold of mAP50 and the buckets, in (0, 1] (default 0.5)")
    parser.add_argument("--max-dets", type=int, default=defaults.max_dets,
                        help="detections kept per image and class, >= 1 (default 100)")
    parser.add_argument("--convention", choices=["coco", "bdd"], default=defaults.convention,
                        help="box width x2 - x1 (coco) or x2 - x1 + 1 (bdd, BDD100K toolkit)")
    parser.add_argument("--category-ids", type=_id_names,
                        help="names of the predictions' integer category_ids, ID=NAME pairs "
                             "(e.g. 0=car,1=truck for ultralytics' class indices); default: a "
                             "COCO --gt's categories")


def _config(parser: argparse.ArgumentParser, args: argparse.Namespace,
            **extra: float) -> EvalConfig:
    try:
        return EvalConfig(classes=args.categories, occlusion_edges=args.occlusion_edges,
                          iou=args.iou, max_dets=args.max_dets, convention=args.convention,
                          **extra)
    except ParamError as err:
        field, _, problem = str(err).partition(": ")
        parser.error(f"{_FLAGS.get(field, field)}: {problem}")


def _out_json(parser: argparse.ArgumentParser, raw: str, name: str) -> Path:
    """--out: a path ending in .json is the main JSON itself; anything else is a directory."""
    path = Path(raw)
    if raw.endswith(("/", "\\")) or path.is_dir() or path.suffix.lower() != ".json":
        if path.exists() and not path.is_dir():
            parser.error(f"--out {raw}: exists and is not a directory; give a directory or a "
                         "path ending in .json")
        return path / name
    return path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = EvalConfig()
    parser = _Parser(prog="python -m evaluation", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_eval_options(parser)
    parser.add_argument("--pred", type=Path, required=True,
                        help="Scalabel frames with scored labels, or COCO results (a list, or "
                             "wrapped with images and categories)")
    parser.add_argument("--out", required=True,
                        help="output directory, or the metrics .json (the rest next to it)")
    parser.add_argument("--report-score", type=float, default=defaults.report_score,
                        help="report.md's recall table counts detections scoring at least "
                             "this, in [0, 1]")
    parser.add_argument("--report-small-height", type=float,
                        default=defaults.report_small_height,
                        help="report.md's recall table splits boxes at this height (pixels)")
    parser.add_argument("--baseline", type=Path, help="another run's metrics JSON to compare to")
    args = parser.parse_args(argv)
    args.cfg = _config(parser, args, report_score=args.report_score,
                       report_small_height=args.report_small_height)
    args.out = _out_json(parser, args.out, "metrics.json")
    return args


def parse_compare_args(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(prog="python -m evaluation compare",
                     description="Paired bootstrap comparison of several runs on the same ground "
                                 "truth (formats: python -m evaluation --help).")
    _add_eval_options(parser)
    parser.add_argument("--pred", type=Path, action="append", required=True,
                        help="a run's predictions (repeat; the first is the reference of Δ)")
    parser.add_argument("--names", type=_csv(str), help="run names, comma-separated "
                        "(default: the prediction files' names)")
    parser.add_argument("--bootstrap", type=int, default=2000, help="replicates")
    parser.add_argument("--ci", type=float, default=0.95, help="interval coverage, in (0, 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the image draws")
    parser.add_argument("--out", required=True,
                        help="output directory, or the compare .json (the rest next to it)")
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
    args.cfg = _config(parser, args)
    args.out = _out_json(parser, args.out, "compare.json")
    return args


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


def _read_predictions(path: Path, truth, args: argparse.Namespace) -> tuple:
    return load_predictions(path, convention=args.cfg.convention, gt_images=truth.image_names,
                            gt_categories=truth.category_names, category_ids=args.category_ids)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compare"]:
        return compare_main(argv[1:])
    if argv[:1] == ["gap"]:
        return gap_main(argv[1:])
    args = parse_args(argv)
    cfg = args.cfg
    try:
        baseline = None if args.baseline is None else read_baseline(args.baseline)
        truth = load_ground_truth(args.gt, cfg.classes, cfg.convention)
        predictions, read_report = _read_predictions(args.pred, truth, args)
        skipped = {"ground_truth": skip_record(str(args.gt), truth.report.get("skipped", {})),
                   "predictions": skip_record(str(args.pred), read_report["skipped"])}
        result, report = run_evaluation(truth.images, truth.objects, predictions, cfg,
                                        args.out.parent, baseline=baseline, skipped=skipped,
                                        metrics_name=args.out.name)
    except (UserError, OSError) as err:  # OSError: the file system (permissions, disk full)
        print(f"evaluation: error: {err}", file=sys.stderr)
        return 2
    gt_skips = {k: v["count"] for k, v in truth.report.get("skipped", {}).items()}
    print(f"GT {args.gt} ({truth.format}): {len(truth.images)} frames; skipped "
          f"{gt_skips or 'none'}", file=sys.stderr)
    coverage = result.metrics["coverage"]
    print(f"predictions {args.pred} ({read_report['format']}): {read_report['n_boxes_read']} "
          f"boxes in {coverage['prediction_frames']} frames, {coverage['matched_by_name']} "
          f"matched by name, {coverage['matched_by_stem']} by name without directory and "
          "extension", file=sys.stderr)
    for warning in coverage_warnings(coverage):
        print(f"evaluation: warning: {args.pred}: {warning}", file=sys.stderr)
    print(report)
    return 0


def compare_main(argv: list[str]) -> int:
    # imported here: numba's start-up is not needed by the plain evaluation
    from evaluation.bootstrap import bootstrap_buckets
    from evaluation.compare import (
        compare,
        compare_json,
        coverage_difference,
        forest_rows,
        render_compare,
    )
    from evaluation.figures import forest_figure

    args = parse_compare_args(argv)
    cfg = args.cfg
    try:
        truth = load_ground_truth(args.gt, cfg.classes, cfg.convention)
        coverages = []
        for path in args.pred:
            table, read_report = _read_predictions(path, truth, args)
            coverage = check_coverage(truth.images, table, cfg.classes, str(path))
            print(f"predictions {path} ({read_report['format']}): "
                  f"{read_report['n_boxes_read']} boxes; skipped {read_report['skipped']}",
                  file=sys.stderr)
            for warning in coverage_warnings(coverage.record):
                print(f"evaluation compare: warning: {path}: {warning}", file=sys.stderr)
            coverages.append(coverage)
        difference = coverage_difference(args.names, coverages)
        if difference is not None:
            raise EvalInputError(difference)
        samples = bootstrap_buckets(truth.images, truth.objects,
                                    [c.predictions for c in coverages], cfg,
                                    n_boot=args.bootstrap, seed=args.seed,
                                    progress=not args.quiet)
        result = compare(args.names, samples, args.bootstrap, args.ci)
        result["coverage"] = {n: c.record for n, c in zip(args.names, coverages, strict=True)}
        out_dir = args.out.parent
        forest_figure(forest_rows(result), args.names,
                      f"Δ mAP50 against {args.names[0]} ({100 * args.ci:g} % paired interval)",
                      out_dir / "forest.png")
        report = render_compare(result) + "\n![Δ mAP50 with its interval](forest.png)\n"
        atomic_write_text(args.out, compare_json(result))
        atomic_write_text(out_dir / "compare.md", report)
    except (UserError, OSError) as err:  # OSError: the file system (permissions, disk full)
        print(f"evaluation compare: error: {err}", file=sys.stderr)
        return 2
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
