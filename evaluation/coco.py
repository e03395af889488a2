"""COCO instances files as ground truth, read into the evaluator's images and objects tables.

    {"images": [{"id", "file_name", ...}], "categories": [{"id", "name"}],
     "annotations": [{"image_id", "category_id", "bbox": [x, y, w, h], "iscrowd"?}]}

As pycocotools reads it: `iscrowd` 1 is an ignore (crowd) region of its category (an `ignore`
key alone changes nothing there, so nothing here either); annotations of classes that are not
evaluated are dropped and counted. A frame is named by its `file_name` (so Scalabel predictions
match it by name) and the images keep pycocotools' order, ascending `id`, in the `coco_order`
column: that order breaks score ties across images, so it must be the same for equal AP.

Optional, read when present: an annotation's `occluded` flag (or `attributes.occluded`) counts
towards its image's occlusion bucket; an image's `weather` / `timeofday` (or under
`attributes`) gives its attribute buckets. Without them every image is in occlusion bucket 0
and weather "unknown".

A malformed entry is an error naming the file, the list and the entry's index: a COCO file
comes from a converter, and a guess would silently change AP.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation.errors import EvalInputError

_BUCKET_ATTRIBUTES = ("weather", "timeofday")


def is_coco_instances(document: object) -> bool:
    return isinstance(document, dict) and {"images", "annotations", "categories"} <= set(document)


def _is_id(value: object) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def id_map(entries: object, key: str, path: Path, field: str) -> dict[str, str]:
    """COCO `images` / `categories` as {str(id): file_name / name}; a plain {id: name} dict is
    taken as it is. Ids are ints or strings (str() of anything else could merge two ids)."""
    if isinstance(entries, dict):
        return {str(k): v for k, v in entries.items()}
    if not isinstance(entries, list):
        raise EvalInputError(f"{path}: '{field}' must be a list of {{'id', '{key}'}}")
    mapping: dict[str, str] = {}
    for index, entry in enumerate(entries):
        ident = entry.get("id") if isinstance(entry, dict) else None
        value = entry.get(key) if isinstance(entry, dict) else None
        if not _is_id(ident) or not isinstance(value, str) or not value:
            raise EvalInputError(f"{path}: '{field}' #{index}: needs an integer or string 'id' "
                                 f"and a non-empty string '{key}', got {entry!r}")
        if str(ident) in mapping:
            raise EvalInputError(f"{path}: '{field}' #{index}: id {ident!r} appears twice")
        mapping[str(ident)] = value
    duplicated = pd.Series(list(mapping.values()))
    duplicated = duplicated[duplicated.duplicated()]
    if len(duplicated):
        raise EvalInputError(f"{path}: '{field}': {key} {duplicated.iloc[0]!r} appears twice")
    return mapping


def _sort_key(ident: str, all_int: bool) -> int | str:
    return int(ident) if all_int else ident


def _attribute(entry: dict, key: str) -> object:
    attributes = entry.get("attributes")
    value = entry.get(key)
    if value is None and isinstance(attributes, dict):
        value = attributes.get(key)
    return value


def read_coco_instances(document: dict, path: Path, classes: list[str],
                        convention: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(images, objects, report) of a COCO instances document; see the module docstring.

    report: {"format": "coco", "categories": {id: name}, "images": {id: file_name},
    "skipped": {}, "dropped_by_class": {name: annotations}}; bbox [x, y, w, h] becomes x2 = x + w
    (x + w - 1 in the `bdd` convention, which measures it back as w).
    """
    images = id_map(document["images"], "file_name", path, "images")
    categories = id_map(document["categories"], "name", path, "categories")
    if not images:
        raise EvalInputError(f"{path}: 'images' is empty: no frames to evaluate")
    annotations = document["annotations"]
    if not isinstance(annotations, list):
        raise EvalInputError(f"{path}: 'annotations' must be a list")
    extra = 1.0 if convention == "bdd" else 0.0
    evaluated = set(classes)
    rows: list[tuple] = []
    occluded_per_image: dict[str, int] = dict.fromkeys(images, 0)
    dropped: Counter[str] = Counter()
    for index, ann in enumerate(annotations):
        where = f"{path}: annotation #{index}"
        if not isinstance(ann, dict):
            raise EvalInputError(f"{where}: not a JSON object")
        image, category = ann.get("image_id"), ann.get("category_id")
        if not _is_id(image) or str(image) not in images:
            raise EvalInputError(f"{where}: image_id {image!r} is not an id of 'images'")
        if not _is_id(category) or str(category) not in categories:
            raise EvalInputError(f"{where}: category_id {category!r} is not an id of "
                                 "'categories'")
        bbox = ann.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)
                for v in bbox):
            raise EvalInputError(f"{where}: 'bbox' must be 4 finite numbers [x, y, w, h]")
        x, y, w, h = (float(v) for v in bbox)
        if w < 0 or h < 0:
            raise EvalInputError(f"{where}: 'bbox' width/height {w}, {h} < 0")
        crowd, occluded = ann.get("iscrowd", 0), _attribute(ann, "occluded")
        if crowd not in (0, 1) or occluded not in (None, True, False):
            raise EvalInputError(f"{where}: 'iscrowd' must be 0 or 1 and 'occluded' a boolean")
        name = categories[str(category)]
        if name not in evaluated:
            dropped[name] += 1
            continue
        if occluded and not crowd:
            occluded_per_image[str(image)] += 1
        rows.append((images[str(image)], name, x, y, x + w - extra, y + h - extra, bool(crowd),
                     bool(occluded)))
    objects = pd.DataFrame(rows, columns=["image_id", "class_name", "x1", "y1", "x2", "y2",
                                          "ignore", "occluded"])
    objects = objects.astype({"image_id": "string", "class_name": "string", "ignore": bool,
                              "occluded": bool})
    ids = list(images)
    all_int = all(i.lstrip("-").isdigit() for i in ids)
    order = sorted(range(len(ids)), key=lambda k: _sort_key(ids[k], all_int))
    rank = np.empty(len(ids), np.int64)
    rank[order] = np.arange(len(ids))
    entries = {str(e.get("id")): e for e in document["images"] if isinstance(e, dict)} \
        if isinstance(document["images"], list) else {}
    table = pd.DataFrame({
        "image_id": pd.array([images[i] for i in ids], dtype="string"),
        "coco_order": rank,
        "n_occluded_vehicles": [occluded_per_image[i] for i in ids],
        **{column: pd.array([_text(_attribute(entries.get(i, {}), column)) for i in ids],
                            dtype="string") for column in _BUCKET_ATTRIBUTES},
    })
    report = {"format": "coco", "categories": categories, "images": images,
              "skipped": {}, "dropped_by_class": dict(sorted(dropped.items()))}
    return table, objects, report


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
