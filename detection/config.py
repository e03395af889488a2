"""The detector's params (`detector` in params.yaml), as one plain typed dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from common.config import ParamError, check_int, check_range


@dataclass
class DetectorConfig:
    # --- model and training (ultralytics names and, unless noted, ultralytics defaults) ---
    model: str = "yolov5n.yaml"  # an architecture yaml: trained from scratch, nothing downloaded
    epochs: int = 40
    imgsz: int = 320
    batch: int = 16
    nbs: int = 64  # nominal batch: gradients are accumulated up to it before a step; tiny
    # datasets learn faster with nbs = batch (one optimizer step per batch)
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto = cuda if available, else cpu
    workers: int = 0  # ultralytics forces 0 on CPU anyway; 0 keeps CPU runs reproducible
    patience: int = 100  # early stop after this many epochs without val fitness improvement
    optimizer: Literal["auto", "SGD", "AdamW", "Adam"] = "auto"  # auto: AdamW for short runs
    lr0: float = 0.01  # ignored by optimizer=auto, which picks its own
    mosaic: float = 1.0
    close_mosaic: int = 10  # last N epochs without mosaic
    rect: bool = False  # rectangular train batches: 320x97 frames train at 320x128, not
    # 320x320 (~1.5x faster epochs on CPU), but without mosaic and without shuffling
    cache: bool = False  # keep decoded training images in RAM (never 'disk': it writes .npy
    # files into the dataset, which is another stage's output)
    amp: bool = True  # mixed precision on CUDA only (bf16, see train.py); CPU is always fp32
    plots: bool = False  # ultralytics' own PNG plots in the run dir (slow on CPU; curves go
    # to DVCLive either way)
    # --- prediction ---
    conf: float = 0.001  # score threshold: low, since AP needs the whole PR curve
    iou: float = 0.6  # NMS IoU
    max_det: int = 100  # per image, as in COCO AP

    def __post_init__(self) -> None:
        for name in ("epochs", "imgsz", "batch", "nbs", "max_det"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("workers", "patience", "close_mosaic"):
            check_int(name, getattr(self, name), minimum=0)
        if self.imgsz % 32:
            raise ParamError(f"imgsz: must be a multiple of 32 (the model's largest stride), "
                             f"got {self.imgsz}")
        for name in ("conf", "iou", "mosaic"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        if not self.lr0 > 0:
            raise ParamError(f"lr0: must be > 0, got {self.lr0!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ParamError(f"device: must be one of auto, cpu, cuda; got {self.device!r}")
        if not self.model.endswith((".yaml", ".yml")):
            raise ParamError(
                f"model: must be an architecture yaml such as yolov5n.yaml (training is "
                f"from scratch, no pretrained weights exist offline), got {self.model!r}"
            )
