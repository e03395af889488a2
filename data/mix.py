"""Which frames the detector trains and validates on (stage build_dataset).

train = KITTI (minus a held-out share) + vKITTI2 clone + the weather sets (vKITTI2's rendered
weather for the baseline, translated clone frames otherwise); with `kitti_share` (1/7 in the
original study's recipe) mixed so that that share of the training frames is real.
val = the held-out KITTI frames: ultralytics picks its best epoch on real frames without ever
seeing BDD100K val, which stays the untouched test set.
The oracle (`dataset.train_on: bdd100k`) trains on the BDD100K train frames instead (a share held
out as val): the in-domain upper bound that tells how much of the gap is left.
"""

from __future__ import annotations

import numpy as np

from common.errors import UserError
from data.manifest import IngestResult, select_images

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
