"""Stage `translator_train@<weather>`: fit the chosen translator for one weather.

Source = vKITTI2 `clone` frames (clean synthetic); target = BDD100K train frames whose `weather`
attribute matches (fog -> foggy, rain -> rainy, overcast -> overcast).

With several GPUs in `translators.device`, a translator that trains distributed (CycleGAN, CUT) is
fit by this same module started once per GPU under torchrun (`launch_workers`); this process keeps
the output dir and publishes it only if every worker succeeded.

A GAN translator (`score_every` > 0) is handed the target score (evaluation/target_score.py:
KID against the weather's BDD train frames, measured as params.yaml's `gap` section says, with a
fixed seeded extractor); it publishes its best-scored epoch (`select: best`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

import translators
from common.errors import UserError
from common.files import atomic_dir
from common.runtime import cuda_gpu_count, gpu_indices, resolve_device, seed_everything
from common.weathers import BDD_WEATHER, WEATHERS
from data import read_manifest
from data.vkitti2 import variation_frames
from evaluation.target_score import TargetKID
from pipeline.common import INGEST, TRANSLATOR_CHECKPOINTS, TRANSLATORS, run_stage
from pipeline.params import load_params

KEY = "translators.device"


def main(argv: list[str]) -> None:
    weather, worker = _arguments(argv)
    params = load_params()
    source, target = training_frames(weather)
    translator = translators.get(params.translator)

    cfg = params.translator_config()

    def fit(out: Path, device: torch.device) -> None:
        # a GAN translator trains to the target: scored against the weather's BDD train frames
        scoring = {"scorer": TargetKID(target, params.gap, device)} if getattr(
            cfg, "score_every", 0) else {}
        seed_everything(params.seed)
        translator.fit(source, target, out, cfg, weather=weather, device=device,
                       checkpoint_dir=TRANSLATOR_CHECKPOINTS / weather, **scoring)

    if worker is not None:  # one of launch_workers' processes: fit into the parent's temp dir
        out, device = worker
        fit(out, resolve_device(device, "--device"))
        return
    device = params.translators.device
    gpus = gpu_indices(device, cuda_gpu_count(device), KEY) if "," in device else []
    distributed = len(gpus) > 1 and translator.trains_distributed
    if distributed:
        launch_workers(weather, len(gpus), "cuda", gpus)
    else:
        if gpus:
            print(f"translator_train@{weather}: {params.translator} trains on one device: "
                  f"GPU {gpus[0]}, the first of {device}")
        with atomic_dir(TRANSLATORS / weather) as tmp:
            fit(tmp, resolve_device(device, KEY))  # a list: its first GPU
    print(f"translator_train@{weather}: {params.translator} fitted on {len(source)} sim frames "
          f"and {len(target)} BDD {BDD_WEATHER[weather]} frames"
          + (f" on GPUs {device}" if distributed else ""))


def _arguments(argv: list[str]) -> tuple[str, tuple[Path, str] | None]:
    """`<weather>`, or (launch_workers' processes only) `<weather> --out DIR --device DEVICE`."""
    if argv and argv[0] in WEATHERS:
        if len(argv) == 1:
            return argv[0], None
        if len(argv) == 5 and argv[1] == "--out" and argv[3] == "--device":
            return argv[0], (Path(argv[2]), argv[4])
    raise UserError(f"usage: python -m pipeline.translator_train {{{','.join(WEATHERS)}}}")


def launch_workers(weather: str, nproc: int, worker_device: str,
                   gpus: list[int] | None = None) -> None:
    """Fit the translator in `nproc` processes of this stage under torchrun (DDP: one per GPU of
    `gpus`, rank r on GPU gpus[r]; on the CPU, gloo) into a temp dir that this process publishes
    as outputs/translators/<weather> once every worker has succeeded."""
    env = dict(os.environ)
    if gpus is not None:
        # our indices count the GPUs this process sees, maybe a CUDA_VISIBLE_DEVICES subset
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        ids = visible.split(",") if visible else [str(i) for i in range(max(gpus) + 1)]
        env["CUDA_VISIBLE_DEVICES"] = ",".join(ids[i].strip() for i in gpus)
    with atomic_dir(TRANSLATORS / weather) as tmp:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={nproc}", "-m", "pipeline.translator_train", weather,
                   "--out", str(tmp), "--device", worker_device]
        code = subprocess.run(command, env=env).returncode
        if code != 0:  # the workers said why, above; the temp dir is dropped unpublished
            raise UserError(f"translator_train@{weather}: {nproc} torchrun workers failed "
                            f"(exit code {code}); see their output above")


def training_frames(weather: str) -> tuple[list[Path], list[Path]]:
    source = variation_frames(read_manifest(INGEST / "vkitti2"), "clone").images["path"]
    bdd = read_manifest(INGEST / "bdd100k").images
    target = bdd.loc[(bdd["split"] == "train") & (bdd["weather"] == BDD_WEATHER[weather]), "path"]
    if target.empty:
        raise UserError(f"no BDD100K train frames with weather={BDD_WEATHER[weather]!r} to learn "
                         f"the {weather} look from")
    return [Path(p) for p in source], [Path(p) for p in target]


if __name__ == "__main__":
    run_stage(main)
