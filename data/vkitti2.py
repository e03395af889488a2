"""Virtual KITTI 2 reader: rgb frames + textgt (bbox.txt, info.txt) per scene and variation.

Layout: <root>/SceneXX/<variation>/frames/rgb/Camera_k/rgb_%05d.jpg and
<textgt_root or root>/SceneXX/<variation>/{bbox.txt,info.txt}.
Track ids restart in every scene, so each (scene, variation) is labelled with its own info.txt.
Box corners are integer pixel indices in KITTI's convention (right edge of a 1242-wide frame is
1241) and are kept as they are, like KITTI's, so both training sources agree.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from data.errors import BadInputError, SkipLog
from data.kitti import IMAGE_SUFFIXES, read_label_lines
from data.manifest import (
    IngestResult,
    PathDisplay,
    TableBuilder,
    check_box,
    progress,
    select_images,
)
from data.numbers import plain_float, plain_int
from data.roots import DatasetRoot

VKITTI2_CLASSES = frozenset({"Car", "Van", "Truck"})
BBOX_HEADER = ["frame", "cameraID", "trackID", "left", "right", "top", "bottom", "number_pixels",
               "truncation_ratio", "occupancy_ratio", "isMoving"]
INFO_HEADER = ["trackID", "label", "model", "color"]
FRAME_FILE = re.compile(r"rgb_([0-9]{1,18})\.(jpg|jpeg|png)", re.ASCII)  # fullmatch
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*", re.ASCII)  # fullmatch


def read_vkitti2(root: Path, class_map: dict[str, str], *, textgt_root: Path | None = None,
                 scenes: list[str] | None = None, variations: list[str] | None = None,
                 cameras: list[str] = ["Camera_0"],  # noqa: B006 (contract signature)
                 stride: int = 1, occupancy_threshold: float = 0.75,
                 allow_outside_root: bool = False) -> IngestResult:
    """Read the selected scenes x variations x cameras; every `stride`-th frame (frame % stride).

    image_id is "Scene01/clone/Camera_0/00005"; occluded = occupancy_ratio < occupancy_threshold.
    Every bbox.txt line is accounted for: kept, a counted skip, or tallied in the report's
    `lines_not_selected` (another existing camera, or a frame left out by the stride). A file
    or directory resolving outside its root is a skip or an error unless allow_outside_root.
    """
    root = Path(root)
    textgt = Path(textgt_root) if textgt_root is not None else root
    if not root.is_dir():
        raise BadInputError(f"{root}: vKITTI2 root directory missing")
    if stride < 1:
        raise BadInputError(f"stride must be >= 1, got {stride}")
    for name in [*(scenes or []), *(variations or []), *cameras]:
        if not SAFE_NAME.fullmatch(name):
            raise BadInputError(f"vKITTI2 scene/variation/camera name {name!r} is not a plain name")
    log, table, display = SkipLog(), TableBuilder(), PathDisplay()
    if scenes is None:
        scenes = _plain_dirs(root, log, prefix="Scene")
        if not scenes:
            raise BadInputError(f"{root}: no SceneXX directories (vKITTI2 rgb tree expected)")
    roots = (DatasetRoot(root, allow_outside_root), DatasetRoot(textgt, allow_outside_root))
    not_selected = {"other_camera": 0, "stride": 0}
    for scene in scenes:
        if not (root / scene).is_dir():
            raise BadInputError(f"{root / scene}: vKITTI2 scene directory missing")
        scene_variations = variations
        if scene_variations is None:
            scene_variations = _plain_dirs(root / scene, log)
        for variation in scene_variations:
            _read_variation(roots, scene, variation, cameras, stride, occupancy_threshold,
                            class_map, table, log, display, not_selected)
    return table.build(log, "vkitti2", root=display(root), textgt_root=display(textgt),
                       stride=stride, occupancy_threshold=occupancy_threshold,
                       lines_not_selected=not_selected)


def rgb_frames_dir(root: Path, scene: str, variation: str) -> Path:
    """Where a scene's variation keeps its camera directories (Camera_0, Camera_1)."""
    return Path(root) / scene / variation / "frames" / "rgb"


