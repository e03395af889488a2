"""Stage `train_detector`: YOLO from scratch on the built dataset, resumable.

outputs/detector/run is persistent scratch (ultralytics' run dir with last.pt): a killed stage
resumes from its last epoch. The finished weights and the DVCLive curves are then published
atomically to outputs/detector/model and outputs/detector/dvclive.
"""

from __future__ import annotations

import shutil

from detection import train_detector
from pipeline.common import DATASET, DETECTOR, atomic_dir, run_stage
from pipeline.params import load_params


def main(argv: list[str]) -> None:
    params = load_params()
    run_dir = DETECTOR / "run"
    live_dir = run_dir / "dvclive"
    best = train_detector(DATASET / "data.yaml", run_dir, params.detector, live_dir)
    with atomic_dir(DETECTOR / "model") as tmp:
        shutil.copy2(best, tmp / "best.pt")
    with atomic_dir(DETECTOR / "dvclive") as tmp:
        shutil.copytree(live_dir, tmp, dirs_exist_ok=True)
    print(f"train_detector: weights at {DETECTOR / 'model' / 'best.pt'}")


if __name__ == "__main__":
    run_stage(main)
