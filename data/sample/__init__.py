"""The built-in procedural sample world: tiny KITTI, vKITTI2 and BDD100K look-alikes on disk.

Why it exists: the whole graph (ingest -> translate -> train -> evaluate) must run end to end
without the real downloads, and the demo must still mean something. So the three datasets are
written in their exact real formats and layouts (the real readers read them) from one 3-D road
world seen by a pinhole camera:

- geometry: vehicles are a few 3-D boxes each (car: low body + narrower cabin; van: tall box +
  short bonnet; truck: cab + long cargo box; bus: long box with a row of windows), drawn far to
  near, so they occlude each other the way real traffic does;
- labels: KITTI and BDD100K boxes are drawn around what stays visible (as their annotators do),
  vKITTI2 boxes around the whole silhouette clipped to the image (its renderer's projection);
  occlusion comes from the fraction of the silhouette still visible once everything nearer has
  been drawn;
- looks: vKITTI2 is flat-shaded "sim" with its own cheap weather variations; KITTI and BDD100K are
  "photographic" (textures, shading, sensor noise, blur, JPEG) and BDD's weather is physical
  (depth haze, slanted rain streaks + lens droplets + wet reflections, flat overcast light).

Everything is drawn from numpy Generators seeded per frame with the world's own seed
(`SampleConfig.seed`, params.yaml `data.sample.seed`), so the same config gives byte-identical
files, and changing one count does not reshuffle the other datasets. The float maths is bit-exact
across CPUs (exact.py: no SIMD-dispatched numpy or OpenCV float kernels), so a machine with AVX2
writes the same files as one with AVX-512 (tests/test_sample_world_exact.py).

Modules, in dependency order:

- config.py: SampleConfig, SampleWorld / world_paths, shared constants (label rules, weathers);
- exact.py: the float maths of the looks (blurs, resizes, exp) with the same bits on every CPU;
- camera.py: the pinhole camera and the KITTI / vKITTI2 / BDD100K cameras;
- things.py: vehicles, pedestrians, buildings, trees as 3-D parts; the vehicle catalogue;
- road.py: road layouts, the Frame, placement of traffic, pedestrians and scenery;
- projection.py: things -> image polygons; the label pass (boxes, occlusion, id / depth maps);
- looks.py: sim vs photographic painting, weather effects, the sensor;
- datasets.py: the KITTI, vKITTI2 and BDD100K writers (files, labels, occlusion buckets), and
  the `ideal` translator's renders of the vKITTI2 clone frames (ideal/, beside the datasets),
  and the detector's pretraining set (pretrain/, KITTI's layout: the sample world's COCO);
- overview.py: render_overview, the README picture of a written world;
- this file: write_sample_world, the entry point, and the public names re-exported.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from data.sample.camera import Camera
from data.sample.config import (
    BDD_BUCKETS,
    BDD_WEATHERS,
    STREAM_PRETRAIN,
    VKITTI2_VARIATIONS,
    SampleConfig,
    SampleWorld,
    ideal_frame_path,
    world_paths,
)
from data.sample.datasets import (
    bdd_labels,
    bdd_records,
    bucket_of,
    kitti_lines,
    n_occluded_vehicles,
    write_bdd,
    write_kitti,
    write_vkitti2,
)
from data.sample.overview import render_overview
from data.sample.projection import Seen, label_pass, paint_order
from data.sample.road import Frame, Road
from data.sample.things import Detail, Part, Thing

__all__ = [
    "BDD_BUCKETS",
    "BDD_WEATHERS",
    "VKITTI2_VARIATIONS",
    "Camera",
    "Detail",
    "Frame",
    "Part",
    "Road",
    "SampleConfig",
    "SampleWorld",
    "Seen",
    "Thing",
    "bdd_labels",
    "bdd_records",
    "bucket_of",
    "kitti_lines",
    "ideal_frame_path",
    "label_pass",
    "n_occluded_vehicles",
    "paint_order",
    "render_overview",
    "world_paths",
    "write_bdd",
    "write_kitti",
    "write_sample_world",
    "write_vkitti2",
]


# write_sample_world looks the writers up in this module, so a test can replace one here (with a
# module-level function: write_bdd runs in a spawned process, which imports it by name).
def write_sample_world(root: Path, cfg: SampleConfig) -> SampleWorld:
    """Write the whole sample world of `cfg` (its counts, width and own seed) under `root`,
    replacing it atomically, and say where it is."""
    root = Path(root).resolve()
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        # BDD100K, the longest part, in a second process while this one writes the rest: every
        # frame draws from its own seeded Generator, so the bytes do not depend on who writes
        # them. spawn, not fork: a forked child can inherit a lock held by a thread of a library
        # the parent used (OpenCV's, OpenMP's) and hang.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as beside:
            bdd = beside.submit(write_bdd, tmp / "bdd100k", cfg)
            write_kitti(tmp / "kitti", cfg)
            (tmp / "vkitti2").mkdir()
            write_vkitti2(tmp / "vkitti2", cfg, ideal_root=tmp / "ideal")
            if cfg.pretrain_frames:
                write_kitti(tmp / "pretrain", cfg, cfg.pretrain_frames, STREAM_PRETRAIN)
            bdd.result()
        _replace_dir(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return world_paths(root)


def _replace_dir(new: Path, target: Path) -> None:
    """Swap a finished directory into place; the old one is removed only after the swap."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / "world")
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
