"""The unified manifest every reader produces: an images table, an objects table and a report.

Column dtypes are fixed here (and re-applied on read) so that every dataset's tables look the
same to the rest of the pipeline: strings are pandas "string" (missing = <NA>), nullable ints are
"Int64", flags are plain bool, coordinates float64.
"""

from __future__ import annotations

import json
import math
import os
import struct
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TypeVar

import pandas as pd
from tqdm import tqdm

from common.files import atomic_path, atomic_write_text
from data.errors import BadImageError, BadInputError, SkipLog

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
T = TypeVar("T")
# PIL's default decompression-bomb limit (~9459x9459): a header claiming more is a bad image
# here rather than a PIL exception (or a multi-GB decode) in a later stage.
MAX_IMAGE_PIXELS = 89_478_485
MANIFEST_FILES = ("images.parquet", "objects.parquet", "report.json")


@dataclass
class IngestResult:
    images: pd.DataFrame  # IMAGE_COLUMNS
    objects: pd.DataFrame  # OBJECT_COLUMNS
    report: dict = field(default_factory=dict)


def progress(items: Iterable[T], desc: str, unit: str = "img", total: int | None = None
             ) -> Iterable[T]:
    """A tqdm bar on terminals only (None = off when not a TTY: logs and captured output)."""
    return tqdm(items, desc=desc, unit=unit, total=total, leave=False, disable=None)


def typed_frame(columns: dict[str, list], dtypes: dict[str, str]) -> pd.DataFrame:
    """Build a DataFrame from column lists with the fixed dtypes (fast: no per-row work)."""
    return pd.DataFrame({name: pd.array(columns[name], dtype=dtypes[name]) for name in dtypes})


def apply_dtypes(frame: pd.DataFrame, dtypes: dict[str, str], source: str) -> pd.DataFrame:
    missing = [name for name in dtypes if name not in frame.columns]
    if missing:
        raise BadInputError(f"{source}: missing column(s) {missing}")
    return frame[list(dtypes)].astype(dtypes).reset_index(drop=True)


class TableBuilder:
    """Collects rows as plain tuples (one append per row) and builds typed tables once.

    `counts_as_occluded_vehicle` on each object feeds n_occluded_vehicles: the reader decides,
    because only it knows whether an ignore box is a crowd box (counts) or an ignored class /
    DontCare region (does not).
    """

    def __init__(self) -> None:
        self.image_rows: list[tuple] = []
        self.object_rows: list[tuple] = []
        self.occluded_per_image: Counter[str] = Counter()

    def add_image(self, image_id: str, path: str, width: int, height: int, dataset: str,
                  split: str, *, sequence: str | None = None, frame: int | None = None,
                  variation: str | None = None, camera: str | None = None,
                  weather: str | None = None, timeofday: str | None = None,
                  scene: str | None = None) -> None:
        self.image_rows.append((image_id, path, width, height, dataset, split, sequence, frame,
                                variation, camera, weather, timeofday, scene))

    def add_object(self, image_id: str, class_name: str | None, source_class: str,
                   box: tuple[float, float, float, float], occluded: bool,
                   occlusion_level: int | None, truncated: float, ignore: bool,
                   track_id: str | None, counts_as_occluded_vehicle: bool) -> None:
        self.object_rows.append((image_id, class_name, source_class, *box, occluded,
                                 occlusion_level, truncated, ignore, track_id))
        if counts_as_occluded_vehicle:
            self.occluded_per_image[image_id] += 1

    def build(self, log: SkipLog, dataset: str, **report_extra: object) -> IngestResult:
        image_columns = _transpose(self.image_rows, IMAGE_COLUMNS[:-1])
        counts = self.occluded_per_image
        image_columns["n_occluded_vehicles"] = [counts.get(i, 0) for i in image_columns["image_id"]]
        images = typed_frame(image_columns, IMAGE_DTYPES)
        objects = typed_frame(_transpose(self.object_rows, OBJECT_COLUMNS), OBJECT_DTYPES)
        extra = {
            "ignore_regions": int(objects["ignore"].sum()),
            "objects_per_class": {str(k): int(v) for k, v in
                                  sorted(objects["class_name"].value_counts().items())},
            **report_extra,
        }
        report = log.report(dataset, len(images), len(objects), **extra)
        return IngestResult(images, objects, report)


def _transpose(rows: list[tuple], columns: list[str]) -> dict[str, list]:
    if not rows:
        return {name: [] for name in columns}
    return {name: list(values) for name, values in zip(columns, zip(*rows, strict=True),
                                                       strict=True)}


def check_box(x1: float, y1: float, x2: float, y2: float, width: int, height: int,
              log: SkipLog, file: str | Path, line: int | None, where: str = ""
              ) -> tuple[float, float, float, float] | None:
    """Validate a box and clip it to the image; None (and a counted skip) when it is unusable.

    `where` (e.g. the image name) prefixes the skip detail when `line` alone cannot locate it.
    """
    problem = None
    if not (math.isfinite(x1) and math.isfinite(y1) and math.isfinite(x2) and math.isfinite(y2)):
        problem = "non_finite"
    elif x2 < x1 or y2 < y1:
        problem = "inverted_box"
    elif x2 == x1 or y2 == y1:
        problem = "zero_area"
    elif x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        problem = "outside_image"
    if problem is not None:
        prefix = f"{where}: " if where else ""
        log.skip(problem, file, line, f"{prefix}box x1={x1} y1={y1} x2={x2} y2={y2} in "
                                      f"{width}x{height}")
        return None
    clipped = (max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height)))
    if clipped != (x1, y1, x2, y2):
        log.clipped += 1
    return clipped


