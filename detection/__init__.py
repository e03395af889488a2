"""YOLO detector training and prediction through ultralytics, offline and reproducible.

Importing this package does not import ultralytics: `configure_ultralytics` (called by
`train_detector` and `predict`) must run first, see detection/env.py.
"""

from detection.config import DetectorConfig
from detection.env import configure_ultralytics
from detection.predict import predict, write_scalabel
from detection.train import held_out_metrics, train_detector, write_held_out

__all__ = [
    "DetectorConfig",
    "configure_ultralytics",
    "held_out_metrics",
    "predict",
    "train_detector",
    "write_held_out",
    "write_scalabel",
]
