"""Stage `ingest`: read KITTI, vKITTI2 and BDD100K into the unified manifest.

With `data.source: sample` it first writes the built-in sample world (in the real layouts) under
outputs/ingest/sample_world, then reads it with the same readers as the real downloads, and its
detector pretraining frames (data.sample.pretrain_frames) into outputs/ingest/pretrain, with
their files' hashes (stage pretrain_detector's only data dependency).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from common.files import atomic_dir, atomic_write_text, file_sha256
from data import IngestResult, write_manifest
from data.bdd100k import read_bdd100k
from data.kitti import read_kitti_detection, read_kitti_tracking
from data.sample import SampleWorld, write_sample_world
from data.vkitti2 import read_vkitti2
from pipeline.common import INGEST, PRETRAIN_HASHES, PRETRAIN_SET, SAMPLE_WORLD, run_stage
from pipeline.params import Params, RealPaths, load_params


def main(argv: list[str]) -> None:
    params = load_params()
    with atomic_dir(INGEST) as tmp:
        results = {}
        if params.data.source == "sample":
            # the world has its own seed (data.sample.seed): the top-level `seed` varies training
            written = write_sample_world(tmp / SAMPLE_WORLD.relative_to(INGEST),
                                         params.data.sample)
            roots = sample_world_roots(written)
            if params.data.sample.pretrain_frames:  # in KITTI's layout: the KITTI reader reads it
                results[PRETRAIN_SET] = read_kitti_detection(written.pretrain_root,
                                                              params.classes.kitti)
                write_tree_sha256(written.pretrain_root, tmp / PRETRAIN_SET / PRETRAIN_HASHES)
        else:
            roots = params.data.real
        for name, result in {**read_all(params, roots), **results}.items():
            if params.data.source == "sample":
                result = _point_at_final_location(result, tmp)
            write_manifest(result, tmp / name)
            _print_summary(name, result)
        if PRETRAIN_SET not in results:  # the folder stage pretrain_detector depends on
            atomic_write_text(tmp / PRETRAIN_SET / "NONE.txt",
                              "no detector pretraining frames (data.sample.pretrain_frames: 0, "
                              "or data.source: real)\n")


def write_tree_sha256(root: Path, out: Path) -> None:
    """`sha256sum`'s lines for every file under root (paths relative to it, sorted): a file that
    changes when any of them does, so a stage can depend on it instead of on the tree."""
    lines = [f"{file_sha256(f)}  {f.relative_to(root).as_posix()}"
             for f in sorted(Path(root).rglob("*")) if f.is_file()]
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, "".join(line + "\n" for line in lines))


def sample_world_roots(world: SampleWorld) -> RealPaths:
    """A written sample world's dataset roots, in the shape of the real downloads' params."""
    return RealPaths(
        kitti_root=str(world.kitti_root),
        vkitti2_root=str(world.vkitti2_root),
        bdd100k_images=str(world.bdd100k_images),
        bdd100k_labels_train=str(world.bdd100k_labels_train),
        bdd100k_labels_val=str(world.bdd100k_labels_val),
    )


BDD_SPLITS = ("train", "val")


def read_all(params: Params, roots: RealPaths) -> dict[str, IngestResult]:
    bdd_splits = [read_bdd_split(params, roots, split) for split in BDD_SPLITS]
    bdd = IngestResult(
        images=pd.concat([r.images for r in bdd_splits], ignore_index=True),
        objects=pd.concat([r.objects for r in bdd_splits], ignore_index=True),
        report=dict(zip(BDD_SPLITS, (r.report for r in bdd_splits), strict=True)),
    )
    return {"kitti": read_kitti(params, roots), "vkitti2": read_vkitti2_selection(params, roots),
            "bdd100k": bdd}


def read_kitti(params: Params, roots: RealPaths) -> IngestResult:
    """KITTI as the params ask (object or tracking layout); `python -m pipeline.check` reads
    each dataset through these functions too, so the check and the run read alike."""
    allow = params.data.allow_symlinks_outside_root
    if roots.kitti_format == "tracking":
        return read_kitti_tracking(Path(roots.kitti_root), params.classes.kitti,
                                   sequences=roots.kitti_tracking_sequences,
                                   allow_outside_root=allow)
    return read_kitti_detection(Path(roots.kitti_root), params.classes.kitti,
                                allow_outside_root=allow)


def read_vkitti2_selection(params: Params, roots: RealPaths) -> IngestResult:
    """The vKITTI2 scenes, variations and cameras `data.vkitti2` selects."""
    selection = params.data.vkitti2
    return read_vkitti2(
        Path(roots.vkitti2_root),
        params.classes.vkitti2,
        textgt_root=Path(roots.vkitti2_textgt_root) if roots.vkitti2_textgt_root else None,
        scenes=selection.scenes,
        variations=selection.variations,
        cameras=selection.cameras,
        stride=selection.stride,
        occupancy_threshold=selection.occupancy_threshold,
        allow_outside_root=params.data.allow_symlinks_outside_root,
    )


def bdd_labels(roots: RealPaths, split: str) -> str:
    return roots.bdd100k_labels_train if split == "train" else roots.bdd100k_labels_val


def read_bdd_split(params: Params, roots: RealPaths, split: str) -> IngestResult:
    """One BDD100K split: its labels file and the images under images/100k/<split>."""
    return read_bdd100k(Path(bdd_labels(roots, split)), Path(roots.bdd100k_images),
                        params.classes.bdd100k, split,
                        allow_outside_root=params.data.allow_symlinks_outside_root)


def _point_at_final_location(result: IngestResult, tmp: Path) -> IngestResult:
    """Paths were read under the temp dir; after the rename they live under outputs/ingest.

    The reports name the dataset roots too: left with the temp dir's random name, they would
    also give every re-run a new outputs/ingest hash, and DVC would re-run every later stage."""
    temp_prefixes = (str(tmp.resolve()), str(tmp))

    def moved(path: str) -> str:
        for prefix in temp_prefixes:
            if path.startswith(prefix):
                return _repo_relative(str(INGEST.resolve()) + path[len(prefix):])
        return path

    images = result.images.copy()
    images["path"] = images["path"].map(lambda p: moved(str(Path(p).resolve())))
    return IngestResult(images=images, objects=result.objects,
                        report=_map_strings(result.report, moved))


def _map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """`value` (nested dicts, lists and strings) with `change` applied to every string."""
    if isinstance(value, dict):
        return {key: _map_strings(item, change) for key, item in value.items()}
    if isinstance(value, list):
        return [_map_strings(item, change) for item in value]
    return change(value) if isinstance(value, str) else value


def _repo_relative(path: str) -> str:
    try:
        return str(Path(path).relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


def _print_summary(name: str, result: IngestResult) -> None:
    objects = result.objects
    kept = int((~objects["ignore"]).sum()) if len(objects) else 0
    print(f"ingest {name}: {len(result.images)} images, {kept} boxes, "
          f"{len(objects) - kept} ignore regions (report: {INGEST / name / 'report.json'})")


if __name__ == "__main__":
    run_stage(main)
