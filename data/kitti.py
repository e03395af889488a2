"""KITTI object detection (training/label_2 + image_2) and tracking (label_02 + image_02) readers.

Detection lines have 15 fields: type truncated occluded alpha x1 y1 x2 y2 h w l x y z ry.
Tracking lines have 17: frame track_id, then the same 15 (truncation there is an int level 0-2).
Occlusion level 0 = visible, 1 = partly, 2 = largely occluded, 3 = unknown; 1-2 -> occluded.
DontCare boxes become ignore regions for every class (class_name None).
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from data.errors import BadInputError, SkipLog
from data.manifest import (
    IngestResult,
    PathDisplay,
    TableBuilder,
    check_box,
    image_size_or_skip,
    is_valid_text,
    progress,
)
from data.numbers import is_frame_number, plain_float, plain_int
from data.roots import DatasetRoot

KITTI_CLASSES = frozenset({"Car", "Van", "Truck", "Pedestrian", "Person_sitting", "Cyclist",
                           "Tram", "Misc", "DontCare", "Person"})
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DETECTION_FIELDS = 15
TRACKING_FIELDS = 17


def read_label_lines(path: Path, log: SkipLog) -> list[str] | None:
    """Lines of a label file, or None (with a counted skip) if the file is unusable."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        log.skip("unreadable_label_file", path, None, str(err))
        return None
    log.files_read += 1
    try:
        text = raw.decode("utf-8-sig")  # an editor's byte-order mark would be part of `Car`
    except UnicodeDecodeError as err:
        log.skip("non_utf8", path, None, str(err))
        return None
    if not text.strip():
        # A real KITTI label file always has at least one line (DontCare at minimum), so an
        # empty one is a failed copy, not an image without objects.
        log.skip("empty_label_file", path, None, "label file is empty")
        return None
    return text.splitlines()


def _split_dirs(root: Path, split: str, images: str, labels: str, what: str,
                allow_outside_root: bool) -> tuple[DatasetRoot, Path, Path]:
    """The root's guard and the split's image and label directories, both checked inside it."""
    guard = DatasetRoot(Path(root), allow_outside_root)
    base = _find_split_dir(Path(root), split, labels)
    image_dir, label_dir = base / images, base / labels
    if not image_dir.is_dir():
        raise BadInputError(f"{image_dir}: {what} missing")
    guard.check_dir(image_dir)
    guard.check_dir(label_dir)
    return guard, image_dir, label_dir


