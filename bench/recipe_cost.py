"""What the original study's recipe (presets/original_study.yaml) costs, from one training step of
each model measured here against a reference whose GPU time is published.

    python bench/recipe_cost.py             # on whatever device torch picks (auto)
    python bench/recipe_cost.py --repeats 1 # quicker, noisier

Reference: YOLOv5l at 640 px. ultralytics publishes 6 days on one V100 for 300 COCO epochs
(118,287 train images) of it (yolov5 README, "Training times for YOLOv5n/s/m/l/x are 1/2/4/6/8
days on a V100"), i.e. one image-step costs 6 d / (300 x 118,287) = 14.6 ms on a V100.
Measured, in this process, on one device: the time of one training step (forward + backward,
batch 1, fp32) of
- YOLOv5l6 (P6) and YOLOv5m at 1280 px, as the preset trains them (mosaic: square 1280² inputs);
- CycleGAN at the reference sizes (resnet 9 blocks, ngf/ndf 64, 256² crops, batch 1): one
  CycleGANModel.train_step, G then D update, as translator_train runs it;
each as a ratio to YOLOv5l at 640 px, in time and in FLOPs (torch's FlopCounterMode). Two
V100-hour estimates follow: by the time ratio (as if the GPU scaled like this device) and by the
FLOP ratio (as if the GPU were equally busy for every model: closer to a GPU at batch 16, where
ultralytics says a P6 model trains at the speed of the P5 one at the same size, i.e. 4 x the
640 px time at 1280 px, matching the FLOP ratio rather than a CPU's time ratio). It is an
estimate: batch-1 CycleGAN steps use a V100 less fully than batch-16 YOLO steps, so the
CycleGAN figure is a lower bound. The YOLO step uses a surrogate loss (mean square of the head
outputs) instead of ultralytics' assignment loss, which costs little next to the convolutions.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.runtime import resolve_device  # noqa: E402
from detection.env import configure_ultralytics  # noqa: E402

V100_MS_PER_IMAGE_STEP = 6 * 86400 * 1000 / (300 * 118_287)  # YOLOv5l @ 640, published
# The preset's training set: vKITTI2 Camera_0 has 2,126 frames per variation (scenes 01, 02,
# 06, 18, 20); clone + 3 weather sets = 8,504 frames, plus KITTI at 1 in 7 = 1,417: 9,921.
# Val: 20 % of KITTI's 7,481 = 1,496 frames a forward pass each epoch (~1/3 of a train step).
TRAIN_IMAGES = 4 * 2126 + round(4 * 2126 / 6)
VAL_IMAGES = round(0.2 * 7481)
EPOCHS = 300
# CycleGAN iterations per weather: 200 epochs x max(|vKITTI2 clone|, |BDD100K train frames of
# that weather|) at batch 1; BDD100K train weather counts as published with the dataset
# (approximate): foggy 130, rainy 5,070, overcast 8,770.
CYCLEGAN_ITERATIONS = sum(200 * max(2126, n) for n in (130, 5070, 8770))


def _tensors(out: object) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for v in out.values() for t in _tensors(v)]
    if isinstance(out, (list, tuple)):
        return [t for v in out for t in _tensors(v)]
    return []


def yolo_step(yaml: str, imgsz: int, device: torch.device) -> Callable[[], None]:
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel(yaml, nc=2, verbose=False).to(device).train()
    x = torch.rand(1, 3, imgsz, imgsz, device=device)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        sum(t.float().square().mean() for t in _tensors(model(x))).backward()
    return step


def cyclegan_step(device: torch.device) -> Callable[[], None]:
    from translators.cyclegan.config import CycleGANConfig
    from translators.cyclegan.model import CycleGANModel

    torch.manual_seed(0)
    model = CycleGANModel(CycleGANConfig(), device, seed=0)  # the defaults are the reference
    a, b = (torch.rand(1, 3, 256, 256, device=device) * 2 - 1 for _ in range(2))
    return lambda: model.train_step(a, b)


def timed(step: Callable[[], None], repeats: int, device: torch.device) -> tuple[float, float]:
    """(median seconds per step after one warm-up, FLOPs of one step)."""
    with FlopCounterMode(display=False) as counter:
        step()  # warm-up, counted
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    configure_ultralytics()
    device = resolve_device(args.device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    ref, ref_flops = timed(yolo_step("yolov5l.yaml", 640, device), args.repeats, device)
    print(f"reference YOLOv5l @ 640: {ref:.3f} s/step, {ref_flops / 1e9:.0f} GFLOP/step")
    image_steps = EPOCHS * (TRAIN_IMAGES + VAL_IMAGES / 3)
    for name, yaml, imgsz in (("YOLOv5l6", "yolov5l6.yaml", 1280),
                              ("YOLOv5m", "yolov5m.yaml", 1280)):
        seconds, flops = timed(yolo_step(yaml, imgsz, device), args.repeats, device)
        estimate = _estimate(seconds / ref, flops / ref_flops, image_steps)
        print(f"{name} @ {imgsz}: {seconds:.3f} s/step; {EPOCHS} epochs x ({TRAIN_IMAGES} "
              f"train + {VAL_IMAGES}/3 val) images: {estimate}")
    seconds, flops = timed(cyclegan_step(device), args.repeats, device)
    print(f"CycleGAN reference @ 256: {seconds:.3f} s/iteration; {CYCLEGAN_ITERATIONS} iterations "
          f"(3 weathers): >= {_estimate(seconds / ref, flops / ref_flops, CYCLEGAN_ITERATIONS)}")


def _estimate(time_ratio: float, flop_ratio: float, image_steps: float) -> str:
    hours = [image_steps * V100_MS_PER_IMAGE_STEP * r / 3.6e6 for r in (time_ratio, flop_ratio)]
    return (f"{time_ratio:.2f} x reference in time -> ~{hours[0]:.0f} V100-hours; "
            f"{flop_ratio:.2f} x in FLOPs -> ~{hours[1]:.0f} V100-hours")


if __name__ == "__main__":
    main()
