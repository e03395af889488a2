"""What every stage module shares: output paths and the one way a stage ends on bad input."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

from common.errors import UserError

OUTPUTS = Path("outputs")
INGEST = OUTPUTS / "ingest"
SAMPLE_WORLD = INGEST / "sample_world"  # data.source: sample writes its world here
PRETRAIN_SET = "pretrain"  # ... and the manifest of its detector pretraining frames, INGEST / this
# ... beside it, every pretraining file's sha256: stage pretrain_detector depends on that folder
# alone, so a new BDD100K or KITTI count (the oracle's) does not re-pretrain
PRETRAIN_HASHES = "frames.sha256"
TRANSLATORS = OUTPUTS / "translators"
TRANSLATE = OUTPUTS / "translate"
DATASET = OUTPUTS / "dataset"
DETECTOR = OUTPUTS / "detector"
DETECTOR_WEIGHTS = DETECTOR / "model" / "best.pt"  # the DVC artifact `detector` (dvc.yaml)
PREDICT = OUTPUTS / "predict"
EVAL = OUTPUTS / "eval"
GAP_JSON = OUTPUTS / "gap" / "gap.json"  # stage gap's only file; also a metric in dvc.yaml
# stage gap_reference's only file, gap.reference_model's default (evaluation/config.py)
GAP_REFERENCE = OUTPUTS / "gap_reference" / "seeded-yolov5n.pt"
PLOTS = OUTPUTS / "plots"
# Resume state of the long trainings (translator checkpoints, ultralytics' run dir with
# last.pt). Deliberately NOT a DVC out: DVC never restores a stage with a `persist: true` out from
# its run-cache, so declaring it would make every return to an already-run param set re-train.
# Left here, it survives a killed run (DVC only deletes declared outs), and each trainer checks
# that a checkpoint belongs to the same params and data before resuming from it.
RESUME = OUTPUTS / "resume"
TRANSLATOR_CHECKPOINTS = RESUME / "translators"
DETECTOR_RUN = RESUME / "detector"
PRETRAIN_RUN = RESUME / "pretrain"  # stage pretrain_detector's dataset and ultralytics run dir


def run_stage(main: Callable[[list[str]], None]) -> None:
    """Run a stage; a UserError (bad input or params) ends it with one line and exit code 2.
    Any other exception is a bug and keeps its traceback."""
    # our packages' progress notes (e.g. "resuming detector training from ...") on stderr
    logging.basicConfig(format="%(name)s: %(message)s", level=logging.WARNING)
    for package in ("common", "data", "translators", "detection", "evaluation"):
        logging.getLogger(package).setLevel(logging.INFO)
    try:
        main(sys.argv[1:])
    except UserError as err:
        name = Path(sys.argv[0]).stem
        print(f"error in stage {name}: {err}", file=sys.stderr)
        sys.exit(2)