class PathDisplay:
    """Manifest `path` of a file: repo-relative when under the cwd, else absolute."""

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


def is_valid_text(text: str) -> bool:
    """False for text with lone surrogates, which cannot be written to the manifest: a file
    name that is not UTF-8 (os.listdir hands its bytes over as surrogates) or a JSON "\\ud800"."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def write_manifest(result: IngestResult, out_dir: Path) -> None:
    """Write images.parquet, objects.parquet, report.json; each appears whole or not at all."""
    out_dir = Path(out_dir)
    # Validate everything before writing anything, so a bad table never leaves a mixed manifest.
    images = apply_dtypes(result.images, IMAGE_DTYPES, "images")
    objects = apply_dtypes(result.objects, OBJECT_DTYPES, "objects")
    text = json.dumps(result.report, indent=2, sort_keys=True, default=_json_default) + "\n"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in (("images.parquet", images), ("objects.parquet", objects)):
        with atomic_path(out_dir / name) as tmp:
            frame.to_parquet(tmp, index=False)
    atomic_write_text(out_dir / "report.json", text)


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


# End-of-file markers: a file cut short (interrupted copy or download) lacks them. Checking the
# tail is the cheap part of a full decode that catches truncation.
_END_MARKERS = {"PNG": b"IEND\xaeB`\x82", "JPEG": b"\xff\xd9"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (they carry the size); C4, C8 and CC are other segments.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(handle: BinaryIO) -> tuple[int, int] | None:
    """Walk the JPEG segments up to the start-of-frame; None if the structure is broken."""
    handle.seek(2)
    while True:
        byte = handle.read(1)
        while byte == b"\xff":  # fill bytes before a marker
            byte = handle.read(1)
            if byte != b"\xff":
                break
        else:
            return None
        marker = byte[0] if byte else None
        if marker is None:
            return None
        if marker in (0x01, *range(0xD0, 0xD9)):  # standalone markers
            continue
        length_bytes = handle.read(2)
        if len(length_bytes) < 2:
            return None
        length = struct.unpack(">H", length_bytes)[0]
        if marker in _JPEG_SOF:
            frame = handle.read(5)
            if len(frame) < 5:
                return None
            height, width = struct.unpack(">HH", frame[1:5])
            return width, height
        if length < 2:
            return None
        handle.seek(length - 2, os.SEEK_CUR)


def image_size_or_skip(path: Path, log: SkipLog, line: int | None = None
                       ) -> tuple[int, int] | None:
    """(width, height) of an image, or None with a counted `bad_image` skip naming the file."""
    try:
        return read_image_size(path)
    except BadImageError as err:
        log.skip("bad_image", path, line, str(err))
        return None


def read_image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the image header, after checking the file is complete.

    PNG and JPEG headers are parsed directly (a KITTI-sized folder in well under a second);
    other formats go through PIL.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(32)
            if head.startswith(_PNG_SIGNATURE) and head[12:16] == b"IHDR":
                kind, size = "PNG", struct.unpack(">II", head[16:24])
            elif head.startswith(b"\xff\xd8"):
                kind, size = "JPEG", _jpeg_size(handle)
                if size is None:  # unusual segment layout: let PIL have a go
                    size = _pil_size(handle)[1]
            else:
                kind, size = _pil_size(handle)
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 1024))
            tail = handle.read()
    except FileNotFoundError as err:
        raise BadImageError(f"{path}: image file missing") from err
    except OSError as err:
        raise BadImageError(f"{path}: unreadable image ({err})") from err
    if size is None:
        raise BadImageError(f"{path}: unreadable {kind} header")
    marker = _END_MARKERS.get(kind)
    if marker is not None and marker not in tail:
        raise BadImageError(f"{path}: truncated {kind} (no end marker)")
    width, height = size
    if width <= 0 or height <= 0:
        raise BadImageError(f"{path}: image has size {width}x{height}")
    if width * height > MAX_IMAGE_PIXELS:
        raise BadImageError(f"{path}: header claims {width}x{height} pixels, over the limit of "
                            f"{MAX_IMAGE_PIXELS} (decompression-bomb guard)")
    return width, height


def _pil_size(handle: BinaryIO) -> tuple[str, tuple[int, int] | None]:
    from PIL import Image, UnidentifiedImageError

    handle.seek(0)
    try:
        with warnings.catch_warnings():
            # PIL warns between its limit and twice it, raises above: both are the same problem
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(handle) as image:
                return image.format or "unknown", image.size
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
        raise BadImageError(f"{getattr(handle, 'name', 'image')}: {err}") from None
    except (UnidentifiedImageError, ValueError, ImportError):
        # ImportError: once ultralytics is imported it wraps Image.open and, on a file PIL cannot
        # identify, tries to import an optional HEIF plugin instead of raising the PIL error
        return "unknown format", None


def select_images(result: IngestResult, image_ids: Iterable[str], note: str) -> IngestResult:
    """The subset of a result with these images (and their objects), in the original order.

    `note` says why (it is recorded in the report under "selection").
    """
    wanted = set(image_ids)
    images = result.images[result.images["image_id"].isin(wanted)].reset_index(drop=True)
    objects = result.objects[result.objects["image_id"].isin(wanted)].reset_index(drop=True)
    report = {**result.report, "images_kept": len(images), "objects_kept": len(objects),
              "selection": note}
    return IngestResult(images, objects, report)
