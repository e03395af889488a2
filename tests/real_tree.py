"""A tree in the real downloads' layout, built from the repository's fixture files (README
"Quickstart on the real datasets"): KITTI's two object-detection frames, BDD100K's Scalabel MOT
labels (202 frames) as det_train.json and the legacy one-frame file as det_val.json with an image
per frame, and a one-scene vKITTI2 tree (the KITTI frames as its rgb, textgt in the documented
headers). The paths follow params.yaml's data.real defaults under `root`.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

from PIL import Image

FIXTURES = Path(__file__).parent / "fixtures"
KITTI = FIXTURES / "kitti" / "detection" / "training"
BDD_TRAIN = FIXTURES / "bdd100k" / "scalabel_mot_sample" / "track_sample_anns.json"
BDD_VAL = FIXTURES / "bdd100k" / "legacy_unitest_val_bdd.json"
VARIATIONS = ("clone", "fog", "rain", "overcast")
BBOX = ("frame cameraID trackID left right top bottom number_pixels truncation_ratio "
        "occupancy_ratio isMoving\n"
        "0 0 0 988 1223 159 369 41767 0.4230517 0.7678463 False\n"
        "0 0 1 500 620 170 260 9000 0.0 0.5 True\n"
        "1 0 0 900 1100 150 300 30000 0.1 0.9 False\n")
INFO = "trackID label model color\n0 Car Sedan4Door Black\n1 Truck Truck Red\n"
KITTI_FRAMES, VKITTI2_FRAMES = 2, 2 * len(VARIATIONS)
BDD_TRAIN_FRAMES, BDD_VAL_FRAMES = 202, 1


def build_real_tree(root: Path) -> dict[str, Path]:
    """Write the tree under `root`; returns the data.real paths (params.yaml's names)."""
    root = Path(root)
    kitti = root / "kitti" / "training"
    shutil.copytree(KITTI / "image_2", kitti / "image_2")
    shutil.copytree(KITTI / "label_2", kitti / "label_2")
    vkitti2 = root / "vkitti2"
    for variation in VARIATIONS:
        rgb = vkitti2 / "Scene01" / variation / "frames" / "rgb" / "Camera_0"
        rgb.mkdir(parents=True)
        for frame in (0, 1):
            shutil.copy(KITTI / "image_2" / f"00000{frame}.png", rgb / f"rgb_0000{frame}.png")
        (vkitti2 / "Scene01" / variation / "bbox.txt").write_text(BBOX)
        (vkitti2 / "Scene01" / variation / "info.txt").write_text(INFO)
    bdd = root / "bdd100k"
    labels = bdd / "labels" / "det_20"
    labels.mkdir(parents=True)
    shutil.copy(BDD_TRAIN, labels / "det_train.json")
    shutil.copy(BDD_VAL, labels / "det_val.json")
    jpeg = _jpeg(1280, 720)
    for split, source in (("train", BDD_TRAIN), ("val", BDD_VAL)):
        images = bdd / "images" / "100k" / split
        images.mkdir(parents=True)
        for frame in json.loads(source.read_text()):
            (images / frame["name"]).write_bytes(jpeg)
    return {"kitti_root": root / "kitti", "vkitti2_root": vkitti2,
            "bdd100k_images": bdd / "images" / "100k",
            "bdd100k_labels_train": labels / "det_train.json",
            "bdd100k_labels_val": labels / "det_val.json"}


def _jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (90, 90, 90)).save(out, "JPEG", quality=50)
    return out.getvalue()


def params_for_tree(repo: Path, tree_root: Path, out: Path) -> Path:
    """params.yaml of the repository with data.real's default /data/... paths moved under
    `tree_root` (where build_real_tree wrote them), written to `out`."""
    text = (repo / "params.yaml").read_text()
    assert text.count(" /data/") == 5, "params.yaml's data.real defaults changed"
    out.write_text(text.replace(" /data/", f" {tree_root}/"))
    return out
