"""Read scored boxes: Scalabel frames, COCO results (a plain list or wrapped with its maps).

Accepted shapes (`python -m evaluation --help` and the README say the same to users):
* Scalabel / BDD100K: `[{"name", "labels": [{"category", "score", "box2d": {x1,y1,x2,y2}}]}]`
  or `{"frames": [...]}`. A label without box2d (e.g. poly2d) is a counted skip. Every listed
  frame counts as seen by the detector, with or without labels.
* A COCO results list `[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]`
  (pycocotools' loadRes input; ultralytics' save_json adds "file_name"). The frame is the
  result's `file_name`, else its image_id named by a COCO GT's images, else a string image_id
  itself; the class is its `category` (a name), else its category_id named by the user's
  `category_ids`, else by a COCO GT's categories. Such a list has entries only for frames with
  detections, so it does not say which frames the detector saw.
* The same results wrapped with their own maps: `{"images": [{"id", "file_name"}],
  "categories": [{"id", "name"}], "annotations": [...]}`; its images are the frames it lists.
A COCO [x, y, w, h] becomes x2 = x + w, or x + w - 1 in the `bdd` convention.

A missing or non-numeric score, NaN/inf or negative scores, x2 < x1, a missing category, an id
nothing names and duplicated frame names are errors naming the file, frame and field: a guess
would silently change AP. Frames absent from the GT are matched or counted later
(evaluation/coverage.py); `known_images` drops and counts them here instead.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from data.json_input import decode_document, read_json_text
from evaluation.coco import id_map
from evaluation.errors import EvalInputError

COLUMNS = ["image_id", "class_name", "x1", "y1", "x2", "y2", "score"]
_EXAMPLES = 5  # unmatched frame names listed in the report


class _Collector:
    """Column lists plus where each row came from, for error messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, list] = {c: [] for c in COLUMNS}
        self.where: list[str] = []
        self.skipped_no_box = 0

    def add(self, where: str, image_id: str, category: object, coords: list, score: object) -> None:
        if not isinstance(category, str) or not category:
            raise EvalInputError(f"{self.path}: {where}: 'category' missing or not a string")
        if score is None:
            raise EvalInputError(f"{self.path}: {where}: 'score' missing")
        for name, value in (("score", score), *zip(("x1", "y1", "x2", "y2"), coords,
                                                   strict=True)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise EvalInputError(f"{self.path}: {where}: {name!r} is {value!r}, not a number")
        for name, value in zip(COLUMNS, (image_id, category, *coords, score), strict=True):
            self.rows[name].append(value)
        self.where.append(where)

    def frame(self) -> pd.DataFrame:
        table = pd.DataFrame({"image_id": pd.array(self.rows["image_id"], dtype="string"),
                              "class_name": pd.array(self.rows["class_name"], dtype="string"),
                              **{c: np.asarray(self.rows[c], np.float64) for c in COLUMNS[2:]}})
        checks = [(~np.isfinite(table["score"]), "score is NaN or infinite"),
                  (table["score"] < 0, "score is negative")]
        for column in ("x1", "y1", "x2", "y2"):
            checks.append((~np.isfinite(table[column]), f"{column} is NaN or infinite"))
        checks += [(table["x2"] < table["x1"], "x2 < x1"), (table["y2"] < table["y1"], "y2 < y1")]
        for bad, problem in checks:
            bad = np.asarray(bad)
            if bad.any():
                first = int(np.flatnonzero(bad)[0])
                raise EvalInputError(f"{self.path}: {self.where[first]}: {problem} "
                                     f"({int(bad.sum())} prediction(s) in all)")
        return table


def _read_json(path: Path) -> object:
    """The decoded file; non-UTF-8 text and JSON decoder limits (nesting depth, integers of
    hundreds of digits) are one EvalInputError naming the file (data/json_input.py)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: predictions file not found")
    text = read_json_text(path, EvalInputError)
    if not text.strip():
        raise EvalInputError(f"{path}: empty file, expected Scalabel frames or COCO results")
    return decode_document(text, path, EvalInputError)


def _scalabel(frames: list, out: _Collector) -> list[str]:
    seen: set[str] = set()
    names: list[str] = []  # in file order: the set's order is not reproducible
    progress = tqdm(frames, desc="predictions", unit="frame", leave=False,
                    disable=len(frames) < 1000)
    for index, frame in enumerate(progress):
        name = frame.get("name") if isinstance(frame, dict) else None
        if not isinstance(name, str) or not name:
            raise EvalInputError(f"{out.path}: frame #{index}: 'name' missing or not a string")
        if name in seen:
            raise EvalInputError(f"{out.path}: frame #{index}: duplicated frame name {name!r}")
        seen.add(name)
        names.append(name)
        labels = frame.get("labels")
        if not isinstance(labels, list | None):
            raise EvalInputError(f"{out.path}: frame {name!r}: 'labels' is not a list")
        for label_index, label in enumerate(labels or []):
            where = f"frame {name!r} label #{label_index}"
            if not isinstance(label, dict):
                raise EvalInputError(f"{out.path}: {where}: not a JSON object")
            box = label.get("box2d")
            if box is None:
                out.skipped_no_box += 1
                continue
            if not isinstance(box, dict):
                raise EvalInputError(f"{out.path}: {where}: 'box2d' is not an object")
            coords = [box.get(k) for k in ("x1", "y1", "x2", "y2")]
            out.add(where, name, label.get("category"), coords, label.get("score"))
    return names


def _frame_name(result: dict, own_images: dict, gt_images: dict, where: str,
                path: Path) -> str:
    """The frame a result is for: its `file_name` (ultralytics writes it), else its image_id
    looked up in the file's own 'images' (an id it lacks is an error: the file contradicts
    itself), else in the COCO GT's images (an id the GT lacks is a frame not in the GT, counted
    by name), else the image_id itself when it is a string."""
    if isinstance(result.get("file_name"), str) and result["file_name"]:
        return result["file_name"]
    image_id = result.get("image_id")
    if not isinstance(image_id, int | str) or isinstance(image_id, bool):
        raise EvalInputError(f"{path}: {where}: image_id {image_id!r} is not a frame name or id")
    if own_images:
        if str(image_id) not in own_images:
            raise EvalInputError(f"{path}: {where}: image_id {image_id!r} is not in the "
                                 "file's 'images' map")
        return own_images[str(image_id)]
    if gt_images:
        return gt_images.get(str(image_id), str(image_id))
    if isinstance(image_id, str):
        return image_id
    raise EvalInputError(f"{path}: {where}: image_id {image_id!r} is a number, and nothing maps "
                         "it to a frame name: give a COCO instances file as --gt (its 'images' "
                         "name the ids), or results with 'file_name' or string image_ids")


def _category(result: dict, own: dict, maps: list[dict], where: str, path: Path) -> object:
    """A result's `category` name, else its category_id named by the file's own 'categories'
    (an id it lacks is an error), else by the first of `maps` that has it; an id none of them
    has is the class "category_id <id>", counted as not evaluated (pycocotools ignores results
    of categories its GT lacks). Without any map an integer id is an error."""
    if result.get("category") is not None or "category_id" not in result:
        return result.get("category")
    ident = result["category_id"]
    if own:
        if str(ident) not in own:
            raise EvalInputError(f"{path}: {where}: category_id {ident!r} is not in the file's "
                                 "'categories'")
        return own[str(ident)]
    for mapping in maps:
        if str(ident) in mapping:
            return mapping[str(ident)]
    if maps:
        return f"category_id {ident}"
    raise EvalInputError(f"{path}: {where}: category_id {ident!r} has no name: give "
                         "--category-ids (e.g. 0=car,1=truck: ultralytics writes the model's "
                         "class index), a COCO --gt whose 'categories' hold it, or the file's "
                         "own 'categories'")


def _coco(document: object, out: _Collector, convention: str, gt_images: dict,
          category_maps: list[dict]) -> list[str] | None:
    """Read COCO results; returns the frames the file lists (its 'images'), None for a plain
    results list, which has entries only for frames with detections."""
    if isinstance(document, dict):
        results = document.get("annotations", document.get("results"))
        own_images = id_map(document.get("images", {}), "file_name", out.path, "images")
        own_categories = id_map(document.get("categories", {}), "name", out.path, "categories")
    else:
        results, own_images, own_categories = document, {}, {}
    if not isinstance(results, list):
        raise EvalInputError(f"{out.path}: expected an 'annotations' list of COCO results")
    extra = 1.0 if convention == "bdd" else 0.0
    for index, result in enumerate(results):
        where = f"result #{index}"
        if not isinstance(result, dict):
            raise EvalInputError(f"{out.path}: {where}: not a JSON object")
        name = _frame_name(result, own_images, gt_images, where, out.path)
        category = _category(result, own_categories, category_maps, where, out.path)
        bbox = result.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in bbox):
            raise EvalInputError(f"{out.path}: {where}: 'bbox' must be [x, y, w, h] numbers")
        x, y, w, h = (float(v) for v in bbox)
        if w < 0 or h < 0 or math.isnan(w) or math.isnan(h):
            raise EvalInputError(f"{out.path}: {where}: 'bbox' width/height {w}, {h} < 0")
        out.add(f"{where} (image {name!r})", name, category,
                [x, y, x + w - extra, y + h - extra], result.get("score"))
    return list(own_images.values()) if own_images else None


def _is_coco(document: object) -> bool:
    if isinstance(document, dict):
        return "annotations" in document or "results" in document
    return bool(document) and isinstance(document[0], dict) and "bbox" in document[0]


class ListedFrames(tuple):
    """The frame names a predictions file lists, kept on its table as
    `table.attrs["frames"]` so that every caller of run_evaluation gets the coverage check.
    Immutable, so a deep copy (pandas copies attrs on every operation) shares it."""

    def __deepcopy__(self, memo: dict) -> ListedFrames:
        return self


def load_predictions(path: Path, known_images: set[str] | None = None, *,
                     convention: str = "coco", gt_images: dict[str, str] | None = None,
                     gt_categories: dict[str, str] | None = None,
                     category_ids: dict[str, str] | None = None) -> tuple[pd.DataFrame, dict]:
    """Predictions table (image_id, class_name, x1, y1, x2, y2, score) and a report of skips.

    `table.attrs["frames"]` holds the frames the file lists (ListedFrames), or None for a plain
    COCO results list, which lists only frames with detections. `convention` only matters for
    COCO [x, y, w, h] input; `gt_images` / `gt_categories` (a COCO GT's {id: name}) and
    `category_ids` (the user's, first) name a results list's integer ids (module docstring).
    """
    path = Path(path)
    document = _read_json(path)
    out = _Collector(path)
    if isinstance(document, dict) and "frames" in document:
        document = document["frames"]
    if not isinstance(document, list | dict):
        raise EvalInputError(f"{path}: expected a list of frames, {{'frames': [...]}} or COCO "
                             "results")
    if _is_coco(document):
        maps = [m for m in (category_ids, gt_categories) if m]
        fmt, frames = "coco", _coco(document, out, convention, gt_images or {}, maps)
    elif isinstance(document, list):
        fmt, frames = "scalabel", _scalabel(document, out)
    else:
        raise EvalInputError(f"{path}: JSON object without 'frames' or 'annotations'")
    table = out.frame()
    n_frames = len(frames) if frames is not None else int(table["image_id"].nunique())
    report = {"file": str(path), "format": fmt, "n_frames": n_frames,
              "frames_listed": frames is not None, "n_boxes_read": len(table),
              "skipped": {"no_box2d": out.skipped_no_box}}
    if known_images is not None:
        unknown = ~table["image_id"].isin(known_images).to_numpy()
        names = sorted(set(table["image_id"][unknown]))
        report["skipped"]["unknown_frame"] = int(unknown.sum())
        report["unmatched_prediction_frames"] = len(names)
        report["unmatched_frame_examples"] = names[:_EXAMPLES]
        table = table[~unknown].reset_index(drop=True)
        frames = None if frames is None else [f for f in frames if f in known_images]
    table.attrs["frames"] = None if frames is None else ListedFrames(frames)
    report["n_predictions"] = len(table)
    return table, report
