"""What a run will cost before it runs: frames per stage, disk per stage, GPU-hours.

`python -m pipeline.preset presets/original_study.yaml --plan` (or `python -m pipeline.plan`
for params.yaml alone) reads the data as `pipeline.check` does and works out, for those params:

- frames: counted from the data found; the detector's training set is data/mix.py's own
  selection (the function build_dataset calls), applied to the frames found;
- disk: each stage's outputs, per-frame sizes times the real counts. A translated frame is a
  JPEG at quality 95 of a clone frame's size: the mean file size of the clone frames found;
  a GAN translator's out, its generator's parameters (built from its config) x 4 bytes.
  The rest are constants measured once (below, with the command that measured them);
- GPU-hours: the README's V100 table ("GPU-hours: an estimate, not a measurement"), scaled by
  image-steps. No GPU has measured them yet, so every figure is labelled an estimate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from common.weathers import BDD_WEATHER
from data.manifest import IngestResult
from data.mix import bdd100k_parts, sim2real_parts
from data.vkitti2 import variation_frames
from pipeline.check import DataCheck
from pipeline.params import Params
from translators import base as translators
from translators.cyclegan.config import GANConfig
from translators.cyclegan.data import iterations_per_epoch
from translators.cyclegan.networks import (
    build_generator,
    build_resnet_generator,
    count_parameters,
)

# Measured 2026-12-07, 14:46-14:52 UTC, by the code now in bench/manifest_bytes.py: the sample
# world of params.yaml's data.sample read by ingest's read_all and written by write_manifest gives
# 236,834 bytes (images.parquet + objects.parquet + report.json) for 1,144 frames and 8,417
# boxes: 207 a frame (KITTI 249, vKITTI2 75, BDD100K 344). Parquet's fixed overhead makes this
# an upper bound for the real datasets' larger manifests.
MANIFEST_BYTES_PER_FRAME = 207
# One small file takes a file-system block (ext4: 4 KiB) whatever its ~39 bytes a box.
LABEL_FILE_BYTES = 4096
# detection.predict.write_scalabel on 1,000 boxes of float32 coordinates and scores
# (2026-12-07): bytes a box in predictions.json. predict keeps up to detector.max_det a frame.
PREDICTION_BYTES_PER_BOX = 176
# outputs/translators/<W> holds the generator's float32 state dict (translators/generator.py)
GENERATOR_BYTES_PER_PARAMETER = 4
# checkpoints a detector run keeps: best.pt and last.pt, and in outputs/resume/detector
# ultralytics' last.pt and its atomic copy
CHECKPOINTS_KEPT = 4

# The README's table (bench/recipe_cost.py on the 2-core CPU, 2026-12-02, FLOP ratio to
# YOLOv5l's published V100 cost): V100-hours for the work described.
ESTIMATE_SOURCE = ("estimate (scaled from CPU timings: README \"GPU-hours: an estimate, not a "
                   "measurement\", FLOP column; no GPU measurement yet)")
TRANSLATOR_V100 = (60.0, 3.19e6)  # CycleGAN reference sizes: hours, image-iterations
DETECTOR_V100 = {"yolov5l6": 52.0, "yolov5m": 24.0}  # at 1280 px for DETECTOR_STEPS
DETECTOR_STEPS = 300 * (9_921 + 1_496 / 3)  # 300 epochs x (train + val / 3) frames
DETECTOR_IMGSZ = 1280


@dataclass
class Row:
    stage: str
    frames: str
    disk: int | None  # bytes of the stage's outputs; None: not estimated
    gpu_hours: float | None
    note: str = ""


def plan(params: Params, check: DataCheck) -> list[Row]:
    """One row per stage (per weather where the stage runs per weather)."""
    kitti, vkitti2 = check.result("kitti"), check.result("vkitti2")
    bdd_train, bdd_val = check.result("bdd100k train"), check.result("bdd100k val")
    assert kitti and vkitti2 and bdd_train and bdd_val, "plan needs a check without problems"
    clone = variation_frames(vkitti2, "clone")
    frame_bytes = _mean_file_size(clone.images["path"])
    translator = translators.get(params.translator)
    weather_sets = {w: clone if translator.frames == "clone" else variation_frames(vkitti2, w)
                    for w in params.weathers}
    everything = len(kitti.images) + len(vkitti2.images) + len(bdd_train.images) + len(
        bdd_val.images)
    rows = [Row("ingest", f"KITTI {len(kitti.images)}, vKITTI2 {len(vkitti2.images)} "
                f"({_variations(vkitti2)}), BDD100K train {len(bdd_train.images)}, val "
                f"{len(bdd_val.images)}", everything * MANIFEST_BYTES_PER_FRAME, None,
                "manifests only: frames stay in the downloads")]
    for weather in params.weathers:
        rows.append(_translator_row(params, translator, weather, len(clone.images), bdd_train))
    for weather, frames in weather_sets.items():
        written = translator.frames == "clone"
        rows.append(Row(f"translate@{weather}", f"{len(frames.images)}"
                        + (" clone frames translated" if written else " rendered, linked"),
                        len(frames.images) * (frame_bytes + MANIFEST_BYTES_PER_FRAME)
                        if written else len(frames.images) * MANIFEST_BYTES_PER_FRAME, None,
                        f"JPEG q95, {_size(frame_bytes)} a frame (the clone frames' mean)"
                        if written else ""))
    parts = _training_set(params, kitti, clone, weather_sets, bdd_train)
    train = sum(len(p.images) for name, p in parts.items() if name != "val")
    val = len(parts["val"].images)
    translated = {f"vkitti2_{w}" for w in weather_sets} if translator.frames == "clone" else set()
    raw = [part for name, part in parts.items() if name not in translated]
    linked = sum(_file_sizes(p.images["path"]) for p in raw)
    rows.append(Row("build_dataset", f"train {train}, val {val}",
                    (train + val) * LABEL_FILE_BYTES, None,
                    "label files; images hard-linked, not copied; the downloads' frames it "
                    f"links: {_size(linked)}"))
    rows.append(_detector_row(params, train, val))
    max_det = params.detector.max_det
    rows.append(Row("predict", f"BDD100K val {len(bdd_val.images)}",
                    len(bdd_val.images) * max_det * PREDICTION_BYTES_PER_BOX, None,
                    f"at most {max_det} boxes a frame"))
    rows.append(Row("evaluate", f"BDD100K val {len(bdd_val.images)}", None, None,
                    "tables and plots (not estimated: a few MB)"))
    return rows


def _mean_file_size(paths: pd.Series) -> int:
    sizes = [os.path.getsize(p) for p in paths if os.path.isfile(p)]
    return round(sum(sizes) / len(sizes)) if sizes else 0


def _file_sizes(paths: pd.Series) -> int:
    return sum(os.path.getsize(p) for p in paths if os.path.isfile(p))


def _variations(vkitti2: IngestResult) -> str:
    counts = vkitti2.images["variation"].value_counts()
    return ", ".join(f"{v} {n}" for v, n in sorted(counts.items()))


def _translator_row(params: Params, translator: translators.Translator, weather: str,
                    n_clone: int, bdd_train: IngestResult) -> Row:
    n_target = int((bdd_train.images["weather"] == BDD_WEATHER[weather]).sum())
    frames = f"{n_clone} clone + {n_target} BDD100K {BDD_WEATHER[weather]}"
    cfg = params.translator_config()
    if not isinstance(cfg, GANConfig):  # none, fda, weatherfx, nst: no training loop
        return Row(f"translator_train@{weather}", frames, None, 0.0 if params.translator in (
            "none", "fda", "weatherfx") else None, f"{params.translator}: no training loop")
    epochs = cfg.n_epochs + cfg.n_epochs_decay
    # the GAN loop's own epoch length (translators/cyclegan/data.py), in images
    images = epochs * iterations_per_epoch(n_clone, n_target, cfg.batch_size) * cfg.batch_size
    hours, reference_images = TRANSLATOR_V100
    generator = build_generator(cfg) if hasattr(cfg, "netG") else build_resnet_generator(cfg)
    weights = GENERATOR_BYTES_PER_PARAMETER * count_parameters(generator)
    note = f"{epochs} epochs x max(clone, target) frames; the generator's weights"
    if params.translator != "cyclegan":
        note += f"; CycleGAN's rate ({params.translator} not measured)"
    return Row(f"translator_train@{weather}", frames, weights,
               hours * images / reference_images, note)


def _training_set(params: Params, kitti: IngestResult, clone: IngestResult,
                  weather_sets: dict[str, IngestResult], bdd_train: IngestResult
                  ) -> dict[str, IngestResult]:
    """The parts build_dataset would export (data/mix.py's own selection), its val as "val"."""
    dataset = params.dataset
    if dataset.train_on == "bdd100k":
        parts, (_, val) = bdd100k_parts(bdd_train, dataset.val_fraction, params.seed)
    else:
        parts, (_, val) = sim2real_parts(kitti, clone, weather_sets, dataset.val_fraction,
                                         params.seed, dataset.kitti_share)
    return {**parts, "val": val}


def _detector_row(params: Params, train: int, val: int) -> Row:
    cfg = params.detector
    steps = cfg.epochs * (train + val / 3)  # ultralytics validates every epoch: ~1/3 a step
    frames = f"{train} + {val} val, x {cfg.epochs} epochs"
    model = Path(cfg.model)
    disk = CHECKPOINTS_KEPT * model.stat().st_size if model.suffix == ".pt" and \
        model.is_file() else None
    disk_note = f"{CHECKPOINTS_KEPT} checkpoints the size of {model.name}" if disk else \
        f"checkpoints not estimated ({model} not here)"
    base = DETECTOR_V100.get(model.stem.removesuffix("u"))
    if base is None:
        return Row("train_detector", frames, disk, None,
                   f"{disk_note}; no GPU figure for {model.name}: bench/recipe_cost.py")
    hours = base * steps / DETECTOR_STEPS * (cfg.imgsz / DETECTOR_IMGSZ) ** 2
    return Row("train_detector", frames, disk, hours, f"{disk_note}; at {cfg.imgsz} px")


def format_plan(rows: list[Row], title: str) -> str:
    """A markdown table, then the totals and where the GPU figures come from."""
    lines = [title, "", "| stage | frames | disk | V100-hours | note |", "|---|---|---:|---:|---|"]
    for row in rows:
        lines.append(f"| {row.stage} | {row.frames} | {_size(row.disk)} | "
                     f"{_hours(row.gpu_hours)} | {row.note} |")
    disk = sum(r.disk or 0 for r in rows)
    hours = sum(r.gpu_hours or 0 for r in rows)
    lines += ["", f"disk: {_size(disk)} of outputs (stages not estimated left out). The DVC "
              "cache hard-links them (.dvc/config cache.type), ~0 more on one file system; with "
              "the downloads on another file system build_dataset symlinks their frames, and "
              "DVC's cache may hold a copy of them (build_dataset's note: the frames it links)",
              f"GPU: {hours:.1f} V100-hours for the stages with a figure; {ESTIMATE_SOURCE}. "
              "Divide by your GPU's speed-up over a V100."]
    return "\n".join(lines)


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _hours(hours: float | None) -> str:
    return "-" if hours is None else f"{hours:.2f}" if hours < 10 else f"{hours:.0f}"
