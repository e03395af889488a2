"""CycleGAN speed on one device, in one process: training img/s of a reference-style loop vs
ours, CUT and FastCUT against CycleGAN, and full-resolution translation frames/s including JPEG
decode and encode.

    python bench/translate_speed.py                        # on a GPU: the figures of the issue
    python bench/translate_speed.py --device cpu --quick   # a smoke run with tiny nets
    python bench/translate_speed.py --device cpu --batch 1 --steps 5 --warmup 1 --no-translate

Training (random 256² crops already in memory, so both loops time the model, not the loader):
- reference-style: what pytorch-CycleGAN-and-pix2pix does by default — fp32, batch 1, eager,
  contiguous (NCHW) tensors;
- ours: bf16 autocast, channels_last, batch `--batch`, torch.compile (CUDA only; on CPU the
  same flags are ignored by CycleGANModel, so both loops are fp32 eager there).
Both use the same CycleGANModel.train_step (G update, then D update, image pools, LSGAN, cycle
and identity losses), at the reference sizes unless --quick.

One-sided vs two-sided: CycleGAN, CUT and FastCUT (translators/cut, 256 patches per layer) with
the same nets, crops, batch and flags as ours (not compiled), each timed per iteration (one
update of every net) with its peak memory: allocated CUDA memory, or on the CPU the growth of
the process's resident set (its high-water mark reset through /proc/self/clear_refs), and each
as a ratio against CycleGAN.

Translation: `--frames` JPEGs of 1242×375 (KITTI's size) written to a temp dir, then
translators.io.translate_files with a random-init reference generator (speed does not depend on
the weights): decode in two threads, batched bf16 inference, encode in two threads.

The share of the bf16 peak uses FLOPs counted by torch's FlopCounterMode on one step (training)
or one frame (translation) and `--peak-tflops` (default: the dense bf16 peak of a known GPU).
The last line is the summary: training speed-up over the reference loop and translation fps.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import re
import sys
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.runtime import resolve_device  # noqa: E402
from translators.cut.config import CUTConfig  # noqa: E402
from translators.cut.model import CUTModel  # noqa: E402
from translators.cyclegan.config import CycleGANConfig, GANConfig  # noqa: E402
from translators.cyclegan.model import WEIGHTS, CycleGANModel  # noqa: E402
from translators.cyclegan.networks import build_generator  # noqa: E402
from translators.cyclegan.translator import CycleGAN  # noqa: E402
from translators.generator import save_generator  # noqa: E402
from translators.io import translate_files  # noqa: E402

# Dense (no sparsity) bf16 tensor-core peaks from the vendors' data sheets, in TFLOP/s.
BF16_PEAK_TFLOPS = {"H100 SXM": 989.4, "H100 PCIe": 756.0, "H100 NVL": 835.0, "H200": 989.4,
                    "A100": 312.0, "L40S": 362.1, "L4": 121.0}


def known_peak(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    # the most specific key first ("H100 PCIe" before a plain "H100" match)
    for key in sorted(BF16_PEAK_TFLOPS, key=len, reverse=True):
        if all(part in name for part in key.split()):
            return BF16_PEAK_TFLOPS[key]
    if "H100" in name:  # "NVIDIA H100 80GB HBM3" is the SXM part
        return BF16_PEAK_TFLOPS["H100 SXM"]
    return None


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batch_of_crops(batch: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    real_a = torch.rand(batch, 3, size, size, generator=generator) * 2 - 1
    real_b = torch.rand(batch, 3, size, size, generator=generator) * 2 - 1
    return real_a, real_b


def training_flops_per_image(cfg: CycleGANConfig, device: torch.device, size: int) -> float:
    """FLOPs of one train_step on one image (forward + backward of both updates), fp32 eager."""
    model = CycleGANModel(replace(cfg, batch_size=1, amp=False, channels_last=False,
                                  compile=False), device, seed=0)
    real_a, real_b = batch_of_crops(1, size, seed=0)
    with FlopCounterMode(display=False) as counter:
        model.train_step(real_a, real_b)
    return float(counter.get_total_flops())


def training_cost(model_class: type, cfg: GANConfig, device: torch.device, size: int,
                  steps: int, warmup: int) -> tuple[float, int | None]:
    """(seconds per train_step of `model_class` with `cfg` (its batch size, flags), peak bytes
    of memory the model and its steps took, None where it cannot be measured)."""
    torch.manual_seed(0)
    peak = PeakMemory(device)
    model = model_class(cfg, device, seed=0)
    real_a, real_b = batch_of_crops(cfg.batch_size, size, seed=1)
    if device.type == "cuda":
        real_a, real_b = real_a.pin_memory(), real_b.pin_memory()
    for _ in range(warmup):  # compile, cuDNN autotuning, allocator growth
        model.train_step(real_a, real_b)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_step(real_a, real_b)
    synchronize(device)
    return (time.perf_counter() - start) / steps, peak.read()


def training_speed(cfg: CycleGANConfig, device: torch.device, size: int, steps: int,
                   warmup: int) -> float:
    """Images per second of CycleGANModel.train_step with `cfg` (its batch size, flags)."""
    seconds, _ = training_cost(CycleGANModel, cfg, device, size, steps, warmup)
    return cfg.batch_size / seconds


class PeakMemory:
    """Peak memory from now on: CUDA's allocator peak, or the CPU process's resident-set
    high-water mark (Linux), both relative to what was in use when it started."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            self.start = torch.cuda.memory_allocated(device)
            return
        try:  # give freed heap back first, or a later model would reuse it unseen
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            self.start = _status_kib("VmRSS") * 1024
        except OSError:
            self.start = None

    def read(self) -> int | None:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) - self.start
        return None if self.start is None else _status_kib("VmHWM") * 1024 - self.start


