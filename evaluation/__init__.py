"""Exact, fast, bucketed detection evaluation (COCO AP, pycocotools-identical, vectorised).

In the graph: `evaluate(images, gt, predictions, cfg)` then `write_outputs(result, out_dir)`.
Standalone: `python -m evaluation --gt GT.json --pred PRED.json --out metrics.json`.
"""

from evaluation.core import EvalConfig, EvalResult, evaluate
from evaluation.errors import EvalInputError
from evaluation.predictions import load_predictions
from evaluation.report import write_outputs

__all__ = ["EvalConfig", "EvalInputError", "EvalResult", "evaluate", "load_predictions",
           "write_outputs"]
