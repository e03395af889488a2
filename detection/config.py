"""The detector's params (`detector` in params.yaml), as one plain typed dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from common.config import ParamError, check_int, check_range
from common.runtime import normalise_device


@dataclass
class DetectorConfig:
    # The one description of each knob. Names and defaults are ultralytics' own unless noted;
    # params.yaml sets the demo's sizes (tests/test_params_defaults.py lists where it differs).
    # --- model and training ---
    # an architecture yaml (trained from scratch; yolov5n6.yaml etc. are the P6 models, stride
    # 64) or a local checkpoint .pt (fine-tuned, re-headed to our classes; the stage wants it
    # under pretrained/, see detection/model_source.py). Nothing is downloaded.
    model: str = "yolov5n.yaml"
    epochs: int = 100
    imgsz: int = 640
    batch: int = 16
    nbs: int = 64  # nominal batch: gradients are accumulated up to it before a step; tiny
    # datasets learn faster with nbs = batch (one optimizer step per batch)
    # auto = GPU 0 if there is one, else cpu; cuda = GPU 0; "0,1,2,3" (or a list) = those GPUs
    # with ultralytics' DDP (batch is the total over them). Normalised to a string.
    device: str | int | list[int] = "auto"
    workers: int = 0  # ultralytics: 8, but it forces 0 on CPU anyway; on CUDA its workers are
    # seeded from `seed`, so 8 or so is reproducible and keeps a big GPU fed
    patience: int = 100  # early stop after this many epochs without val fitness improvement
    optimizer: Literal["auto", "SGD", "AdamW", "Adam"] = "auto"  # auto: AdamW for short runs
    lr0: float = 0.01  # ignored by optimizer=auto, which picks its own
    freeze: int = 0  # the first N layers keep their starting weights (ultralytics: None, the
    # same); 10 = YOLOv5's backbone, when fine-tuning: only the neck and head learn
    mosaic: float = 1.0
    close_mosaic: int = 10  # last N epochs without mosaic
    rect: bool = False  # rectangular train batches: 320x97 frames train at 320x128, not
    # 320x320 (~1.5x faster epochs on CPU), but without mosaic and without shuffling
    cache: bool = False  # true = ultralytics' cache 'ram': decoded training images in RAM
    # (never 'disk': it writes .npy files into the dataset, which is another stage's output)
    amp: bool = True  # mixed precision on CUDA only (bf16, see train.py); CPU is always fp32
    plots: bool = False  # ultralytics: true; its own PNG plots in the run dir (slow on CPU;
    # curves go to DVCLive either way)
    # --- prediction ---
    conf: float = 0.001  # score threshold (ultralytics: 0.25): low, since AP needs the whole PR
    # curve
    iou: float = 0.6  # NMS IoU (ultralytics: 0.7; 0.6 as YOLOv5's own val.py)
    max_det: int = 100  # per image (ultralytics: 300), as in COCO AP

    def __post_init__(self) -> None:
        for name in ("epochs", "imgsz", "batch", "nbs", "max_det"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("workers", "patience", "close_mosaic", "freeze"):
            check_int(name, getattr(self, name), minimum=0)
        # imgsz vs the model's largest stride (32, or 64 for P6) needs the model itself: checked
        # when params load (pipeline.params.check_detector_model) and when training starts
        for name in ("conf", "iou", "mosaic"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        if not self.lr0 > 0:
            raise ParamError(f"lr0: must be > 0, got {self.lr0!r}")
        self.device = normalise_device(self.device)
        if not self.model.lower().endswith((".yaml", ".yml", ".pt")):
            raise ParamError(
                f"model: must be an architecture yaml such as yolov5n.yaml (from scratch) or a "
                f"checkpoint .pt such as pretrained/yolov5mu.pt (fine-tuned), got {self.model!r}"
            )
        if self.rect and "," in self.device:  # ultralytics' DDP would turn it off with a warning
            raise ParamError(f"rect: true does not work on several GPUs (device {self.device}): "
                             "ultralytics' DDP shuffles and mosaics; set rect: false")



# Where stage pretrain_detector writes its checkpoint; dvc.yaml lists the folder as a dep of
# train_detector beside pretrained/ (detection/model_source.py allows checkpoints in both).
PRETRAIN_CHECKPOINT = "outputs/pretrain/model.pt"


@dataclass
class PretrainConfig:
    """`pretrain:` in params.yaml: stage pretrain_detector, the starting weights every detector
    run fine-tunes on the sample world (the real recipe starts from COCO weights instead).

    It trains `model` from scratch for `epochs` on the sample world's pretraining frames
    (data.sample.pretrain_frames) with its own `seed`, and the training recipe of `detector`
    (imgsz, batch, optimiser, augmentation, device); `detector.model:
    outputs/pretrain/model.pt` then starts from it. The training seed is not the run's `seed`:
    every arm and seed of a study starts from the same weights."""

    model: str = "yolov5n.yaml"  # an architecture yaml: what the pretraining trains from scratch
    epochs: int = 0  # 0 = no pretraining: the stage writes no checkpoint
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs, minimum=0, maximum=10_000)
        check_int("seed", self.seed, minimum=0)
        if not self.model.lower().endswith((".yaml", ".yml")):
            raise ParamError(f"model: must be an architecture yaml such as yolov5n.yaml (the "
                             f"pretraining starts from scratch), got {self.model!r}")