def _status_kib(key: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{key}:\s+(\d+) kB", status, re.MULTILINE).group(1))


def one_sided_vs_cyclegan(cfg: GANConfig, device: torch.device, size: int, steps: int,
                          warmup: int) -> dict[str, tuple[float, int | None]]:
    """CycleGAN, CUT and FastCUT on the same shared settings: (s per iteration, peak bytes)."""
    shared = {f.name: getattr(cfg, f.name) for f in fields(GANConfig)}
    models = {"cyclegan": (CycleGANModel, CycleGANConfig(**shared)),
              "cut": (CUTModel, CUTConfig(**shared, mode="cut")),
              "fastcut": (CUTModel, CUTConfig(**shared, mode="fastcut"))}
    for model_class, model_cfg in models.values():  # untimed: libraries' first-use buffers
        training_cost(model_class, model_cfg, device, size, steps=1, warmup=0)
    return {name: training_cost(model_class, model_cfg, device, size, steps, warmup)
            for name, (model_class, model_cfg) in models.items()}


def write_frames(directory: Path, count: int, width: int, height: int) -> list[Path]:
    """Smooth random frames (JPEG-compressible like photos, unlike white noise)."""
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        small = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
        frame = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
        path = directory / f"{index:06d}.jpg"
        cv2.imwrite(str(path), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
        paths.append(path)
    return paths


def translation_speed(cfg: CycleGANConfig, device: torch.device, frames: int, batch: int,
                      width: int, height: int) -> tuple[float, float]:
    """(frames per second of translate_files, generator FLOPs per frame)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        inputs = write_frames(root / "in", frames, width, height)
        torch.manual_seed(0)
        save_generator(build_generator(cfg), cfg, root / "model", "cyclegan", WEIGHTS, {})
        padded = torch.zeros(1, 3, height + (-height % 4), width + (-width % 4), device="meta")
        with torch.device("meta"), FlopCounterMode(display=False) as counter:
            build_generator(cfg)(padded)  # shapes only: counts without computing
        flops = float(counter.get_total_flops())
        translator = CycleGAN()
        translator.load(root / "model", device)
        warm = inputs[:min(len(inputs), 2 * batch)]
        translate_files(translator, warm, root / "warm", batch_size=batch, device=device)
        synchronize(device)
        start = time.perf_counter()
        translate_files(translator, inputs, root / "out", batch_size=batch, device=device)
        synchronize(device)
        fps = frames / (time.perf_counter() - start)
        written = sorted((root / "out").iterdir())
        assert [p.name for p in written] == [p.name for p in inputs], "names not kept"
        assert cv2.imread(str(written[0])).shape == (height, width, 3), "size not kept"
    return fps, flops


def share(rate: float, flops: float, peak_tflops: float | None) -> str:
    if peak_tflops is None:
        return "n/a (no known bf16 peak: pass --peak-tflops)"
    return f"{100 * rate * flops / (peak_tflops * 1e12):.1f}% of {peak_tflops:g} TFLOP/s"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    parser.add_argument("--size", type=int, default=256, help="training crop size")
    parser.add_argument("--batch", type=int, default=8, help="our training batch size")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per loop")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--no-compile", action="store_true", help="ours without torch.compile")
    parser.add_argument("--no-translate", action="store_true", help="skip the translation part")
    parser.add_argument("--frames", type=int, default=512, help="frames to translate")
    parser.add_argument("--translate-batch", type=int, default=16)
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="bf16 peak of the device (default: looked up by GPU name)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny nets and few steps: checks the script runs (CPU smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.batch, args.steps, args.warmup = 64, 2, 2, 1
        args.frames, args.translate_batch = 4, 2
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = resolve_device(args.device)
    base = CycleGANConfig(ngf=8, ndf=8, n_blocks=2) if args.quick else CycleGANConfig()
    reference = replace(base, batch_size=1, amp=False, channels_last=False, compile=False)
    ours = replace(base, batch_size=args.batch, amp=True, channels_last=True,
                   compile=not args.no_compile)
    peak = args.peak_tflops or known_peak(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}; torch {torch.__version__}; generator ngf={base.ngf} "
          f"n_blocks={base.n_blocks}, discriminator ndf={base.ndf}; crops {args.size}²")

    flops_train = training_flops_per_image(base, device, args.size)
    ref_rate = training_speed(reference, device, args.size, args.steps, args.warmup)
    print(f"train reference (fp32, batch 1, eager): {ref_rate:8.2f} img/s  "
          f"{share(ref_rate, flops_train, peak)}")
    our_rate = training_speed(ours, device, args.size, args.steps, args.warmup)
    flags = "bf16, channels_last, " if device.type == "cuda" else "(CUDA-only flags off), "
    compiled = "compiled" if ours.compile and device.type == "cuda" else "eager"
    print(f"train ours ({flags}batch {args.batch}, {compiled}): {our_rate:8.2f} img/s  "
          f"{share(our_rate, flops_train, peak)}")
    print(f"training FLOPs per image: {flops_train / 1e12:.3f} TFLOP")

    costs = one_sided_vs_cyclegan(replace(ours, compile=False), device, args.size, args.steps,
                                  args.warmup)
    reference_seconds, reference_peak = costs["cyclegan"]
    for model_name, (seconds, peak_bytes) in costs.items():
        memory = "n/a" if peak_bytes is None else f"{peak_bytes / 2**20:8.1f} MiB"
        memory_ratio = ("" if peak_bytes is None or not reference_peak
                        else f" ({peak_bytes / reference_peak:.2f} x)")
        print(f"train {model_name:<8} batch {ours.batch_size}: {1000 * seconds:9.1f} ms/it "
              f"({seconds / reference_seconds:.2f} x cyclegan), peak {memory}{memory_ratio}")
    ratios = " ".join(f"{mode}_time_ratio={costs[mode][0] / reference_seconds:.2f}"
                      for mode in ("cut", "fastcut"))

    fps = float("nan")
    if not args.no_translate:
        fps, flops_frame = translation_speed(base, device, args.frames, args.translate_batch,
                                             1242, 375)
        print(f"translate 1242×375 JPEG -> JPEG, batch {args.translate_batch}: {fps:8.2f} "
              f"frames/s  {share(fps, flops_frame, peak)} ({flops_frame / 1e9:.1f} GFLOP per "
              "frame)")
    print(f"translate_speed: train_speedup={our_rate / ref_rate:.2f} "
          f"translate_fps={fps:.1f} device={name!r} {ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