def inventory(root: Path, textgt_root: Path | None = None) -> dict[str, dict[str, dict]]:
    """What a vKITTI2 tree holds, without reading a frame: scene -> variation ->
    {"cameras": [Camera_k with an rgb directory], "textgt": bbox.txt and info.txt present}.
    Only plain names count (as read_vkitti2 reads them); a missing root gives {}."""
    root, textgt = Path(root), Path(textgt_root) if textgt_root is not None else Path(root)
    if not root.is_dir():
        return {}
    found: dict[str, dict[str, dict]] = {}
    log = SkipLog()  # odd names are the reader's skips; the inventory just leaves them out
    for scene in _plain_dirs(root, log, prefix="Scene"):
        found[scene] = {}
        for variation in _plain_dirs(root / scene, log):
            rgb = rgb_frames_dir(root, scene, variation)
            cameras = _plain_dirs(rgb, log, prefix="Camera_") if rgb.is_dir() else []
            labels = textgt / scene / variation
            found[scene][variation] = {
                "cameras": cameras,
                "textgt": (labels / "bbox.txt").is_file() and (labels / "info.txt").is_file()}
    return found


def _plain_dirs(parent: Path, log: SkipLog, prefix: str = "") -> list[str]:
    """Sub-directories of `parent` (starting with `prefix`); odd names are counted skips."""
    names = []
    for entry in sorted(parent.iterdir()):
        if entry.is_dir() and entry.name.startswith(prefix):
            if SAFE_NAME.fullmatch(entry.name):
                names.append(entry.name)
            else:
                log.skip("bad_file_name", entry, None, "not a plain scene/variation name")
    return names


def _read_info(path: Path, log: SkipLog) -> dict[int, str]:
    """trackID -> label from info.txt (this scene's own track ids)."""
    if not path.is_file():
        raise BadInputError(f"{path}: vKITTI2 info.txt missing")
    lines = read_label_lines(path, log)
    if lines is None:
        raise BadInputError(f"{path}: vKITTI2 info.txt unreadable (see skip reason)")
    labels: dict[int, str] = {}
    for number, text in enumerate(lines, start=1):
        fields = text.split()
        if not fields or (number == 1 and fields == INFO_HEADER):
            continue
        if len(fields) != len(INFO_HEADER):
            log.skip("wrong_field_count", path, number, f"{len(fields)} fields, expected 4")
            continue
        try:
            track_id = plain_int(fields[0])
        except ValueError:
            log.skip("non_numeric", path, number, f"trackID={fields[0]!r}")
            continue
        if track_id in labels:
            log.skip("duplicate_track_id", path, number, f"trackID {track_id} listed twice")
            continue
        labels[track_id] = fields[1]
    return labels


def _read_bbox(path: Path, log: SkipLog) -> list[tuple[int, list[str]]] | None:
    """(line number, fields) of every well-formed data line of bbox.txt; None if unusable."""
    if not path.is_file():
        raise BadInputError(f"{path}: vKITTI2 bbox.txt missing")
    lines = read_label_lines(path, log)
    if lines is None:  # counted skip: the whole variation is left out (not kept unlabelled)
        return None
    rows = []
    for number, text in enumerate(lines, start=1):
        fields = text.split()
        if not fields:
            continue
        if number == 1 and fields[0] == "frame":
            if fields != BBOX_HEADER:
                raise BadInputError(f"{path}: unexpected header {text!r}, expected "
                                    f"{' '.join(BBOX_HEADER)!r}")
            continue
        if len(fields) != len(BBOX_HEADER):
            log.skip("wrong_field_count", path, number, f"{len(fields)} fields, expected 11")
            continue
        rows.append((number, fields))
    return rows


