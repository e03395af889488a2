"""Stage `build_dataset`: the detector's training set in YOLO layout, plus the translation grid.

train = KITTI (minus a held-out share) + vKITTI2 clone + the three weather sets from `translate`
(vKITTI2's rendered weather for the baseline, translated clone frames otherwise).
With `dataset.kitti_share` (1/7 in the original study's recipe) KITTI's train share is
subsampled so that one training frame in seven is real, the rest vKITTI2 (clone + weather sets).
val = the held-out KITTI frames: ultralytics picks its best epoch on real frames without ever
seeing BDD100K val, which stays the untouched test set.
With `dataset.train_on: bdd100k` the BDD100K train frames and their labels replace all of that
(a share held out as val): the in-domain upper bound that tells how much of the gap between the
sim2real detector and one trained on the target domain itself is left.
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
from data.manifest import select_images
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


Parts = dict[str, IngestResult]


def sim2real_parts(kitti: IngestResult, clone: IngestResult, weather_sets: Parts,
                   val_fraction: float, seed: int, kitti_share: float | None = None
                   ) -> tuple[Parts, tuple[str, IngestResult]]:
    """The study's training set: KITTI's train share, vKITTI2 clone and the weather sets; with
    `kitti_share`, mixed as study_mix does."""
    kitti_train, kitti_val = split_holdout(kitti, val_fraction, seed, "KITTI")
    sim = {"vkitti2_clone": clone, **{f"vkitti2_{w}": part for w, part in weather_sets.items()}}
    if kitti_share is not None:
        kitti_train, sim = study_mix(kitti_train, sim, kitti_share, seed)
    return {"kitti": kitti_train, **sim}, ("kitti", kitti_val)


def study_mix(kitti: IngestResult, sim: Parts, kitti_share: float, seed: int
              ) -> tuple[IngestResult, Parts]:
    """The original study's interleaving: KITTI is `kitti_share` of the training frames (1/7:
    one in seven), vKITTI2 the rest. KITTI is subsampled (seeded) to fit; if it has too few
    frames, every vKITTI2 part is subsampled by the same factor instead (as the study did when
    it ran out of real frames), so each weather keeps its weight."""
    rng = np.random.default_rng(seed)
    n_sim = sum(len(part.images) for part in sim.values())
    note = f"study mix: KITTI {kitti_share:.4f} of the training frames, seed {seed}"

    def sample(part: IngestResult, size: int) -> IngestResult:
        ids = np.array(sorted(part.images["image_id"]))
        chosen = rng.choice(ids, size=min(size, len(ids)), replace=False)
        return select_images(part, chosen.tolist(), note)

    wanted = round(n_sim * kitti_share / (1 - kitti_share))
    if wanted <= len(kitti.images):
        return sample(kitti, max(1, wanted)), sim
    keep = len(kitti.images) * (1 - kitti_share) / kitti_share / n_sim
    return kitti, {name: sample(part, max(1, round(len(part.images) * keep)))
                   for name, part in sim.items()}


def bdd100k_parts(bdd: IngestResult, val_fraction: float, seed: int
                  ) -> tuple[Parts, tuple[str, IngestResult]]:
    """The oracle's training set: BDD100K train frames only (val frames are never touched)."""
    ids = bdd.images.loc[bdd.images["split"] == "train", "image_id"]
    if len(ids) < 2:
        raise UserError(
            f"dataset.train_on: bdd100k needs labelled BDD100K train frames, the manifest has "
            f"{len(ids)} (sample world: raise data.sample.bdd_train_frames_per_weather)")
    train, val = split_holdout(select_images(bdd, ids, "BDD100K train frames"), val_fraction,
                               seed, "BDD100K train")
    return {"bdd100k": train}, ("bdd100k", val)


def split_holdout(part: IngestResult, val_fraction: float, seed: int, name: str
                  ) -> tuple[IngestResult, IngestResult]:
    """A seeded random share of `part`'s images (at least one) held out for validation."""
    ids = np.array(sorted(part.images["image_id"]))
    n_val = max(1, round(len(ids) * val_fraction))
    if n_val >= len(ids):
        raise UserError(f"dataset.val_fraction: {val_fraction} holds out all {len(ids)} {name} "
                         f"frames, none are left to train on")
    val_ids = set(np.random.default_rng(seed).permutation(ids)[:n_val].tolist())
    train_ids = [i for i in ids.tolist() if i not in val_ids]
    return (select_images(part, train_ids, f"{name} train share"),
            select_images(part, val_ids, f"{name} held-out validation share"))


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
