"""Export manifests as an ultralytics YOLO dataset: linked images + normalised label files.

Images are hard links (symlinks where a hard link is impossible, e.g. across file systems),
never copies: a full KITTI + vKITTI2 export would otherwise double the disk use.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import yaml

from common.files import atomic_path, atomic_write_text
from data.errors import BadInputError
from data.manifest import IngestResult, progress


def yolo_stem(prefix: str, image_id: str) -> str:
    """The unique file stem of an image in the export: prefix + image_id with "/" -> "__"."""
    return prefix + image_id.replace("/", "__")


def _link(source: Path, target: Path) -> str:
    """Atomically (re)place `target` as a link to `source`; returns "hardlink" or "symlink"."""
    with atomic_path(target) as tmp:
        try:
            os.link(source, tmp)
            kind = "hardlink"
        except OSError:
            os.symlink(os.path.abspath(source), tmp)
            kind = "symlink"
    return kind


def _label_lines(part: IngestResult, class_index: dict[str, int], counts: dict[str, int]
                 ) -> dict[str, list[str]]:
    """image_id -> YOLO lines "cls cx cy w h" (normalised, 6 decimals), in manifest order."""
    objects = part.objects
    sizes = part.images.set_index("image_id")[["width", "height"]]
    ignore = objects["ignore"].to_numpy(dtype=bool)
    known = objects["class_name"].isin(list(class_index)).to_numpy(dtype=bool)
    counts["ignore_regions_not_exported"] += int(ignore.sum())
    counts["objects_other_classes"] += int((~ignore & ~known).sum())
    kept = objects[~ignore & known]
    size = sizes.reindex(kept["image_id"])
    if size["width"].isna().any():
        missing = kept["image_id"][size["width"].isna().to_numpy()].iloc[0]
        raise BadInputError(f"objects table refers to image_id {missing!r} not in images table")
    width = size["width"].to_numpy(dtype=float)
    height = size["height"].to_numpy(dtype=float)
    x1, y1, x2, y2 = (kept[c].to_numpy(dtype=float) for c in ("x1", "y1", "x2", "y2"))
    columns = (((x1 + x2) / 2) / width, ((y1 + y2) / 2) / height, (x2 - x1) / width,
               (y2 - y1) / height)
    classes = kept["class_name"].map(class_index).to_numpy(dtype=int)
    lines: dict[str, list[str]] = {}
    numbers = np.clip(np.stack(columns, axis=1), 0.0, 1.0)
    for image_id, cls, row in zip(kept["image_id"], classes, numbers, strict=True):
        lines.setdefault(image_id, []).append(
            f"{cls} {row[0]:.6f} {row[1]:.6f} {row[2]:.6f} {row[3]:.6f}")
    counts["objects_exported"] += len(kept)
    return lines


def export_yolo(parts: list[IngestResult], class_names: list[str], out_dir: Path, split: str,
                file_prefix: list[str] | None = None) -> dict:
    """Write out_dir/images/<split>/<stem>.<ext> (links) and out_dir/labels/<split>/<stem>.txt.

    Every image gets a label file (empty = background). Ignore regions and objects of classes
    not in `class_names` are not exported, only counted. Two images with the same stem are a
    BadInputError (pass file_prefix, one per part, to keep datasets apart).
    """
    if file_prefix is not None and len(file_prefix) != len(parts):
        raise BadInputError(f"file_prefix has {len(file_prefix)} entries for {len(parts)} parts")
    prefixes = file_prefix or [""] * len(parts)
    class_index = {name: index for index, name in enumerate(class_names)}
    image_dir, label_dir = Path(out_dir) / "images" / split, Path(out_dir) / "labels" / split
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    counts = {"images": 0, "hardlinks": 0, "symlinks": 0, "objects_exported": 0,
              "background_images": 0, "ignore_regions_not_exported": 0,
              "objects_other_classes": 0}
    stems: dict[str, str] = {}
    for prefix, part in zip(prefixes, parts, strict=True):
        lines = _label_lines(part, class_index, counts)
        pairs = zip(part.images["image_id"], part.images["path"], strict=True)
        for image_id, source in progress(pairs, f"yolo {split}", total=len(part.images)):
            stem = yolo_stem(prefix, image_id)
            if stem in stems:
                raise BadInputError(f"YOLO export: {image_id!r} and {stems[stem]!r} both become "
                                    f"{stem!r}; give each part its own file_prefix")
            stems[stem] = image_id
            source_path = Path(source)
            if not source_path.is_file():
                raise BadInputError(f"{source}: image of {image_id!r} missing (YOLO export)")
            kind = _link(source_path, image_dir / f"{stem}{source_path.suffix.lower()}")
            counts[kind + "s"] += 1
            image_lines = lines.get(image_id, [])
            counts["background_images"] += not image_lines
            text = "".join(line + "\n" for line in image_lines)
            atomic_write_text(label_dir / f"{stem}.txt", text)
            counts["images"] += 1
    return counts


def write_data_yaml(out_dir: Path, class_names: list[str], splits: dict[str, str]) -> Path:
    """ultralytics data.yaml; `splits` maps its keys (train/val/test) to exported splits.

    A value is a split name given to export_yolo ("train" -> images/train) or already a path
    relative to out_dir ("images/train").
    """
    out_dir = Path(out_dir)
    # no `path` key: ultralytics then reads splits relative to this file's folder, so the
    # dataset stays valid after the stage renames its temp dir into place (and when moved)
    document = {**{key: name if "/" in name else f"images/{name}" for key, name in splits.items()},
                "names": dict(enumerate(class_names))}
    path = out_dir / "data.yaml"
    atomic_write_text(path, yaml.safe_dump(document, sort_keys=False))
    return path
