"""Stage `build_dataset`: the detector's training set in YOLO layout, plus the translation grid.

train = KITTI (minus a held-out share) + vKITTI2 clone + the three weather sets from `translate`
(vKITTI2's rendered weather for the baseline, translated clone frames otherwise).
val = the held-out KITTI frames: ultralytics picks its best epoch on real frames without ever
seeing BDD100K, which stays the untouched test set.
Images are hard-linked, never copied.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from data import IngestResult, read_manifest
from data.manifest import select_images
from data.yolo import export_yolo, write_data_yaml
from pipeline.common import DATASET, INGEST, PLOTS, TRANSLATE, atomic_dir, run_stage
from pipeline.params import load_params

GRID_ROWS = 3  # sample frames shown in the translation grid


def main(argv: list[str]) -> None:
    params = load_params()
    kitti = read_manifest(INGEST / "kitti")
    vkitti2 = read_manifest(INGEST / "vkitti2")
    weather_sets = {w: read_manifest(TRANSLATE / w / "manifest") for w in params.weathers}
    kitti_train, kitti_val = split_kitti(kitti, params.dataset.kitti_val_fraction, params.seed)
    clone = select_images(vkitti2, vkitti2.images.loc[vkitti2.images["variation"] == "clone",
                                                      "image_id"], "vKITTI2 clone frames")
    train_parts = {"kitti": kitti_train, "vkitti2_clone": clone, **{
        f"vkitti2_{w}": part for w, part in weather_sets.items()}}
    names = params.classes.names
    with atomic_dir(DATASET) as tmp:
        counts = {
            "train": export_yolo(list(train_parts.values()), names, tmp, "train",
                                 file_prefix=[f"{p}__" for p in train_parts]),
            "val": export_yolo([kitti_val], names, tmp, "val", file_prefix=["kitti__"]),
            "train_images_per_part": {p: len(r.images) for p, r in train_parts.items()},
        }
        write_data_yaml(tmp, names, {"train": "images/train", "val": "images/val"})
        (tmp / "summary.json").write_text(json.dumps(counts, indent=2, default=int) + "\n")
    write_translation_grid(clone, weather_sets, PLOTS / "translation_grid.png")
    parts = ", ".join(f"{p} {n}" for p, n in counts["train_images_per_part"].items())
    print(f"build_dataset: train {parts}; val kitti {len(kitti_val.images)}")


def split_kitti(kitti: IngestResult, val_fraction: float, seed: int):
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"dataset.kitti_val_fraction: {val_fraction} must be between 0 and 1")
    ids = np.array(sorted(kitti.images["image_id"]))
    n_val = max(1, round(len(ids) * val_fraction))
    val_ids = set(np.random.default_rng(seed).permutation(ids)[:n_val].tolist())
    train_ids = [i for i in ids.tolist() if i not in val_ids]
    return (select_images(kitti, train_ids, "KITTI train share"),
            select_images(kitti, val_ids, "KITTI held-out validation share"))


def write_translation_grid(clone: IngestResult, weather_sets: dict[str, IngestResult],
                           out: Path) -> None:
    """source | fog | rain | overcast for a few frames: the first plot to look at."""
    images = clone.images.sort_values("image_id").reset_index(drop=True)
    rows = []
    for i in np.linspace(0, len(images) - 1, num=min(GRID_ROWS, len(images))).astype(int):
        frame = images.iloc[i]
        cells = [_read(frame["path"])]
        for weather_set in weather_sets.values():
            same = weather_set.images[
                (weather_set.images["sequence"] == frame["sequence"])
                & (weather_set.images["camera"] == frame["camera"])
                & (weather_set.images["frame"] == frame["frame"])]
            cells.append(_read(same["path"].iloc[0]) if len(same) else np.zeros_like(cells[0]))
        rows.append(np.hstack([cv2.resize(c, cells[0].shape[1::-1]) for c in cells]))
    grid = np.vstack(rows)
    header = np.full((18, grid.shape[1], 3), 255, np.uint8)
    width = cells[0].shape[1]
    for k, title in enumerate(["source (clone)", *weather_sets]):
        cv2.putText(header, title, (k * width + 4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (0, 0, 0), 1, cv2.LINE_AA)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    cv2.imwrite(str(tmp), np.vstack([header, grid]))
    os.replace(tmp, out)


def _read(path: str) -> np.ndarray:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read image {path}")
    return image


if __name__ == "__main__":
    run_stage(main)
