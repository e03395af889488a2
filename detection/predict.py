"""Run a trained detector on images; write its boxes as Scalabel JSON (what BDD100K tools read)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from common.errors import MissingInputError, UserError
from common.files import atomic_write_text
from common.runtime import cuda_gpu_count
from detection.config import DetectorConfig
from detection.devices import ultralytics_device
from detection.env import configure_ultralytics

COLUMNS = ["image_id", "class_name", "x1", "y1", "x2", "y2", "score"]


def predict(weights: Path, images: list[tuple[str, Path]], cfg: DetectorConfig) -> pd.DataFrame:
    """Scored boxes for (image_id, path) images: columns COLUMNS, boxes in original pixels.

    Rows follow the input order of images, then descending score. The DataFrame's
    `attrs["image_ids"]` lists every input image, so images without any box are not lost
    (write_scalabel writes an empty frame for them).
    """
    configure_ultralytics()
    weights = Path(weights)
    if not weights.is_file():
        raise MissingInputError(f"detector weights not found: {weights}")
    image_ids = [image_id for image_id, _ in images]
    if len(set(image_ids)) != len(image_ids):
        duplicated = sorted(i for i, n in Counter(image_ids).items() if n > 1)[:5]
        raise UserError(f"predict: duplicate image_id(s) {duplicated}")
    for image_id, path in images:
        if not Path(path).is_file():
            raise MissingInputError(f"predict: image {image_id!r} not found at {path}")

    from ultralytics import YOLO

    model = YOLO(str(weights), task="detect")

    # predicting runs on one device: the first of a training GPU list
    device = ultralytics_device(cfg.device, cuda_gpu_count(cfg.device)).split(",")[0]
    columns: dict[str, list] = {name: [] for name in COLUMNS}
    with tqdm(total=len(images), desc="predict", unit="img") as progress:
        for start in range(0, len(images), cfg.batch):
            chunk = images[start:start + cfg.batch]
            # Arrays, not paths: ultralytics sorts a list of paths, arrays keep our order.
            results = model.predict(
                source=[_read_bgr(image_id, Path(path)) for image_id, path in chunk],
                imgsz=cfg.imgsz, conf=cfg.conf, iou=cfg.iou, max_det=cfg.max_det,
                device=device, batch=len(chunk), verbose=False, save=False,
                rect=False,  # one square letterbox for every image: a box never depends on
                # which other images share its batch
            )
            for (image_id, _), result in zip(chunk, results, strict=True):
                _append_boxes(columns, image_id, result, model.names)
            progress.update(len(chunk))
    predictions = pd.DataFrame(columns).astype(
        {"image_id": str, "class_name": str, **dict.fromkeys(COLUMNS[2:], "float64")}
    )
    predictions.attrs["image_ids"] = image_ids
    return predictions


def _read_bgr(image_id: str, path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UserError(f"predict: image {image_id!r} at {path} cannot be decoded")
    return image


def _append_boxes(columns: dict[str, list], image_id: str, result, names: dict) -> None:
    boxes = result.boxes
    by_score = np.argsort(-boxes.conf.cpu().numpy(), kind="stable")
    xyxy = boxes.xyxy.cpu().numpy().astype(np.float64)[by_score]
    scores = boxes.conf.cpu().numpy().astype(np.float64)[by_score]
    classes = boxes.cls.cpu().numpy().astype(int)[by_score]
    for (x1, y1, x2, y2), score, cls in zip(xyxy, scores, classes, strict=True):
        columns["image_id"].append(image_id)
        columns["class_name"].append(names[int(cls)])
        for name, value in zip(("x1", "y1", "x2", "y2", "score"), (x1, y1, x2, y2, score),
                               strict=True):
            columns[name].append(float(value))


def write_scalabel(predictions: pd.DataFrame, path: Path,
                   image_ids: list[str] | None = None) -> None:
    """Write predictions as Scalabel frames, one per image, sorted by name, atomically.

    Images without boxes come from `image_ids`, else from `predictions.attrs["image_ids"]`
    (set by `predict`); labels in a frame are by descending score; floats are written with
    their full repr, so equal predictions give byte-identical files.
    """
    missing = [c for c in COLUMNS if c not in predictions.columns]
    if missing:
        raise ValueError(f"write_scalabel: predictions lack column(s) {missing}")
    numbers = predictions[COLUMNS[2:]].to_numpy(dtype=np.float64)
    if not np.isfinite(numbers).all():
        raise ValueError("write_scalabel: predictions hold NaN or infinite boxes/scores")
    if image_ids is None:
        image_ids = predictions.attrs.get("image_ids", [])
    unlisted = set(predictions["image_id"]) - set(image_ids)
    names = sorted(set(image_ids) | unlisted)

    ordered = predictions.sort_values(["image_id", "score"], ascending=[True, False],
                                      kind="stable")
    frames: dict[str, list[dict]] = {name: [] for name in names}
    for label_id, row in enumerate(ordered.itertuples(index=False)):
        frames[row.image_id].append({
            "id": str(label_id),
            "category": row.class_name,
            "score": float(row.score),
            "box2d": {k: float(getattr(row, k)) for k in ("x1", "y1", "x2", "y2")},
        })
    payload = [{"name": name, "labels": frames[name]} for name in names]

    atomic_write_text(Path(path), json.dumps(payload))