def field_rows(lines: list[str], expected: int, path: Path, log: SkipLog
               ) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank line with `expected` whitespace-separated fields;
    any other line is a counted `wrong_field_count` skip."""
    for number, text in enumerate(lines, start=1):
        fields = text.split()
        if not fields:
            continue
        if len(fields) != expected:
            log.skip("wrong_field_count", path, number,
                     f"{len(fields)} fields, expected {expected}")
            continue
        yield number, fields


def list_files(directory: Path, suffixes: tuple[str, ...], log: SkipLog) -> dict[str, str]:
    """stem -> file name for the files with these suffixes (a second file per stem is a skip)."""
    found: dict[str, str] = {}
    for name in sorted(os.listdir(directory)):
        stem, suffix = os.path.splitext(name)
        if suffix.lower() not in suffixes:
            continue
        if not is_valid_text(name):
            log.skip("bad_file_name", directory / name, None, "file name is not UTF-8")
            continue
        if stem in found:
            log.skip("duplicate_name", directory / name, None, f"{found[stem]} has the same stem")
            continue
        found[stem] = name
    return found


def parse_object(fields: list[str], image_id: str, width: int, height: int,
                 class_map: dict[str, str], table: TableBuilder, log: SkipLog, file: Path,
                 line: int, track_id: str | None, truncation_is_level: bool) -> None:
    """Add one KITTI object (fields start at `type`) to the table, or count why not."""
    source_class = fields[0]
    is_dont_care = source_class == "DontCare"
    if source_class not in KITTI_CLASSES:
        log.skip("unknown_class", file, line, f"class {source_class!r}")
        return
    if not is_dont_care and source_class not in class_map:
        log.dropped_by_class_map[source_class] += 1
        return
    try:  # plain decimals only: Python's float() would read `1_0` as 10
        truncated = plain_float(fields[1])
        level = plain_int(fields[2])
        x1, y1, x2, y2 = (plain_float(v) for v in fields[4:8])
        for value in fields[3:]:  # the 3D fields too: garbage there means a corrupt line
            plain_float(value)
    except ValueError:
        log.skip("non_numeric", file, line, " ".join(fields))
        return
    if not math.isfinite(truncated):
        log.skip("non_finite", file, line, f"truncated={fields[1]}")
        return
    box = check_box(x1, y1, x2, y2, width, height, log, file, line)
    if box is None:
        return
    if is_dont_care:
        table.add_object(image_id, None, source_class, box, False, None, math.nan, True, None,
                         False)
        return
    if level not in (0, 1, 2, 3):
        log.skip("bad_occlusion_level", file, line, f"occluded={fields[2]}")
        return
    if truncation_is_level:  # tracking: 0/1/2 -> 0, 0.5, 1
        truncated = min(max(truncated, 0.0), 2.0) / 2.0
    occluded = level in (1, 2)
    table.add_object(image_id, class_map[source_class], source_class, box, occluded, level,
                     min(max(truncated, 0.0), 1.0), False, track_id, occluded)


def _find_split_dir(root: Path, split: str, marker: str) -> Path:
    for candidate in (root / split, root):
        if (candidate / marker).is_dir():
            return candidate
    raise BadInputError(f"{root}: no {split}/{marker} directory (KITTI labels missing)")


def read_kitti_detection(root: Path, class_map: dict[str, str], split: str = "training", *,
                         allow_outside_root: bool = False) -> IngestResult:
    """Read <root>/<split>/{image_2,label_2}; image_id is the file stem ("000123").

    A file or directory that resolves outside `root` is a skip or an error unless
    allow_outside_root (data/roots.py).
    """
    guard, image_dir, label_dir = _split_dirs(root, split, "image_2", "label_2",
                                              "KITTI image directory", allow_outside_root)
    log, table, display = SkipLog(), TableBuilder(), PathDisplay()
    labels = list_files(label_dir, (".txt",), log)
    images = list_files(image_dir, IMAGE_SUFFIXES, log)
    for stem in progress(sorted(set(labels) | set(images)), "kitti"):
        if stem not in images:
            log.skip("missing_image", label_dir / labels[stem], None, f"no image for {stem}")
            continue
        image_path = image_dir / images[stem]
        if stem not in labels:
            log.skip("missing_label", image_path, None, f"no label_2/{stem}.txt")
            continue
        label_path = label_dir / labels[stem]
        if guard.skipped_outside(image_path, log) or guard.skipped_outside(label_path, log):
            continue
        size = image_size_or_skip(image_path, log)
        if size is None:
            continue
        lines = read_label_lines(label_path, log)
        if lines is None:
            continue
        width, height = size
        table.add_image(stem, display(image_path), width, height, "kitti", split,
                        frame=int(stem) if is_frame_number(stem) else None)
        for number, fields in field_rows(lines, DETECTION_FIELDS, label_path, log):
            parse_object(fields, stem, width, height, class_map, table, log, label_path, number,
                         None, truncation_is_level=False)
    return table.build(log, "kitti", root=display(Path(root)), split=split)


def read_kitti_tracking(root: Path, class_map: dict[str, str],
                        sequences: list[str] | None = None, *,
                        allow_outside_root: bool = False) -> IngestResult:
    """Read label_02/<seq>.txt + image_02/<seq>/<frame>.png; image_id is "0001/000005".

    `root` may be the tracking `training` directory or its parent. Frames that have labels but
    no image are counted skips (missing_image); images without label lines are kept as frames
    with no objects (KITTI tracking lists only frames that have objects). Two images of one
    frame number (`0003.png`, `000003.png`) are a `duplicate_frame` skip of the second.
    """
    guard, image_root, label_dir = _split_dirs(root, "training", "image_02", "label_02",
                                               "KITTI tracking image directory",
                                               allow_outside_root)
    log, table, display = SkipLog(), TableBuilder(), PathDisplay()
    label_files = list_files(label_dir, (".txt",), log)
    available = sorted(set(label_files) | {d.name for d in image_root.iterdir() if d.is_dir()})
    for name in [name for name in available if not is_valid_text(name)]:
        log.skip("bad_file_name", image_root / name, None, "sequence name is not UTF-8")
        available.remove(name)
    if sequences is not None:
        unknown = [s for s in sequences if s not in available]
        if unknown:
            raise BadInputError(f"{label_dir.parent}: KITTI tracking sequence(s) {unknown} "
                                "not found")
        available = sorted(sequences)
    for sequence in progress(available, "kitti-tracking", unit="seq"):
        image_dir = image_root / sequence
        if image_dir.is_dir():
            guard.check_dir(image_dir)
        _read_sequence(sequence, label_dir, label_files.get(sequence), image_dir,
                       class_map, table, log, display, guard)
    return table.build(log, "kitti_tracking", root=display(Path(root)), split="training")


def _read_sequence(sequence: str, label_dir: Path, label_name: str | None, image_dir: Path,
                   class_map: dict[str, str], table: TableBuilder, log: SkipLog,
                   display: PathDisplay, guard: DatasetRoot) -> None:
    images = list_files(image_dir, IMAGE_SUFFIXES, log) if image_dir.is_dir() else {}
    if label_name is None:
        for name in images.values():
            log.skip("missing_label", image_dir / name, None, f"no label_02/{sequence}.txt")
        return
    label_path = label_dir / label_name
    if guard.skipped_outside(label_path, log):
        return
    lines = read_label_lines(label_path, log)
    if lines is None:
        return
    frame_lines: dict[int, list[tuple[int, list[str]]]] = defaultdict(list)
    for number, fields in field_rows(lines, TRACKING_FIELDS, label_path, log):
        try:
            frame = plain_int(fields[0])
            plain_int(fields[1])
        except ValueError:
            log.skip("non_numeric", label_path, number, f"frame={fields[0]} track={fields[1]}")
            continue
        frame_lines[frame].append((number, fields))
    image_frames: dict[int, str] = {}
    for stem in sorted(images):
        if not is_frame_number(stem):
            log.skip("bad_file_name", image_dir / images[stem], None, "not a frame number")
        elif int(stem) in image_frames:  # 0003.png and 000003.png: never keep one silently
            log.skip("duplicate_frame", image_dir / images[stem], None,
                     f"frame {int(stem)} is also {images[image_frames[int(stem)]]}")
        else:
            image_frames[int(stem)] = stem
    for frame in sorted(set(frame_lines) - set(image_frames)):
        log.skip("missing_image", label_path, frame_lines[frame][0][0],
                 f"frame {frame}: {len(frame_lines[frame])} label lines, no image")
    for frame in sorted(image_frames):
        stem = image_frames[frame]
        image_path = image_dir / images[stem]
        size = guard.image_size(image_path, log)
        if size is None:
            continue
        width, height = size
        image_id = f"{sequence}/{frame:06d}"
        table.add_image(image_id, display(image_path), width, height, "kitti_tracking",
                        "training", sequence=sequence, frame=frame)
        for number, fields in frame_lines.get(frame, []):
            track_id = None if fields[1] == "-1" else str(plain_int(fields[1]))
            parse_object(fields[2:], image_id, width, height, class_map, table, log, label_path,
                         number, track_id, truncation_is_level=True)
