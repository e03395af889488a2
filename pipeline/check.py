"""`python -m pipeline.check [--config params.yaml]`: what a run on the real data would read.

Before any stage runs, reads `data.real.*` with the ingest stage's own readers (the same
functions, pipeline/ingest.py, so the check and the run cannot disagree), one dataset at a time,
and prints per dataset: the root, frames and label files found, boxes kept, what was skipped (by
reason, the first files named), which vKITTI2 scenes, variations and cameras are on disk and which
the params ask for but are missing, and whether a BDD100K labels file belongs to another split.
Exit 0: a run would read all of it; 1: it would fail or read the wrong frames (each problem one
line); 2: bad params. Nothing is written.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import UserError
from common.weathers import BDD_WEATHER
from data.bdd100k import find_image_dir, load_frames
from data.manifest import IngestResult
from data.vkitti2 import inventory
from pipeline.ingest import (
    BDD_SPLITS,
    bdd_labels,
    read_bdd_split,
    read_kitti,
    read_vkitti2_selection,
)
from pipeline.params import Params, load_params

EXAMPLES = 3  # files named per skip reason: enough to see the pattern


@dataclass
class DatasetCheck:
    """One dataset (a BDD100K split counts as one) as a run would read it."""

    name: str
    where: str
    result: IngestResult | None = None
    found: list[str] = field(default_factory=list)  # what is on disk, beyond the counts
    problems: list[str] = field(default_factory=list)  # the run would fail or read wrong frames
    warnings: list[str] = field(default_factory=list)  # it runs, but look

    @property
    def frames(self) -> int:
        return 0 if self.result is None else len(self.result.images)


@dataclass
class DataCheck:
    params: Params
    datasets: dict[str, DatasetCheck]

    @property
    def ok(self) -> bool:
        return not any(d.problems for d in self.datasets.values())

    def result(self, name: str) -> IngestResult | None:
        return self.datasets[name].result


def check_real_data(params: Params) -> DataCheck:
    """Read every `data.real` dataset as `ingest` would; problems are collected, not raised."""
    roots = params.data.real
    checks = {
        "kitti": _read("kitti", f"{roots.kitti_root} ({roots.kitti_format} layout)",
                       lambda: read_kitti(params, roots)),
        "vkitti2": _check_vkitti2(params),
    }
    for split in BDD_SPLITS:
        checks[f"bdd100k {split}"] = _check_bdd(params, split)
    if Path(roots.bdd100k_labels_train) == Path(roots.bdd100k_labels_val):
        checks["bdd100k val"].problems.append(
            f"data.real.bdd100k_labels_train and _val are the same file, "
            f"{roots.bdd100k_labels_val}: evaluating on training frames")
    return DataCheck(params, checks)


def _read(name: str, where: str, read: Callable[[], IngestResult]) -> DatasetCheck:
    check = DatasetCheck(name, where)
    try:
        check.result = read()
    except (UserError, OSError) as err:  # the readers' one-line errors: the run would stop
        check.problems.append(str(err).replace("\n", " "))
        return check
    if not check.frames:
        skipped = check.result.report.get("skipped_total", 0)
        check.problems.append(f"no frame kept ({skipped} skipped, above)" if skipped else
                              "no frame found")
    return check


def _check_vkitti2(params: Params) -> DatasetCheck:
    roots, selection = params.data.real, params.data.vkitti2
    textgt = Path(roots.vkitti2_textgt_root) if roots.vkitti2_textgt_root else None
    where = roots.vkitti2_root + (f" (textgt: {textgt})" if textgt else "")
    tree = inventory(Path(roots.vkitti2_root), textgt)
    missing = _missing_vkitti2(tree, selection.scenes, selection.variations, selection.cameras)
    if missing:  # the reader stops at the first; list them all
        check = DatasetCheck("vkitti2", where)
        check.problems += missing
    else:
        check = _read("vkitti2", where, lambda: read_vkitti2_selection(params, roots))
    check.found.append(_describe_tree(tree))
    return check


def _missing_vkitti2(tree: dict[str, dict[str, dict]], scenes: list[str] | None,
                     variations: list[str], cameras: list[str]) -> list[str]:
    if not tree:
        return ["no SceneXX directory (the vKITTI2 rgb tree: SceneXX/<variation>/frames/rgb/"
                "Camera_k/rgb_00000.jpg)"]
    wanted = scenes or sorted(tree)
    missing = [f"scene {s} (data.vkitti2.scenes) not found" for s in wanted if s not in tree]
    for scene in [s for s in wanted if s in tree]:
        for variation in variations:
            held = tree[scene].get(variation)
            if held is None:
                missing.append(f"{scene}/{variation}: no such variation directory")
                continue
            absent = [c for c in cameras if c not in held["cameras"]]
            if absent:
                missing.append(f"{scene}/{variation}/frames/rgb: no {', '.join(absent)}")
            if not held["textgt"]:
                missing.append(f"{scene}/{variation}: no bbox.txt and info.txt (the textgt "
                               "archive; data.real.vkitti2_textgt_root if it is a separate tree)")
    return missing


def _describe_tree(tree: dict[str, dict[str, dict]]) -> str:
    variations = sorted({v for scene in tree.values() for v in scene})
    cameras = sorted({c for scene in tree.values() for v in scene.values() for c in v["cameras"]})
    return (f"on disk: {len(tree)} scene(s) ({_short(sorted(tree))}); variations "
            f"{', '.join(variations) or 'none'}; cameras {', '.join(cameras) or 'none'}")


def _check_bdd(params: Params, split: str) -> DatasetCheck:
    roots = params.data.real
    labels = Path(bdd_labels(roots, split))
    check = _read(f"bdd100k {split}", f"{labels} -> {roots.bdd100k_images}",
                  lambda: read_bdd_split(params, roots, split))
    if check.result is None:
        return check
    report = check.result.report
    check.found.append(f"labels file: {report.get('frames_read', 0)} frames listed")
    if report["skipped"].get("missing_image"):
        wrong = _other_split(labels, Path(roots.bdd100k_images), split)
        if wrong:
            check.problems.append(wrong)
    if split == "train":
        check.warnings += _weather_gaps(check.result, params)
    return check


def _other_split(labels: Path, images: Path, split: str) -> str | None:
    """If the frames a labels file names are in the other split's image directory, it is that
    split's file (det_train.json given as val): the run would read the wrong frames."""
    other = next(s for s in BDD_SPLITS if s != split)
    try:
        names = [f.get("name") for f in load_frames(labels) if isinstance(f, dict)]
        here = set(os.listdir(find_image_dir(images, split)))
        there = set(os.listdir(find_image_dir(images, other)))
    except (UserError, OSError):
        return None
    in_other = sum(1 for n in names if n not in here and n in there)
    if not in_other:
        return None
    return (f"{labels} is a {other} labels file: {in_other} of its {len(names)} frames are in "
            f"images/100k/{other}, not {split}; set data.real.bdd100k_labels_{split} to the "
            f"{split} file")


