"""Exact, fast, bucketed detection evaluation (COCO AP, pycocotools-identical, vectorised).

The stage and the CLI both call `run_evaluation(images, gt, predictions, cfg, out_dir)`
(evaluation/run.py): `evaluate` computes, `write_outputs` writes and renders report.md.
Standalone: `python -m evaluation --gt GT.json --pred PRED.json --out metrics.json`.
"""

from evaluation.config import EvalConfig
from evaluation.core import EvalResult, evaluate
from evaluation.errors import EvalInputError
from evaluation.predictions import load_predictions
from evaluation.report import write_outputs
from evaluation.run import run_evaluation

__all__ = ["EvalConfig", "EvalInputError", "EvalResult", "evaluate", "load_predictions",
           "run_evaluation", "write_outputs"]
