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
from data.kitti import read_label_lines
from data.manifest import (
    BadImageError,
    IngestResult,
    PathDisplay,
    TableBuilder,
    check_box,
    progress,
    read_image_size,
    select_images,
)

VKITTI2_CLASSES = frozenset({"Car", "Van", "Truck"})
BBOX_HEADER = ["frame", "cameraID", "trackID", "left", "right", "top", "bottom", "number_pixels",
               "truncation_ratio", "occupancy_ratio", "isMoving"]
INFO_HEADER = ["trackID", "label", "model", "color"]
FRAME_FILE = re.compile(r"rgb_(\d+)\.(jpg|jpeg|png)$")
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def read_vkitti2(root: Path, class_map: dict[str, str], *, textgt_root: Path | None = None,
                 scenes: list[str] | None = None, variations: list[str] | None = None,
                 cameras: list[str] = ["Camera_0"],  # noqa: B006 (contract signature)
                 stride: int = 1, occupancy_threshold: float = 0.75) -> IngestResult:
    """Read the selected scenes x variations x cameras; every `stride`-th frame (frame % stride).

    image_id is "Scene01/clone/Camera_0/00005"; occluded = occupancy_ratio < occupancy_threshold.
    """
    root = Path(root)
    textgt = Path(textgt_root) if textgt_root is not None else root
    if not root.is_dir():
        raise BadInputError(f"{root}: vKITTI2 root directory missing")
    if stride < 1:
        raise BadInputError(f"stride must be >= 1, got {stride}")
    for name in [*(scenes or []), *(variations or []), *cameras]:
        if not SAFE_NAME.match(name):
            raise BadInputError(f"vKITTI2 scene/variation/camera name {name!r} is not a plain name")
    if scenes is None:
        scenes = sorted(d.name for d in root.iterdir() if d.is_dir() and d.name.startswith("Scene"))
        if not scenes:
            raise BadInputError(f"{root}: no SceneXX directories (vKITTI2 rgb tree expected)")
    log, table, display = SkipLog(), TableBuilder(), PathDisplay()
    for scene in scenes:
        if not (root / scene).is_dir():
            raise BadInputError(f"{root / scene}: vKITTI2 scene directory missing")
        scene_variations = variations
        if scene_variations is None:
            scene_variations = sorted(d.name for d in (root / scene).iterdir() if d.is_dir())
        for variation in scene_variations:
            _read_variation(root, textgt, scene, variation, cameras, stride, occupancy_threshold,
                            class_map, table, log, display)
    return table.build(log, "vkitti2", root=display(root), textgt_root=display(textgt),
                       stride=stride, occupancy_threshold=occupancy_threshold)


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
            track_id = int(fields[0])
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


def _read_variation(root: Path, textgt: Path, scene: str, variation: str, cameras: list[str],
                    stride: int, occupancy_threshold: float, class_map: dict[str, str],
                    table: TableBuilder, log: SkipLog, display: PathDisplay) -> None:
    label_dir = textgt / scene / variation
    track_labels = _read_info(label_dir / "info.txt", log)
    bbox_path = label_dir / "bbox.txt"
    # camera name -> frame -> [(line, fields)]
    lines_by_frame: dict[str, dict[int, list[tuple[int, list[str]]]]] = {c: {} for c in cameras}
    bbox_rows = _read_bbox(bbox_path, log)
    if bbox_rows is None:
        return
    for number, fields in bbox_rows:
        try:
            frame, camera_id = int(fields[0]), int(fields[1])
        except ValueError:
            log.skip("non_numeric", bbox_path, number, f"frame={fields[0]} cameraID={fields[1]}")
            continue
        camera_frames = lines_by_frame.get(f"Camera_{camera_id}")
        if camera_frames is not None and frame % stride == 0:
            camera_frames.setdefault(frame, []).append((number, fields))
    for camera in cameras:
        image_dir = root / scene / variation / "frames" / "rgb" / camera
        if not image_dir.is_dir():
            raise BadInputError(f"{image_dir}: vKITTI2 rgb directory missing")
        frames: dict[int, str] = {}
        for name in sorted(os.listdir(image_dir)):
            match = FRAME_FILE.match(name)
            if match is None:
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
            try:
                width, height = read_image_size(image_path)
            except BadImageError as err:
                log.skip("bad_image", image_path, None, str(err))
                continue
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
    try:
        track_id = int(fields[2])
        left, right, top, bottom = (float(v) for v in fields[3:7])
        truncation, occupancy = float(fields[8]), float(fields[9])
        int(fields[7])
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
