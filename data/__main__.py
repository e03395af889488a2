"""`python -m data ingest --format F --root PATH [--labels FILE] [--split S] --out DIR`.

Reads one dataset with the default class map, writes the manifest to --out and prints a
one-paragraph summary of its report. Bad input exits with status 2 and a one-line error; so does
a dataset of which no image is kept (a wrong --root, most often), unless --allow-empty.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.errors import UserError
from data.errors import BadInputError
from data.manifest import IngestResult, write_manifest

KITTI_CLASS_MAP = {"Car": "car", "Van": "car", "Truck": "truck"}
BDD_CLASS_MAP = {"car": "car", "truck": "truck"}
FORMATS = ("kitti", "kitti-tracking", "vkitti2", "bdd100k")


def ingest(args: argparse.Namespace) -> IngestResult:
    root, allow = Path(args.root), args.allow_symlinks_outside_root
    if args.format == "kitti":
        from data.kitti import read_kitti_detection

        return read_kitti_detection(root, KITTI_CLASS_MAP, split=args.split or "training",
                                    allow_outside_root=allow)
    if args.format == "kitti-tracking":
        from data.kitti import read_kitti_tracking

        return read_kitti_tracking(root, KITTI_CLASS_MAP, allow_outside_root=allow)
    if args.format == "vkitti2":
        from data.vkitti2 import read_vkitti2

        return read_vkitti2(root, KITTI_CLASS_MAP, textgt_root=args.textgt_root,
                            allow_outside_root=allow)
    from data.bdd100k import read_bdd100k

    if args.labels is None:
        raise BadInputError("--labels FILE (the BDD100K labels JSON) is required for bdd100k")
    return read_bdd100k(Path(args.labels), root, BDD_CLASS_MAP, args.split or "val",
                        allow_outside_root=allow)


def check_not_empty(report: dict) -> None:
    """A manifest of no image is an error: it names the commonest skip and one example."""
    if report["images_kept"]:
        return
    skipped = report.get("skipped", {})
    if not skipped:
        raise BadInputError(f"{report['dataset']}: kept 0 images ({report['files_read']} "
                            "label file(s) read, no frame in them); check the dataset paths, "
                            "or pass --allow-empty to write an empty manifest")
    reason, entry = max(skipped.items(), key=lambda item: item[1]["count"])
    example = entry["examples"][0] if entry.get("examples") else {}
    raise BadInputError(f"{report['dataset']}: kept 0 images, {report['skipped_total']} skipped "
                        f"({reason} {entry['count']}, e.g. {example.get('detail', '?')}); check "
                        "--root, or pass --allow-empty to write an empty manifest")


def summary(report: dict, out: Path) -> str:
    """One paragraph: what was read, kept, skipped (by reason), clipped and dropped."""
    per_class = ", ".join(f"{k}: {v}" for k, v in report.get("objects_per_class", {}).items())
    skipped = report.get("skipped", {})
    reasons = ", ".join(f"{reason} {entry['count']}" for reason, entry in skipped.items())
    dropped = ", ".join(f"{k} {v}" for k, v in report.get("dropped_by_class_map", {}).items())
    return (f"{report['dataset']}: read {report['files_read']} label file(s); kept "
            f"{report['images_kept']} images and {report['objects_kept']} objects "
            f"({per_class or 'none'}; {report.get('ignore_regions', 0)} ignore regions); "
            f"skipped {report.get('skipped_total', 0)} ({reasons or 'nothing'}); clipped "
            f"{report.get('clipped', 0)} boxes; dropped by the class map: {dropped or 'none'}. "
            f"Manifest and report.json (with file/line examples) in {out}.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser("ingest", help="read one dataset into a manifest")
    cmd.add_argument("--format", required=True, choices=FORMATS)
    cmd.add_argument("--root", required=True, help="dataset root (bdd100k: the download root "
                     "or its images/100k dir)")
    cmd.add_argument("--labels", help="bdd100k labels JSON")
    cmd.add_argument("--split", help="kitti: training (default); bdd100k: val (default)")
    cmd.add_argument("--textgt-root", type=Path, help="vkitti2 textgt tree, if separate")
    cmd.add_argument("--allow-symlinks-outside-root", action="store_true",
                     help="follow symlinks in the dataset tree that lead outside --root")
    cmd.add_argument("--allow-empty", action="store_true",
                     help="write the manifest even if no image is kept (default: exit 2)")
    cmd.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        result = ingest(args)
        if not args.allow_empty:
            check_not_empty(result.report)
        write_manifest(result, args.out)
    except (UserError, OSError) as err:  # OSError: the file system (disk full, permissions)
        print(f"error: {err}".replace("\n", " "), file=sys.stderr)
        return 2
    print(summary(result.report, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
