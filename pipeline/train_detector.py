"""Stage `train_detector`: YOLO on the built dataset, from scratch or fine-tuned, resumable.

outputs/resume/detector is ultralytics' run dir (last.pt, results.csv), kept outside DVC's outs so
that the stage stays run-cacheable (pipeline/common.py): a killed stage resumes from its last
epoch. The finished weights and the DVCLive curves are published atomically to
outputs/detector/model and outputs/detector/dvclive. A checkpoint to fine-tune must lie under
pretrained/, the folder dvc.yaml lists as this stage's dep (pretrained/README.md says why).
"""

from __future__ import annotations

import shutil

from common.files import atomic_dir
from detection import train_detector
from detection.model_source import check_detector_model
from pipeline.common import DATASET, DETECTOR, DETECTOR_RUN, DETECTOR_WEIGHTS, run_stage
from pipeline.params import load_params


def main(argv: list[str]) -> None:
    params = load_params()
    check_detector_model(params.detector.model, params.detector.imgsz,
                         freeze=params.detector.freeze)
    live_dir = DETECTOR_RUN / "dvclive"
    best = train_detector(DATASET / "data.yaml", DETECTOR_RUN, params.detector, live_dir,
                          seed=params.seed)
    with atomic_dir(DETECTOR_WEIGHTS.parent) as tmp:
        shutil.copy2(best, tmp / DETECTOR_WEIGHTS.name)
    with atomic_dir(DETECTOR / "dvclive") as tmp:
        shutil.copytree(live_dir, tmp, dirs_exist_ok=True)
    print(f"train_detector: weights at {DETECTOR_WEIGHTS}")


if __name__ == "__main__":
    run_stage(main)
