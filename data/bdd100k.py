"""BDD100K detection labels: legacy `bdd100k_labels_images_*.json` and det_20 / Scalabel frames.

Class handling follows the toolkit's det.toml: `BDD_RENAMES` first (van -> car, ...), then
`BDD_IGNORED` classes become ignore regions of their target class, then the class map.
A frame JSON of 70,000 frames is decoded one frame at a time, so memory stays near the size of
the file plus the output tables instead of holding every frame as Python dicts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from data.errors import BadInputError, SkipLog
from data.json_input import (
    OutOfRangeInteger,
    decode_at,
    decode_document,
    read_json_text,
    skip_whitespace,
)
from data.manifest import (
    MAX_IMAGE_PIXELS,
    IngestResult,
    PathDisplay,
    TableBuilder,
    check_box,
    image_size_or_skip,
    is_safe_relative,
    is_valid_text,
    progress,
)
from data.roots import ALLOW_HINT, DatasetRoot

BDD_RENAMES: dict[str, str] = {"bike": "bicycle", "caravan": "car", "motor": "motorcycle",
                               "person": "pedestrian", "van": "car"}
BDD_IGNORED: dict[str, str] = {"other person": "pedestrian", "other vehicle": "car",
                               "trailer": "truck"}
# Box classes BDD100K defines (after renaming); anything else with a box2d is "unknown_class".
BDD_CLASSES = frozenset({"pedestrian", "rider", "car", "truck", "bus", "train", "motorcycle",
                         "bicycle", "traffic light", "traffic sign"})
DEFAULT_WIDTH, DEFAULT_HEIGHT = 1280, 720
_FRAME_ATTRIBUTES = ("weather", "timeofday", "scene")  # the ones copied into the images table
MAX_FRAME_INDEX = 2**31 - 1  # frameIndex is an Int64 column; a larger one is not a frame index

# (line in the JSON file or None, frame index, frame object)
FrameItem = tuple[int | None, int, object]


def _iter_json_frames(path: Path) -> Iterator[FrameItem]:
    """Frames of a top-level JSON list decoded one by one; {"frames": [...]} is loaded whole."""
    if not path.is_file():
        raise BadInputError(f"{path}: BDD100K labels file missing")
    text = read_json_text(path)  # a UTF-8 byte-order mark is accepted
    pos = skip_whitespace(text, 0)
    if pos == len(text):
        raise BadInputError(f"{path}: empty file, expected a JSON list of frames")
    if text[pos] == "{":
        yield from _frames_of_dict(decode_document(text, path), path)
        return
    if text[pos] != "[":
        raise BadInputError(f"{path}: expected a JSON list of frames or {{\"frames\": [...]}}, "
                            f"found {text[pos]!r} at line {text.count(chr(10), 0, pos) + 1}")
    line, counted_to = 1, 0
    pos = skip_whitespace(text, pos + 1)
    index = 0
    while pos < len(text) and text[pos] != "]":
        frame, end = decode_at(text, pos, path)
        line += text.count("\n", counted_to, pos)
        counted_to = pos
        yield line, index, frame
        index += 1
        pos = skip_whitespace(text, end)
        if pos == len(text):
            break
        if text[pos] == ",":
            pos = skip_whitespace(text, pos + 1)
        elif text[pos] != "]":
            line += text.count("\n", counted_to, pos)
            raise BadInputError(f"{path}: invalid JSON at line {line}: expected ',' or ']'")
    if pos >= len(text) or skip_whitespace(text, pos + 1) != len(text):
        raise BadInputError(f"{path}: invalid JSON: list not closed (truncated file?) "
                            "or text after it")


def _frames_of_dict(document: object, path: Path) -> Iterator[FrameItem]:
    frames = document.get("frames") if isinstance(document, dict) else None
    if not isinstance(frames, list):
        raise BadInputError(f"{path}: JSON object without a \"frames\" list")
    for index, frame in enumerate(frames):
        yield None, index, frame


def load_frames(path: Path) -> list[dict]:
    """All frames of a labels file (a list of frames or {"frames": [...]}), unvalidated.

    Frames that are not JSON objects are kept here; frames_to_tables counts them as bad_frame.
    """
    return [frame for _, _, frame in _iter_json_frames(Path(path))]


def frames_to_tables(frames: Iterable[dict], class_map: dict[str, str], *, split: str,
                     source: str) -> IngestResult:
    """Tables from frames without touching image files: image_id = path = frame name.

    `source` names the frames' origin (the labels file) in skip examples and the report.
    """
    items = ((None, index, frame) for index, frame in enumerate(frames))
    return _build(items, class_map, split, source, resolve_image=None)


def find_image_dir(images_dir: Path, split: str) -> Path:
    """images_dir/<split>; images_dir may also be the download root (images/100k/<split>)."""
    for candidate in (Path(images_dir), Path(images_dir) / "images" / "100k"):
        if (candidate / split).is_dir():
            return candidate / split
    raise BadInputError(f"{Path(images_dir) / split}: BDD100K image directory missing (also "
                        f"looked for {Path(images_dir) / 'images' / '100k' / split})")


def read_bdd100k(labels_file: Path, images_dir: Path, class_map: dict[str, str], split: str,
                 *, check_images: bool = True, allow_outside_root: bool = False
                 ) -> IngestResult:
    """load_frames + frames_to_tables + the image files under images_dir/<split>/<name>.

    A frame whose image is missing (or, with check_images, unreadable/truncated) is a counted
    skip. check_images reads each image header for its true size; without it the frame's own
    `size` (default 1280x720) is trusted and only existence is checked. An image (the split's
    image directory) resolving outside images_dir is a skip (an error) unless
    allow_outside_root (data/roots.py).
    """
    labels_file = Path(labels_file)
    if not labels_file.is_file():
        raise BadInputError(f"{labels_file}: BDD100K labels file missing")
    image_dir = find_image_dir(images_dir, split)
    guard = DatasetRoot(images_dir, allow_outside_root)
    guard.check_dir(image_dir)
    on_disk = set(os.listdir(image_dir))
    display = PathDisplay()
    source = display(labels_file)

    def resolve_image(name: str, log: SkipLog, line: int | None) -> tuple[str, int, int] | None:
        path = image_dir / name
        if name not in on_disk and not ("/" in name and path.is_file()):
            log.skip("missing_image", source, line, f"{name} not in {image_dir}")
            return None
        problem = guard.outside(path, parent_checked="/" not in name)
        if problem is not None:
            log.skip("outside_root", source, line, f"{name}: {problem}; {ALLOW_HINT}")
            return None
        if not check_images:
            return display(path), 0, 0
        size = image_size_or_skip(path, log, line)
        return None if size is None else (display(path), *size)

    result = _build(_iter_json_frames(labels_file), class_map, split, source,
                    resolve_image)
    result.report["images_dir"] = display(image_dir)
    return result


def _build(items: Iterable[FrameItem], class_map: dict[str, str], split: str, source: str,
           resolve_image: Callable[[str, SkipLog, int | None], tuple[str, int, int] | None] | None
           ) -> IngestResult:
    log, table = SkipLog(), TableBuilder()
    log.files_read = 1
    seen: set[str] = set()
    frames_read = 0
    for line, index, frame in progress(items, "bdd100k", unit="frame"):
        frames_read += 1
        where = f"frame #{index}"
        name = frame.get("name") if isinstance(frame, dict) else None
        if not isinstance(name, str):
            log.skip("bad_frame", source, line, f"{where}: not an object with a string 'name'")
            continue
        if not is_safe_relative(name) or not _normalised(name):
            log.skip("unsafe_name", source, line, f"{where}: name {name!r} leaves the image dir")
            continue
        name = _normalised(name)  # "./f.jpg" and "f.jpg" are one image
        if name in seen:
            log.skip("duplicate_name", source, line, f"{where}: name {name!r} seen before")
            continue
        size = _frame_size(frame)
        labels = frame.get("labels")
        attributes = frame.get("attributes")
        attributes = {} if attributes is None else attributes
        if size is None or not isinstance(labels, list | None) or not isinstance(attributes, dict):
            log.skip("bad_frame", source, line, f"{where} {name!r}: bad size/labels/attributes")
            continue
        texts = (name, frame.get("videoName"), *(attributes.get(k) for k in _FRAME_ATTRIBUTES))
        if not all(is_valid_text(t) for t in texts if isinstance(t, str)):
            log.skip("bad_frame", source, line, f"{where} {name!r}: a lone surrogate escape "
                                                "(\\udXXX) in its name, videoName or attributes")
            continue
        seen.add(name)
        path, width, height = name, *size
        if resolve_image is not None:
            resolved = resolve_image(name, log, line)
            if resolved is None:
                continue
            path = resolved[0]
            if resolved[1]:
                width, height = resolved[1], resolved[2]
        frame_index = frame.get("frameIndex")
        if type(frame_index) is not int or not 0 <= frame_index <= MAX_FRAME_INDEX:
            frame_index = None
        table.add_image(name, path, width, height, "bdd100k", split,
                        sequence=_str_or_none(frame.get("videoName")),
                        frame=frame_index,
                        weather=_str_or_none(attributes.get("weather")),
                        timeofday=_str_or_none(attributes.get("timeofday")),
                        scene=_str_or_none(attributes.get("scene")))
        for label_index, label in enumerate(labels or []):
            _add_label(label, name, width, height, class_map, table, log, source, line,
                       label_index)
    return table.build(log, "bdd100k", source=source, split=split, frames_read=frames_read)


def _frame_size(frame: dict) -> tuple[int, int] | None:
    size = frame.get("size")
    if size is None:
        return DEFAULT_WIDTH, DEFAULT_HEIGHT
    if not isinstance(size, dict):
        return None
    width, height = size.get("width"), size.get("height")
    if type(width) is not int or type(height) is not int or width <= 0 or height <= 0:
        return None
    if width * height > MAX_IMAGE_PIXELS:  # the limit image headers are held to
        return None
    return width, height


def _normalised(name: str) -> str:
    """`name` without "." components ("./a/./f.jpg" -> "a/f.jpg"); it is already safe."""
    return "/".join(part for part in name.split("/") if part != ".")


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _flag(attributes: dict, key: str, capitalised: str) -> bool | None:
    """A boolean attribute; the toolkit's examples also spell it capitalised ("Occluded")."""
    value = attributes.get(key)
    if value is None:
        value = attributes.get(capitalised, False)
    return value if value is True or value is False else None