def _read_variation(roots: tuple[DatasetRoot, DatasetRoot], scene: str, variation: str,
                    cameras: list[str], stride: int, occupancy_threshold: float,
                    class_map: dict[str, str], table: TableBuilder, log: SkipLog,
                    display: PathDisplay, not_selected: dict[str, int]) -> None:
    rgb_root, textgt = roots
    label_dir = textgt.check_dir(textgt.path / scene / variation)
    if textgt.skipped_outside(label_dir / "info.txt", log):
        return
    track_labels = _read_info(label_dir / "info.txt", log)
    bbox_path = label_dir / "bbox.txt"
    if textgt.skipped_outside(bbox_path, log):
        return
    rgb_dir = rgb_frames_dir(rgb_root.path, scene, variation)
    # camera name -> frame -> [(line, fields)]
    lines_by_frame: dict[str, dict[int, list[tuple[int, list[str]]]]] = {c: {} for c in cameras}
    bbox_rows = _read_bbox(bbox_path, log)
    if bbox_rows is None:
        return
    for number, fields in bbox_rows:
        try:
            frame, camera_id = plain_int(fields[0]), plain_int(fields[1])
        except ValueError:
            log.skip("non_numeric", bbox_path, number, f"frame={fields[0]} cameraID={fields[1]}")
            continue
        camera = f"Camera_{camera_id}"
        camera_frames = lines_by_frame.get(camera)
        if camera_frames is None:
            if camera_id >= 0 and (rgb_dir / camera).is_dir():
                not_selected["other_camera"] += 1  # expected: that camera was not asked for
            else:
                log.skip("unknown_camera", bbox_path, number,
                         f"cameraID {fields[1]}: no {rgb_dir / camera} directory")
        elif frame % stride != 0:
            not_selected["stride"] += 1
        else:
            camera_frames.setdefault(frame, []).append((number, fields))
    for camera in cameras:
        image_dir = rgb_dir / camera
        if not image_dir.is_dir():
            raise BadInputError(f"{image_dir}: vKITTI2 rgb directory missing")
        rgb_root.check_dir(image_dir)
        frames: dict[int, str] = {}
        for name in sorted(os.listdir(image_dir)):
            match = FRAME_FILE.fullmatch(name)
            if match is None:
                if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES:  # e.g. rgb_²3.jpg
                    log.skip("bad_file_name", image_dir / name, None, "not rgb_<frame number>")
                continue
            frame = int(match.group(1))
            if frame in frames:
                log.skip("duplicate_name", image_dir / name, None, f"frame {frame} twice")
            elif frame % stride == 0:
                frames[frame] = name
        camera_lines = lines_by_frame[camera]
        for frame in sorted(set(camera_lines) - set(frames)):
            log.skip("missing_image", bbox_path, camera_lines[frame][0][0],
                     f"{camera} frame {frame}: no rgb image")
        desc = f"vkitti2 {scene}/{variation}/{camera}"
        for frame in progress(sorted(frames), desc):
            image_path = image_dir / frames[frame]
            size = rgb_root.image_size(image_path, log)
            if size is None:
                continue
            width, height = size
            image_id = f"{scene}/{variation}/{camera}/{frame:05d}"
            table.add_image(image_id, display(image_path), width, height, "vkitti2", "training",
                            sequence=scene, frame=frame, variation=variation, camera=camera)
            for number, fields in camera_lines.get(frame, []):
                _add_object(fields, image_id, width, height, track_labels, occupancy_threshold,
                            class_map, table, log, bbox_path, number)


def _add_object(fields: list[str], image_id: str, width: int, height: int,
                track_labels: dict[int, str], occupancy_threshold: float,
                class_map: dict[str, str], table: TableBuilder, log: SkipLog, path: Path,
                number: int) -> None:
    try:  # plain decimals only (Python's float() reads `1_0` as 10)
        track_id = plain_int(fields[2])
        left, right, top, bottom = (plain_float(v) for v in fields[3:7])
        truncation, occupancy = plain_float(fields[8]), plain_float(fields[9])
        plain_int(fields[7])
    except ValueError:
        log.skip("non_numeric", path, number, " ".join(fields))
        return
    label = track_labels.get(track_id)
    if label is None:
        log.skip("unknown_track", path, number, f"trackID {track_id} not in this scene's info.txt")
        return
    if label not in VKITTI2_CLASSES:
        log.skip("unknown_class", path, number, f"class {label!r} (trackID {track_id})")
        return
    if label not in class_map:
        log.dropped_by_class_map[label] += 1
        return
    if not (0.0 <= truncation <= 1.0 and 0.0 <= occupancy <= 1.0):  # also rejects NaN
        log.skip("bad_ratio", path, number, f"truncation={fields[8]} occupancy={fields[9]}")
        return
    box = check_box(left, top, right, bottom, width, height, log, path, number)
    if box is None:
        return
    occluded = occupancy < occupancy_threshold
    table.add_object(image_id, class_map[label], label, box, occluded, None, truncation, False,
                     str(track_id), occluded)


# A vKITTI2 frame is one (scene, camera, frame number); its variations (clone, fog, ...) render
# the same scene, so their boxes are the same.
FRAME_KEYS = ["sequence", "camera", "frame"]


def variation_frames(vkitti2: IngestResult, variation: str) -> IngestResult:
    """The frames (and boxes) of one vKITTI2 variation; a clear error if the manifest has none."""
    ids = vkitti2.images.loc[vkitti2.images["variation"] == variation, "image_id"]
    if ids.empty:
        raise BadInputError(f"no vKITTI2 `{variation}` frames in the manifest; add {variation} to "
                            "data.vkitti2.variations")
    return select_images(vkitti2, ids, f"vKITTI2 {variation} frames")


def same_frames(frames: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """For each row of `frames`, the `path` of `other`'s frame with the same scene, camera and
    frame number (NaN where `other` has none), in the order of `frames`."""
    return frames[FRAME_KEYS].merge(other[[*FRAME_KEYS, "path"]], on=FRAME_KEYS, how="left")
