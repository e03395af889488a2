"""The unified manifest every reader produces: an images table, an objects table and a report.

Column dtypes are fixed here (and re-applied on read) so that every dataset's tables look the
same to the rest of the pipeline: strings are pandas "string" (missing = <NA>), nullable ints are
"Int64", flags are plain bool, coordinates float64.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from data.errors import BadInputError, SkipLog

IMAGE_COLUMNS = ["image_id", "path", "width", "height", "dataset", "split", "sequence", "frame",
                 "variation", "camera", "weather", "timeofday", "scene", "n_occluded_vehicles"]
OBJECT_COLUMNS = ["image_id", "class_name", "source_class", "x1", "y1", "x2", "y2", "occluded",
                  "occlusion_level", "truncated", "ignore", "track_id"]

IMAGE_DTYPES = {
    "image_id": "string", "path": "string", "width": "int64", "height": "int64",
    "dataset": "string", "split": "string", "sequence": "string", "frame": "Int64",
    "variation": "string", "camera": "string", "weather": "string", "timeofday": "string",
    "scene": "string", "n_occluded_vehicles": "int64",
}
OBJECT_DTYPES = {
    "image_id": "string", "class_name": "string", "source_class": "string",
    "x1": "float64", "y1": "float64", "x2": "float64", "y2": "float64",
    "occluded": "bool", "occlusion_level": "Int64", "truncated": "float64", "ignore": "bool",
    "track_id": "string",
}
MANIFEST_FILES = ("images.parquet", "objects.parquet", "report.json")


@dataclass
class IngestResult:
    images: pd.DataFrame  # IMAGE_COLUMNS
    objects: pd.DataFrame  # OBJECT_COLUMNS
    report: dict = field(default_factory=dict)


def typed_frame(columns: dict[str, list], dtypes: dict[str, str]) -> pd.DataFrame:
    """Build a DataFrame from column lists with the fixed dtypes (fast: no per-row work)."""
    return pd.DataFrame({name: pd.array(columns[name], dtype=dtypes[name]) for name in dtypes})


def apply_dtypes(frame: pd.DataFrame, dtypes: dict[str, str], source: str) -> pd.DataFrame:
    missing = [name for name in dtypes if name not in frame.columns]
    if missing:
        raise BadInputError(f"{source}: missing column(s) {missing}")
    return frame[list(dtypes)].astype(dtypes).reset_index(drop=True)


def empty_result(dataset: str) -> IngestResult:
    images = typed_frame({c: [] for c in IMAGE_COLUMNS}, IMAGE_DTYPES)
    objects = typed_frame({c: [] for c in OBJECT_COLUMNS}, OBJECT_DTYPES)
    return IngestResult(images, objects, {"dataset": dataset})


class TableBuilder:
    """Collects rows as plain column lists (one append per field) and builds typed tables once.

    `counts_as_occluded_vehicle` on each object feeds n_occluded_vehicles: the reader decides,
    because only it knows whether an ignore box is a crowd box (counts) or an ignored class /
    DontCare region (does not).
    """

    def __init__(self) -> None:
        self.images: dict[str, list] = {c: [] for c in IMAGE_COLUMNS}
        self.objects: dict[str, list] = {c: [] for c in OBJECT_COLUMNS}
        self.occluded_per_image: Counter[str] = Counter()

    def add_image(self, image_id: str, path: str, width: int, height: int, dataset: str,
                  split: str, *, sequence: str | None = None, frame: int | None = None,
                  variation: str | None = None, camera: str | None = None,
                  weather: str | None = None, timeofday: str | None = None,
                  scene: str | None = None) -> None:
        row = (image_id, path, width, height, dataset, split, sequence, frame, variation, camera,
               weather, timeofday, scene, 0)
        for name, value in zip(IMAGE_COLUMNS, row, strict=True):
            self.images[name].append(value)

    def add_object(self, image_id: str, class_name: str | None, source_class: str,
                   box: tuple[float, float, float, float], occluded: bool,
                   occlusion_level: int | None, truncated: float, ignore: bool,
                   track_id: str | None, counts_as_occluded_vehicle: bool) -> None:
        objects = self.objects
        objects["image_id"].append(image_id)
        objects["class_name"].append(class_name)
        objects["source_class"].append(source_class)
        objects["x1"].append(box[0])
        objects["y1"].append(box[1])
        objects["x2"].append(box[2])
        objects["y2"].append(box[3])
        objects["occluded"].append(occluded)
        objects["occlusion_level"].append(occlusion_level)
        objects["truncated"].append(truncated)
        objects["ignore"].append(ignore)
        objects["track_id"].append(track_id)
        if counts_as_occluded_vehicle:
            self.occluded_per_image[image_id] += 1

    def build(self, log: SkipLog, dataset: str, **report_extra: object) -> IngestResult:
        counts = self.occluded_per_image
        self.images["n_occluded_vehicles"] = [counts.get(i, 0) for i in self.images["image_id"]]
        images = typed_frame(self.images, IMAGE_DTYPES)
        objects = typed_frame(self.objects, OBJECT_DTYPES)
        extra = {
            "ignore_regions": int(objects["ignore"].sum()),
            "objects_per_class": {str(k): int(v) for k, v in
                                  sorted(objects["class_name"].value_counts().items())},
            **report_extra,
        }
        report = log.report(dataset, len(images), len(objects), **extra)
        return IngestResult(images, objects, report)


def check_box(x1: float, y1: float, x2: float, y2: float, width: int, height: int,
              log: SkipLog, file: str | Path, line: int | None
              ) -> tuple[float, float, float, float] | None:
    """Validate a box and clip it to the image; None (and a counted skip) when it is unusable."""
    if not (math.isfinite(x1) and math.isfinite(y1) and math.isfinite(x2) and math.isfinite(y2)):
        log.skip("non_finite", file, line, f"box {x1} {y1} {x2} {y2}")
        return None
    if x2 < x1 or y2 < y1:
        log.skip("inverted_box", file, line, f"x1={x1} y1={y1} x2={x2} y2={y2}")
        return None
    if x2 == x1 or y2 == y1:
        log.skip("zero_area", file, line, f"x1={x1} y1={y1} x2={x2} y2={y2}")
        return None
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        log.skip("outside_image", file, line,
                 f"box {x1} {y1} {x2} {y2} outside {width}x{height}")
        return None
    clipped = (max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height)))
    if clipped != (x1, y1, x2, y2):
        log.clipped += 1
    return clipped


class PathDisplay:
    """Turns absolute file paths into manifest `path`s: repo-relative under the cwd, else absolute."""

    def __init__(self) -> None:
        self.cwd = os.path.abspath(os.getcwd()) + os.sep

    def __call__(self, path: str | Path) -> str:
        absolute = os.path.abspath(path)
        return absolute[len(self.cwd):] if absolute.startswith(self.cwd) else absolute


def is_safe_relative(name: str) -> bool:
    """A file name from a label file may only point inside its dataset directory."""
    if not name or name.startswith(("/", "\\")) or "\x00" in name or (len(name) > 1
                                                                        and name[1] == ":"):
        return False
    return all(part not in ("..", "") for part in name.replace("\\", "/").split("/"))


def _atomic_write_bytes(path: Path, payload: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(payload)
    os.replace(tmp, path)


def write_manifest(result: IngestResult, out_dir: Path) -> None:
    """Write images.parquet, objects.parquet and report.json; each file appears whole or not at all."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame, dtypes in (("images.parquet", result.images, IMAGE_DTYPES),
                                ("objects.parquet", result.objects, OBJECT_DTYPES)):
        frame = apply_dtypes(frame, dtypes, name)
        tmp = out_dir / f".{name}.tmp-{os.getpid()}"
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, out_dir / name)
    text = json.dumps(result.report, indent=2, sort_keys=True, default=_json_default) + "\n"
    _atomic_write_bytes(out_dir / "report.json", text.encode("utf-8"))


