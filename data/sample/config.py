"""What to write and where it lands: SampleConfig, SampleWorld / world_paths, and the constants
every part of the sample world shares (label rules, dataset variations and weathers, occlusion
buckets, encoder settings, seed streams)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from common.config import check_int

Color = tuple[float, float, float]  # BGR in 0..1


MAX_FRAMES = 100_000  # per dataset knob: beyond this the sample world is no longer a sample
MAX_WIDTH = 4096  # pixels


@dataclass
class SampleConfig:
    """params.yaml `data.sample`: how much of each dataset to write, how wide the frames are, and
    the world's own seed (apart from the top-level `seed`, which varies training only: runs on
    different training seeds are scored on the same images)."""

    kitti_frames: int = 48
    vkitti2_scenes: int = 2
    vkitti2_frames_per_scene: int = 24
    bdd_train_frames_per_weather: int = 12
    bdd_val_frames_per_weather: int = 16
    # the detector's pretraining set (pretrain/, beside the datasets): 0 = none written
    pretrain_frames: int = 0
    # KITTI/vKITTI2 frames are width x round(width*375/1242); BDD frames width x width*9/16
    width: int = 320
    seed: int = 0  # the world's own seed: every frame's Generator is keyed by (seed, stream, index)

    def __post_init__(self) -> None:
        # every dataset needs frames: an empty one only fails stages later, with a worse message
        for f in fields(self):
            if f.name not in ("width", "seed", "pretrain_frames"):
                check_int(f.name, getattr(self, f.name), minimum=1, maximum=MAX_FRAMES)
        check_int("pretrain_frames", self.pretrain_frames, minimum=0, maximum=MAX_FRAMES)
        check_int("seed", self.seed, minimum=0)
        check_int("width", self.width, minimum=64, maximum=MAX_WIDTH)


@dataclass
class SampleWorld:
    """Where each dataset root of a written sample world is (the paths the real readers take)."""

    kitti_root: Path  # holds training/image_2 and training/label_2
    vkitti2_root: Path  # holds SceneXX/<variation>/...
    bdd100k_images: Path  # holds train/ and val/
    bdd100k_labels_train: Path
    bdd100k_labels_val: Path
    # the `ideal` translator's frames: each vKITTI2 clone frame rendered again with the real
    # look in each weather (same geometry, so the clone's boxes). Not part of any real dataset:
    # the real-format readers never see this tree.
    ideal_root: Path
    # the stand-in for the COCO weights the real recipe fine-tunes: photographic street frames in
    # clear daylight, KITTI's layout (so the KITTI reader reads them), apart from every dataset
    # above. Stage pretrain_detector trains on them once; no real dataset has this tree.
    pretrain_root: Path


# Label rules shared by all three datasets.
OCCLUDED_BELOW = 0.85  # visible fraction below which a vehicle is "occluded" (BDD, KITTI level 1)
LARGELY_OCCLUDED_BELOW = 0.5  # KITTI occlusion level 2
MIN_VISIBLE_FRACTION = 0.15  # less visible than this: not labelled at all
MIN_BOX_HEIGHT = 8.0  # pixels; smaller: not labelled (KITTI: a DontCare region instead, sometimes)

VKITTI2_VARIATIONS = ("clone", "fog", "rain", "overcast", "morning", "sunset")
BDD_WEATHERS = ("clear", "foggy", "rainy", "overcast")
BDD_BUCKETS = ((0, 5), (6, 10), (11, 1_000_000))  # occluded vehicles per frame, disjoint
BDD_COUNTED = ("car", "truck")  # the classes that count towards n_occluded_vehicles
JPEG_QUALITY_SIM = 95
JPEG_QUALITY_BDD = 88
PNG_COMPRESSION = 3
NEAR_PLANE = 1.0  # metres; geometry closer than this is clamped (it is off-screen anyway)

# Seed streams: every frame has its own Generator, keyed by (seed, stream, index).
(STREAM_KITTI, STREAM_VKITTI2, STREAM_BDD_TRAIN, STREAM_BDD_VAL, STREAM_IDEAL,
 STREAM_PRETRAIN) = 1, 2, 3, 4, 5, 6


def world_paths(root: Path) -> SampleWorld:
    root = Path(root)
    labels = root / "bdd100k" / "labels" / "det_20"
    return SampleWorld(root / "kitti", root / "vkitti2", root / "bdd100k" / "images" / "100k",
                       labels / "det_train.json", labels / "det_val.json", root / "ideal",
                       root / "pretrain")


def ideal_frame_path(ideal_root: Path, weather: str, scene: str, camera: str, frame: int) -> Path:
    """Where the ideal render of a clone frame in `weather` (a vKITTI2 variation name) is."""
    return Path(ideal_root) / weather / scene / camera / f"rgb_{frame:05d}.jpg"
