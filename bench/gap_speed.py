"""Speed of the domain-gap score (evaluation/gap.py) in one process, against a plain detector pass.

    python bench/gap_speed.py                      # 1,000 frames of 1242×375, auto device
    python bench/gap_speed.py --frames 200 --device cpu

Writes `--frames` JPEGs of 1242×375 (vKITTI2 / KITTI's size; smooth noise, speed does not depend
on content) to a temp dir, then times on the same files:
- ours: extract_features (decode in two threads, resize to `--imgsz` wide, batched forward up to
  the SPPF layer, global pooling), then FD and KID between the two halves of the frames;
- reference: the same decode (two threads) and resize, then the whole detector's forward
  (backbone, neck and head, no NMS) batch by batch: what running the detector costs anyway.
The model is yolov5n built from its yaml with seeded weights (nothing is downloaded), or
`--model best.pt`. The last line is the summary: frames/s of both and the ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.runtime import resolve_device  # noqa: E402
from evaluation.config import GapConfig  # noqa: E402
from evaluation.gap import (  # noqa: E402
    _load,
    extract_features,
    frame_paths,
    gap_scores,
    load_extractor,
    seeded_checkpoint,
)


def write_frames(root: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 255, (375, 1242, 3), dtype=np.uint8), (0, 0), 4)
    for i in range(count):
        frame = np.roll(base, 7 * i, axis=1)  # distinct files, equal decode cost
        cv2.imwrite(str(root / f"{i:05d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return frame_paths(root)


def plain_detector_pass(model: Path, paths: list[Path], cfg: GapConfig) -> float:
    """Seconds for decode + resize + the full detector forward on every frame, same batches."""
    from ultralytics import YOLO

    device = resolve_device(cfg.device)
    net = YOLO(str(model), task="detect").model.float().eval().to(device)
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:  # decoded as extract_features decodes
        images = pool.map(lambda p: _load(p, cfg.imgsz), paths)
        for first in range(0, len(paths), cfg.batch):
            chunk = [next(images) for _ in paths[first:first + cfg.batch]]
            batch = torch.from_numpy(np.stack(chunk)).permute(0, 3, 1, 2)
            with torch.inference_mode():
                out = net(batch.to(device).float().div_(255.0))
            (out[0] if isinstance(out, (list, tuple)) else out).sum().item()  # wait for the GPU
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--model", type=Path, help="a YOLO checkpoint (default: seeded yolov5n)")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    args = parser.parse_args()
    cfg = GapConfig(imgsz=args.imgsz, batch=args.batch, device=args.device)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "frames").mkdir()
        paths = write_frames(root / "frames", args.frames)
        model = args.model or seeded_checkpoint(root / "seeded_v5n.pt")  # not "yolov5n.pt":
        # ultralytics maps that name to yolov5nu.pt and would try to download it
        extractor = load_extractor(model, cfg.device)
        device = extractor.device
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
            f"CPU, {torch.get_num_threads()} torch threads"
        print(f"{len(paths)} frames of 1242×375 → {cfg.imgsz} wide; {extractor.name}; {name}")
        extract_features(extractor, paths[:cfg.batch], cfg, progress=False)  # warm-up
        plain_detector_pass(model, paths[:cfg.batch], cfg)

        start = time.perf_counter()
        features = extract_features(extractor, paths, cfg, progress=False).values
        t_features = time.perf_counter() - start
        start = time.perf_counter()
        half = len(features) // 2
        scores = gap_scores(features[:half], features[half:], cfg)
        t_scores = time.perf_counter() - start
        t_reference = plain_detector_pass(model, paths, cfg)
    ours = t_features + t_scores
    print(f"ours: features {t_features:.2f} s, FD + KID ({half} vs {len(features) - half}, "
          f"{cfg.kid_subsets} KID subsets of {cfg.kid_subset}) {t_scores:.3f} s "
          f"(FD {scores['fd']:.3g}, KID {scores['kid']:.3g})")
    print(f"reference (decode + resize + full detector forward): {t_reference:.2f} s")
    print(f"summary: gap score {len(paths) / ours:.1f} frames/s, plain detector pass "
          f"{len(paths) / t_reference:.1f} frames/s; gap / detector time = "
          f"{ours / t_reference:.2f}")


if __name__ == "__main__":
    main()
