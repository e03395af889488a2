"""Writing the sample world: write_sample_world (BDD100K in a second process) against the same
writers called one after another, in one run, and the two worlds' bytes compared.

    python bench/sample_world_speed.py               # params.yaml's data.sample (the demo's)
    python bench/sample_world_speed.py --scale 0.25  # every count a quarter: a quick look

reference = write_kitti, write_vkitti2 (with the ideal renders), write_bdd and the pretraining
            set, in this process, in that order: what write_sample_world did before.
ours      = write_sample_world.
Prints `sample_world_speed: reference=<s> ours=<s> speedup=<x> same_bytes=<bool>` (wall
seconds). The speedup is bounded by the BDD100K part's share: with 2 cores, at most
total / max(BDD, the rest).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.sample import (  # noqa: E402
    SampleConfig,
    write_bdd,
    write_kitti,
    write_sample_world,
    write_vkitti2,
)
from data.sample.config import STREAM_PRETRAIN  # noqa: E402
from pipeline.ingest import write_tree_sha256  # noqa: E402
from pipeline.params import load_params  # noqa: E402

COUNTS = ("kitti_frames", "vkitti2_scenes", "bdd_train_frames_per_weather",
          "bdd_val_frames_per_weather", "pretrain_frames")


def serial(root: Path, cfg: SampleConfig) -> None:
    write_kitti(root / "kitti", cfg)
    (root / "vkitti2").mkdir()
    write_vkitti2(root / "vkitti2", cfg, ideal_root=root / "ideal")
    write_bdd(root / "bdd100k", cfg)
    if cfg.pretrain_frames:
        write_kitti(root / "pretrain", cfg, cfg.pretrain_frames, STREAM_PRETRAIN)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every count")
    args = parser.parse_args()
    cfg = load_params().data.sample
    cfg = replace(cfg, **{k: max(1, round(getattr(cfg, k) * args.scale)) for k in COUNTS})
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        serial(Path(tmp) / "reference", cfg)
        reference = time.perf_counter() - start
        start = time.perf_counter()
        write_sample_world(Path(tmp) / "ours", cfg)
        ours = time.perf_counter() - start
        listings = []  # every file's relative path and sha256, as ingest records them
        for tree in ("reference", "ours"):
            write_tree_sha256(Path(tmp) / tree, Path(tmp) / f"{tree}.sha256")
            listings.append((Path(tmp) / f"{tree}.sha256").read_text())
        same = listings[0] == listings[1]
    print(f"sample_world_speed: reference={reference:.1f} ours={ours:.1f} "
          f"speedup={reference / ours:.2f} same_bytes={same}")


if __name__ == "__main__":
    main()