def _add_label(label: object, image_id: str, width: int, height: int, class_map: dict[str, str],
               table: TableBuilder, log: SkipLog, source: str, line: int | None,
               label_index: int) -> None:
    def skip(reason: str, detail: str) -> None:
        log.skip(reason, source, line, f"{image_id} label #{label_index}: {detail}")

    if not isinstance(label, dict):
        skip("bad_label", "not a JSON object")
        return
    box = label.get("box2d")
    if box is None:  # poly2d lanes / drivable areas and other non-box labels
        skip("no_box2d", f"{label.get('category')!r} has no box2d")
        return
    category = label.get("category")
    if not isinstance(category, str):
        skip("bad_label", f"category {category!r}")
        return
    renamed = BDD_RENAMES.get(category, category)
    ignored_target = BDD_IGNORED.get(renamed)
    is_ignored_class = ignored_target is not None
    lookup = ignored_target if is_ignored_class else renamed
    if not is_ignored_class and renamed not in BDD_CLASSES:
        skip("unknown_class", f"class {category!r}")
        return
    if lookup not in class_map:
        log.dropped_by_class_map[category] += 1
        return
    attributes = label.get("attributes")
    attributes = {} if attributes is None else attributes
    if not isinstance(attributes, dict):
        skip("bad_label", f"attributes {attributes!r}")
        return
    occluded = _flag(attributes, "occluded", "Occluded")
    truncated = _flag(attributes, "truncated", "Truncated")
    crowd = _flag(attributes, "crowd", "Crowd")
    if occluded is None or truncated is None or crowd is None:
        skip("bad_attribute", "occluded/truncated/crowd not bool")
        return
    coords = _box_coords(box)
    if coords is None:
        skip("bad_box", f"box2d {box!r}")
        return
    clipped = check_box(*coords, width, height, log, source, line, image_id)
    if clipped is None:
        return
    track = label.get("id")
    if isinstance(track, OutOfRangeInteger) or (track is not None
                                                and not is_valid_text(str(track))):
        skip("bad_label", f"id {track!r} (an over-long integer or a lone surrogate escape)")
        return
    table.add_object(image_id, class_map[lookup], category, clipped, occluded, None,
                     1.0 if truncated else 0.0, is_ignored_class or crowd,
                     None if track is None else str(track),
                     occluded and not is_ignored_class)


def _box_coords(box: object) -> tuple[float, float, float, float] | None:
    """x1 y1 x2 y2 as floats (NaN / inf are passed on for check_box to count), else None."""
    if not isinstance(box, dict):
        return None
    x1, y1, x2, y2 = box.get("x1"), box.get("y1"), box.get("x2"), box.get("y2")
    for value in (x1, y1, x2, y2):
        if type(value) is not float and type(value) is not int:  # bool is not a coordinate
            return None
    return float(x1), float(y1), float(x2), float(y2)
