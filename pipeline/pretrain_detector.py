"""Stage `pretrain_detector`: the weights every detector run starts from on the sample world.

The real recipe fine-tunes COCO-pretrained YOLOv5; the sample world has no COCO, so it writes its
own stand-in (data.sample.pretrain_frames: photographic street frames in clear daylight, apart
from every dataset) and this stage trains `pretrain.model` on them once, with `pretrain.seed`
and the detector's frame size and batching. With `detector.model: outputs/pretrain/model.pt`
every run then starts from these weights whatever its translator and seed: the runs of a study
differ in what they are trained on, not in where training starts (README: "A world that can tell
translators apart"). The stage's params leave out the run's `seed`, the translator and
`detector.epochs`, so every experiment of a study gets the same file from the run-cache.

With `pretrain.epochs: 0` (the real datasets) it writes only a note saying so.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from common.files import atomic_dir, file_sha256
from data import read_manifest
from data.mix import split_holdout
from data.yolo import export_yolo, write_data_yaml
from detection import train_detector
from detection.config import PRETRAIN_CHECKPOINT, DetectorConfig
from detection.model_source import check_detector_model
from pipeline.common import INGEST, PRETRAIN_HASHES, PRETRAIN_RUN, PRETRAIN_SET, run_stage
from pipeline.params import Params, load_params

PRETRAIN_OUT = Path(PRETRAIN_CHECKPOINT).parent


def main(argv: list[str]) -> None:
    params = load_params()
    cfg = params.pretrain
    if not cfg.epochs:
        with atomic_dir(PRETRAIN_OUT) as tmp:
            (tmp / "NOT_PRETRAINED.txt").write_text(
                "pretrain.epochs is 0: no checkpoint (detector.model names its own start)\n")
        print("pretrain_detector: pretrain.epochs is 0, nothing trained")
        return
    detector = pretrain_recipe(params)
    check_detector_model(detector.model, detector.imgsz)
    data_yaml = export_pretrain_set(params)
    best = train_detector(data_yaml, PRETRAIN_RUN / "detector", detector,
                          PRETRAIN_RUN / "dvclive", seed=cfg.seed)
    with atomic_dir(PRETRAIN_OUT) as tmp:
        shutil.copy2(best, tmp / Path(PRETRAIN_CHECKPOINT).name)
    print(f"pretrain_detector: {cfg.epochs} epochs of {cfg.model}, weights at "
          f"{PRETRAIN_CHECKPOINT}")


# what the pretraining takes from `detector` (dvc.yaml lists exactly these); the rest of its
# recipe is DetectorConfig's defaults, so a change to the runs' optimiser or augmentation does
# not re-pretrain
SHARED_WITH_DETECTOR = ("imgsz", "batch", "nbs", "device", "workers", "rect")


def pretrain_recipe(params: Params) -> DetectorConfig:
    """The pretraining's DetectorConfig: `pretrain.model` from scratch for `pretrain.epochs`
    (no early stop), with the frame size, batching and device of the detector's runs."""
    shared = {key: getattr(params.detector, key) for key in SHARED_WITH_DETECTOR}
    return DetectorConfig(model=params.pretrain.model, epochs=params.pretrain.epochs,
                          patience=params.pretrain.epochs, **shared)


def export_pretrain_set(params: Params) -> Path:
    """The pretraining frames in YOLO layout with a seeded held-out share (dataset.val_fraction)
    for ultralytics' best-epoch choice; returns its data.yaml. Written once per content into its
    own folder under outputs/resume, so that a killed stage resumes its training (a rewritten
    dataset would look like a new one to detection.train)."""
    frames = read_manifest(INGEST / PRETRAIN_SET)
    names = params.classes.names
    key = {"manifest": [file_sha256(INGEST / PRETRAIN_SET / f)
                        for f in ("images.parquet", "objects.parquet", PRETRAIN_HASHES)],
           "names": names, "val_fraction": params.dataset.val_fraction,
           "seed": params.pretrain.seed}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    out = PRETRAIN_RUN / f"dataset-{digest}"
    if not (out / "data.yaml").is_file():
        for old in PRETRAIN_RUN.glob("dataset-*"):
            shutil.rmtree(old)
        train, val = split_holdout(frames, params.dataset.val_fraction, params.pretrain.seed,
                                   "pretraining")
        with atomic_dir(out) as tmp:
            export_yolo([train], names, tmp, "train")
            export_yolo([val], names, tmp, "val")
            write_data_yaml(tmp, names, {"train": "images/train", "val": "images/val"})
    return out / "data.yaml"


if __name__ == "__main__":
    run_stage(main)
