"""`--gt` of `python -m evaluation`: a BDD100K / Scalabel labels file or a COCO instances file.

The format is told by the file: a JSON list or {"frames": [...]} is Scalabel (read by the data
package, with the BDD100K toolkit's renames and ignored classes); an object with "images",
"annotations" and "categories" is COCO instances (evaluation/coco.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from data.bdd100k import BDD_CLASSES, frames_to_tables, load_frames
from data.json_input import decode_document, read_json_text
from evaluation.coco import is_coco_instances, read_coco_instances
from evaluation.errors import EvalInputError


@dataclass
class GroundTruth:
    images: pd.DataFrame  # image_id (the frame name), n_occluded_vehicles, ...
    objects: pd.DataFrame  # image_id, class_name, x1 y1 x2 y2, ignore, occluded
    report: dict  # the reader's: "skipped" ({reason: {count, examples}}) and counts
    format: str  # "scalabel" | "coco"
    classes: list[str]  # every class the file can hold: what --categories may name
    image_names: dict[str, str]  # COCO: {str(id): file_name}, to name results' image_id
    category_names: dict[str, str]  # COCO: {str(id): name}, to name results' category_id


def _first_char(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(4096)
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    return chr(text[0]) if text else ""


def load_ground_truth(path: Path, classes: list[str], convention: str) -> GroundTruth:
    """The GT tables of `path` with `classes` evaluated; --categories checked against the file's
    classes (a name that can never match a GT box is an error, not an "n/a" row)."""
    path = Path(path)
    if not path.is_file():
        raise EvalInputError(f"{path}: ground-truth file not found")
    document = None
    if _first_char(path) == "{":
        document = decode_document(read_json_text(path, EvalInputError), path, EvalInputError)
    if is_coco_instances(document):
        images, objects, report = read_coco_instances(document, path, classes, convention)
        known = sorted(set(report["categories"].values()))
        check_categories(classes, known, path)
        return GroundTruth(images, objects, report, "coco", known, report["images"],
                           report["categories"])
    if isinstance(document, dict) and not isinstance(document.get("frames"), list):
        raise EvalInputError(f"{path}: a JSON object with neither a 'frames' list (Scalabel) "
                             "nor 'images', 'annotations' and 'categories' (COCO instances)")
    check_categories(classes, sorted(BDD_CLASSES), path)
    frames = document["frames"] if document is not None else load_frames(path)
    if not frames:
        raise EvalInputError(f"{path}: no frames")
    tables = frames_to_tables(frames, {c: c for c in classes}, split="val", source=str(path))
    return GroundTruth(tables.images, tables.objects, tables.report, "scalabel",
                       sorted(BDD_CLASSES), {}, {})


def check_categories(classes: list[str], known: list[str], path: Path) -> None:
    unknown = [c for c in classes if c not in known]
    if not unknown:
        return
    hints = [f"{c!r} is {k!r} in it" for c in unknown for k in known
             if c.casefold() == k.casefold()]
    raise EvalInputError(f"--categories: {', '.join(map(repr, unknown))} not a class of {path} "
                         f"(its classes: {', '.join(known)})"
                         + (f"; {'; '.join(hints)}" if hints else ""))
