"""Speed of the paired bootstrap (match once, re-weight) against the naive way, in one run.

    python bench/bootstrap_speed.py [--images 10000] [--boot 2000] [--naive 20]

World: bench/eval_speed.py's (10,000 images, ~30 GT and ~100 scored predictions each, 3
classes, many score ties), with a weather and a time-of-day column added so every bucket kind
of the metrics schema is there; two prediction sets ("runs"): the world's and a second one with
jittered scores.

ours  = bootstrap_buckets() for both runs: matching, then n_boot replicates of mAP50 and
        mAP50:95 in every bucket (images drawn within each bucket).
naive = what one would write without it: per replicate and bucket, the drawn image list written
        out (duplicates renamed apart) and evaluate() run on it, for both runs. --naive
        replicates are timed and the total extrapolated to n_boot.
Prints `bootstrap_speed: ours=<s> naive=<s> speedup=<x> peak_rss_gb=<v>` (wall seconds; peak
RSS of this process, which holds the world, both runs' matches and all replicates).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_speed import make_world  # noqa: E402

from evaluation.bootstrap import _bucket_masks, _draw_weights, bootstrap_buckets  # noqa: E402
from evaluation.core import EvalConfig, evaluate  # noqa: E402


def add_attributes(images: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return images.assign(
        weather=rng.choice(["clear", "rainy", "foggy", "overcast", "snowy"], len(images)),
        timeofday=rng.choice(["daytime", "night", "dawn/dusk"], len(images)))


def second_run(preds: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    jitter = np.round(np.clip(preds["score"] + rng.normal(0, 0.05, len(preds)), 0, 1), 2)
    return preds.assign(score=jitter.astype(np.float32).astype(np.float64))


def naive_replicate(images: pd.DataFrame, by_image: list[dict[str, pd.DataFrame]],
                    cfg: EvalConfig, masks: dict[str, np.ndarray],
                    rng: np.random.Generator) -> None:
    """One replicate the naive way: every bucket's draw written out and evaluated, every run.

    by_image: GT then each run's predictions, split by image_id (done once, not timed)."""
    names = images["image_id"].to_numpy()
    seen: set[bytes] = set()
    for mask in masks.values():
        signature = np.packbits(mask).tobytes()
        if signature in seen:
            continue
        seen.add(signature)
        members = names[mask]
        weights = _draw_weights(len(members), 1, rng)[0]
        drawn = np.repeat(members, weights)
        copy = np.concatenate([np.arange(w) for w in weights]) if len(drawn) else drawn
        new_names = np.char.add(np.char.add(drawn.astype(str), "#"), copy.astype(str))
        drawn_images = images.set_index("image_id").loc[drawn].reset_index()
        drawn_images["image_id"] = new_names
        tables = []
        for lookup in by_image:
            parts = [lookup[n].assign(image_id=new) for n, new in zip(drawn, new_names,
                                                                       strict=True) if n in lookup]
            tables.append(pd.concat(parts, ignore_index=True))
        for run in tables[1:]:
            evaluate(drawn_images, tables[0], run, cfg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--boot", type=int, default=2000)
    parser.add_argument("--naive", type=int, default=20,
                        help="naive replicates timed (0: time ours only)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    images, gt, preds, classes = make_world(args.images, 30, 100, 3, args.seed)
    images = add_attributes(images, args.seed)
    runs = [preds, second_run(preds, args.seed + 1)]
    cfg = EvalConfig(classes=classes)
    print(f"world: {len(images)} images, {len(gt)} GT, {len(preds)} predictions per run, "
          f"{len(runs)} runs, {args.boot} replicates", flush=True)

    head = images.head(50)
    bootstrap_buckets(head, gt[gt["image_id"].isin(head["image_id"])], runs, cfg, n_boot=2,
                      progress=False)  # compiles the kernel (cached on disk after the first run)
    start = time.perf_counter()
    samples = bootstrap_buckets(images, gt, runs, cfg, n_boot=args.boot, progress=False)
    ours = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"ours: {ours:.1f}s for {len(samples)} buckets x {len(runs)} runs x {args.boot} "
          f"replicates (mAP50 and mAP50:95)", flush=True)

    if not args.naive:
        return
    masks = _bucket_masks(images.sort_values("image_id").reset_index(drop=True), cfg)
    rng = np.random.default_rng(args.seed)
    by_image = [dict(tuple(table.groupby("image_id", sort=False))) for table in (gt, *runs)]
    naive_replicate(images, by_image, cfg, masks, rng)  # warm-up
    start = time.perf_counter()
    for _ in range(args.naive):
        naive_replicate(images, by_image, cfg, masks, rng)
    per_replicate = (time.perf_counter() - start) / args.naive
    naive = per_replicate * args.boot
    print(f"naive: {per_replicate:.2f}s per replicate (all buckets, both runs), "
          f"x {args.boot} = {naive:.0f}s", flush=True)
    print(f"bootstrap_speed: ours={ours:.1f} naive={naive:.0f} speedup={naive / ours:.0f} "
          f"peak_rss_gb={peak_gb:.2f}")


if __name__ == "__main__":
    main()