def _weather_gaps(train: IngestResult, params: Params) -> list[str]:
    counts = Counter(train.images["weather"].dropna())
    gaps = [w for w in params.weathers if not counts.get(BDD_WEATHER[w])]
    if not gaps:
        return []
    return [f"no BDD100K train frame has weather {', '.join(BDD_WEATHER[w] for w in gaps)}: "
            f"translator_train@{', @'.join(gaps)} would have no target frames (a translator "
            "that learns the look stops there)"]


def _skips(report: dict) -> str:
    """'missing_label 2 (e.g. a.png: no label_2/a.txt; ...)' per skip reason."""
    parts = []
    for reason, entry in report.get("skipped", {}).items():
        examples = "; ".join(f"{Path(e['file']).name}" + (f":{e['line']}" if e.get("line") else "")
                             + (f": {e['detail']}" if e.get("detail") else "")
                             for e in entry["examples"][:EXAMPLES])
        parts.append(f"{reason} {entry['count']} (e.g. {examples})")
    return ", ".join(parts)


def _short(names: list[str], limit: int = 6) -> str:
    return ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit
                                       else "")


def format_check(check: DataCheck) -> str:
    """The printed report: one block per dataset, then what a run would read, then the verdict."""
    lines = []
    if check.params.data.source != "real":
        lines.append(f"note: data.source is {check.params.data.source}: a run reads the sample "
                     "world; this checks data.real anyway")
    for dataset in check.datasets.values():
        lines.append(f"{dataset.name}: {dataset.where}")
        lines += [f"  {text}" for text in dataset.found]
        if dataset.result is not None:
            lines.append(f"  {_counts(dataset)}")
            skips = _skips(dataset.result.report)
            lines.append(f"  skipped: {skips or 'nothing'}")
        lines += [f"  PROBLEM: {text}" for text in dataset.problems]
        lines += [f"  warning: {text}" for text in dataset.warnings]
    lines.append("a run would read: " + ", ".join(
        f"{d.name} {d.frames} frames" for d in check.datasets.values()))
    problems = sum(len(d.problems) for d in check.datasets.values())
    lines.append("ok: every dataset reads" if check.ok else
                 f"{problems} problem(s): the run would fail or read the wrong frames")
    return "\n".join(lines)


def _counts(dataset: DatasetCheck) -> str:
    result = dataset.result
    assert result is not None
    report, images, objects = result.report, result.images, result.objects
    boxes = objects.loc[~objects["ignore"], "class_name"].value_counts()
    per_class = ", ".join(f"{name} {count}" for name, count in sorted(boxes.items()))
    text = (f"{len(images)} frames, {report.get('files_read', 0)} label file(s) read, "
            f"{int(boxes.sum())} boxes ({per_class or 'none'}), "
            f"{int(objects['ignore'].sum())} ignore regions")
    if dataset.name == "vkitti2" and len(images):
        groups = images.groupby(["variation", "camera"]).size()
        text += "; " + ", ".join(f"{v}/{c} {n}" for (v, c), n in groups.items())
    if dataset.name.startswith("bdd100k") and len(images):
        weathers = images["weather"].fillna("none").value_counts()
        text += "; weather " + ", ".join(f"{w} {n}" for w, n in sorted(weathers.items()))
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.check",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=Path("params.yaml"),
                        help="params.yaml whose data.real.* to check (default: ./params.yaml)")
    args = parser.parse_args(argv)
    try:
        check = check_real_data(load_params(args.config))
    except UserError as err:
        print(f"error: {err}".replace("\n", " "), file=sys.stderr)
        return 2
    print(format_check(check))
    return 0 if check.ok else 1


if __name__ == "__main__":
    sys.exit(main())