def _json_default(value: object) -> object:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"report value {value!r} is not JSON serialisable")


def read_manifest(out_dir: Path) -> IngestResult:
    out_dir = Path(out_dir)
    for name in MANIFEST_FILES:
        if not (out_dir / name).is_file():
            raise BadInputError(f"{out_dir / name}: manifest file missing (run ingest first)")
    images = apply_dtypes(pd.read_parquet(out_dir / "images.parquet"), IMAGE_DTYPES,
                          str(out_dir / "images.parquet"))
    objects = apply_dtypes(pd.read_parquet(out_dir / "objects.parquet"), OBJECT_DTYPES,
                           str(out_dir / "objects.parquet"))
    try:
        report = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BadInputError(f"{out_dir / 'report.json'}: not valid JSON ({err})") from err
    return IngestResult(images, objects, report)


class BadImageError(BadInputError):
    """An image file that is missing, unreadable or truncated (readers count it as a skip)."""


# End-of-file markers: a file cut short (interrupted copy or download) lacks them. Checking the
# tail is the cheap part of a full decode that catches truncation.
_END_MARKERS = {"PNG": b"IEND\xaeB`\x82", "JPEG": b"\xff\xd9"}


def read_image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the image header, after checking the file is complete."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as handle:
            with Image.open(handle) as image:
                width, height, kind = image.width, image.height, image.format
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 1024))
            tail = handle.read()
    except FileNotFoundError as err:
        raise BadImageError(f"{path}: image file missing") from err
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise BadImageError(f"{path}: unreadable image ({err})") from err
    marker = _END_MARKERS.get(kind or "")
    if marker is not None and marker not in tail:
        raise BadImageError(f"{path}: truncated {kind} (no end marker)")
    if width <= 0 or height <= 0:
        raise BadImageError(f"{path}: image has size {width}x{height}")
    return width, height
