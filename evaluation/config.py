"""The params of the evaluation package (`evaluation` and `gap` in params.yaml), apart from the
code that uses them: pipeline/params.py builds them in every stage, so this file, not the whole
package, is what every stage's DVC deps name (tests/test_dvc_deps.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from common.config import ParamError, check_int, check_range
from common.runtime import normalise_device

# paired-bootstrap replicates (evaluation/bootstrap.py): beyond this the intervals stop moving,
# while memory grows with it
MAX_REPLICATES = 20_000
STRIDE = 32  # gap features: every side a multiple of the detector's largest stride


def check_edges(edges: list[int]) -> list[int]:
    """Edges must be strictly increasing non-negative integers (upper bounds, inclusive)."""
    values = list(edges)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ParamError(f"occlusion_edges: {value!r} is not a whole number >= 0")
    if any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise ParamError(f"occlusion_edges: must be strictly increasing, got {values}")
    return [int(v) for v in values]


@dataclass
class EvalConfig:
    """params.yaml `evaluation`."""

    classes: list[str] = field(default_factory=lambda: ["car", "truck"])
    occlusion_edges: list[int] = field(default_factory=lambda: [5, 10])
    iou: float = 0.5  # the threshold of "map50" and of every bucket's AP and PR curve
    max_dets: int = 100  # per image and class, as COCO
    convention: Literal["coco", "bdd"] = "coco"  # bdd: box width x2 - x1 + 1 (BDD100K toolkit)
    # report.md's "what it finds" table (evaluation/recall.py): detections scoring at least
    # report_score, boxes split at report_small_height pixels
    report_score: float = 0.25
    report_small_height: float = 16.0

    def __post_init__(self) -> None:
        if not self.classes or len(set(self.classes)) != len(self.classes):
            raise ParamError(f"classes: must be non-empty and unique, got {self.classes!r}")
        check_edges(self.occlusion_edges)
        check_range("iou", self.iou, 0.0, 1.0, low_open=True)
        check_int("max_dets", self.max_dets, minimum=1)
        check_range("report_score", self.report_score, 0.0, 1.0)
        check_range("report_small_height", self.report_small_height, 0.0, float("inf"))
        if self.convention not in ("coco", "bdd"):
            raise ParamError(f"convention: must be coco or bdd, got {self.convention!r}")


@dataclass
class GapConfig:
    """params.yaml `gap`."""

    # whose features measure the gap: by default one fixed extractor (stage gap_reference: a
    # seeded yolov5n, the same for every arm and seed, calibrated on the sample world); or a
    # trained detector's checkpoint, e.g. outputs/detector/model/best.pt (README: "Which
    # network measures")
    reference_model: str = "outputs/gap_reference/seeded-yolov5n.pt"
    imgsz: int = 320  # frames are resized to this width (the detector's training size)
    # every frame is centre-cropped to this height / width before resizing, so that sets of
    # other framings are compared on the same part of the scene (without it, the features
    # mostly measure framing: BDD100K's 16:9 sky and bonnet, which no translator should add).
    # Default: KITTI / vKITTI2's 1242 x 375; 0 = no crop
    crop_aspect: float = 0.302
    batch: int = 16
    # auto | cpu | cuda | GPU indices as detector.device takes them (features: the first listed)
    device: str | int | list[int] = "auto"
    max_frames: int = 500  # per set, evenly spaced (the stage's cost bound); 0 = all
    kid_subset: int = 100  # KID: subsets of this size when a set is larger ...
    kid_subsets: int = 50  # ... averaged over this many draws

    def __post_init__(self) -> None:
        for name, low in (("imgsz", STRIDE), ("batch", 1), ("max_frames", 0),
                          ("kid_subset", 2), ("kid_subsets", 1)):
            check_int(name, getattr(self, name), minimum=low)
        check_range("crop_aspect", self.crop_aspect, 0.0, 4.0)
        if self.imgsz % STRIDE:
            raise ParamError(f"imgsz: must be a multiple of {STRIDE}, got {self.imgsz}")
        self.device = normalise_device(self.device)
