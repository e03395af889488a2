"""Stage `build_dataset`: the detector's training set in YOLO layout, plus the translation grid.

Which frames go in is data/mix.py's: KITTI + vKITTI2 clone + the weather sets from `translate`
(optionally mixed 1 in 7, `dataset.kitti_share`), or with `dataset.train_on: bdd100k` the BDD100K
train frames (the in-domain upper bound); a seeded share of the real frames is held out as val.
Images are hard-linked, never copied.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from common.errors import UserError
from common.files import atomic_dir, atomic_path
from data import IngestResult, read_manifest
from data.mix import bdd100k_parts, sim2real_parts
from data.vkitti2 import same_frames, variation_frames
from data.yolo import export_yolo, write_data_yaml
from pipeline.common import DATASET, INGEST, PLOTS, TRANSLATE, run_stage
from pipeline.params import load_params

GRID_ROWS = 3  # sample frames shown in the translation grid


def main(argv: list[str]) -> None:
    params = load_params()
    vkitti2 = read_manifest(INGEST / "vkitti2")
    weather_sets = {w: read_manifest(TRANSLATE / w / "manifest") for w in params.weathers}
    clone = variation_frames(vkitti2, "clone")
    if params.dataset.train_on == "bdd100k":
        train_parts, (val_name, val) = bdd100k_parts(read_manifest(INGEST / "bdd100k"),
                                                     params.dataset.val_fraction, params.seed)
    else:
        train_parts, (val_name, val) = sim2real_parts(read_manifest(INGEST / "kitti"), clone,
                                                      weather_sets, params.dataset.val_fraction,
                                                      params.seed, params.dataset.kitti_share)
    names = params.classes.names
    with atomic_dir(DATASET) as tmp:
        counts = {
            "train": export_yolo(list(train_parts.values()), names, tmp, "train",
                                 file_prefix=[f"{p}__" for p in train_parts]),
            "val": export_yolo([val], names, tmp, "val", file_prefix=[f"{val_name}__"]),
            "train_images_per_part": {p: len(r.images) for p, r in train_parts.items()},
        }
        write_data_yaml(tmp, names, {"train": "images/train", "val": "images/val"})
        (tmp / "summary.json").write_text(json.dumps(counts, indent=2, default=int) + "\n")
    write_translation_grid(clone, weather_sets, PLOTS / "translation_grid.png")
    parts = ", ".join(f"{p} {n}" for p, n in counts["train_images_per_part"].items())
    print(f"build_dataset: train {parts}; val {val_name} {len(val.images)}")


def write_translation_grid(clone: IngestResult, weather_sets: dict[str, IngestResult],
                           out: Path) -> None:
    """source | fog | rain | overcast for a few frames: the first plot to look at."""
    images = clone.images.sort_values("image_id").reset_index(drop=True)
    rows = []
    for i in np.linspace(0, len(images) - 1, num=min(GRID_ROWS, len(images))).astype(int):
        frame = images.iloc[[i]]
        cells = [_read(frame["path"].iloc[0])]
        for weather_set in weather_sets.values():
            same = same_frames(frame, weather_set.images)["path"].iloc[0]
            cells.append(_read(same) if isinstance(same, str) else np.zeros_like(cells[0]))
        rows.append(np.hstack([cv2.resize(c, cells[0].shape[1::-1]) for c in cells]))
    grid = np.vstack(rows)
    header = np.full((18, grid.shape[1], 3), 255, np.uint8)
    width = cells[0].shape[1]
    for k, title in enumerate(["source (clone)", *weather_sets]):
        cv2.putText(header, title, (k * width + 4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (0, 0, 0), 1, cv2.LINE_AA)
    with atomic_path(out) as tmp:  # tmp keeps the .png suffix cv2 picks the encoder by
        cv2.imwrite(str(tmp), np.vstack([header, grid]))


def _read(path: str) -> np.ndarray:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise UserError(f"cannot read image {path}")
    return image


if __name__ == "__main__":
    run_stage(main)
