"""Train a YOLO detector with ultralytics: offline, seeded, resumable, DVCLive-logged.

From scratch (`detector.model` an architecture yaml) or fine-tuned from a local checkpoint (a .pt:
ultralytics keeps every layer whose shape fits and builds a new head for the dataset's classes,
e.g. COCO's 80 -> our 2). On several GPUs (`detector.device: 0,1`) ultralytics launches its own
DDP workers with torch.distributed.run; they get our callbacks (see `add_callbacks`), which write
in rank 0 only, and the DVCLive dir is rebuilt from results.csv after the launch in any case.

A run lives in `run_dir` (ultralytics' save dir: weights/last.pt, weights/best.pt,
results.csv) plus `sim2real_run.json`, our record of what the run was started with: the
training args and a fingerprint of the dataset. Calling `train_detector` again
- with the same record and an unfinished last.pt resumes it (ultralytics resume),
- with the same record and a finished run returns best.pt without training,
- otherwise (new params, changed dataset, no or unreadable last.pt) starts afresh.
The dataset fingerprint matters because DVC keeps a persistent run dir across re-runs: without
it, a finished run on yesterday's dataset would be returned as today's model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from common.errors import MissingInputError
from common.files import atomic_torch_save, atomic_write_json, file_sha256
from common.runtime import cuda_gpu_count
from detection.callbacks import (
    LAST_GOOD,
    add_callbacks,
    no_label_cache_files,
    results_history,
    write_live_history,
)
from detection.config import DetectorConfig
from detection.devices import amp_mode, check_ddp_ready, ultralytics_device
from detection.env import configure_ultralytics
from detection.model_source import check_imgsz, inspect_model, note_reheading

log = logging.getLogger(__name__)

RUN_RECORD = "sim2real_run.json"
# Args that may differ when resuming (ultralytics accepts new values for these on resume).
_RESUMABLE_OVERRIDES = ("device", "workers", "cache", "plots", "patience")
# Not part of a run's identity: the above, amp (follows the device; a resumed run keeps its
# own) and the prediction-only fields, which do not change the trained weights.
_NOT_IDENTITY = (*_RESUMABLE_OVERRIDES, "amp", "conf", "iou", "max_det")


def train_detector(data_yaml: Path, run_dir: Path, cfg: DetectorConfig, live_dir: Path,
                   seed: int = 0) -> Path:
    """Train (or resume, or reuse) a detector on `data_yaml`; returns the path of best.pt.

    Per-epoch losses and val metrics go to DVCLive in `live_dir` (one step per epoch).
    """
    configure_ultralytics()
    data_yaml, run_dir = Path(data_yaml).resolve(), Path(run_dir).resolve()
    live_dir = Path(live_dir)
    if not data_yaml.is_file():
        raise MissingInputError(f"dataset yaml not found: {data_yaml}")

    source = inspect_model(cfg.model)
    check_imgsz(cfg.imgsz, source)
    args = _train_args(data_yaml, run_dir, cfg, seed, gpu_count=cuda_gpu_count(cfg.device),
                       checkpoint=source.is_checkpoint)
    check_ddp_ready(args["device"])
    weights = run_dir / "weights"
    identity = _identity(cfg, seed)
    if source.checkpoint is not None:  # the same path with other bytes is another run
        identity["model_sha256"] = file_sha256(source.checkpoint)
    record = {"train_args": identity, "data_fingerprint": _data_fingerprint(data_yaml)}
    state = _checkpoint_state(weights / "last.pt", cfg.epochs)
    if state == "unreadable" and _checkpoint_state(weights / LAST_GOOD, cfg.epochs) == "unfinished":
        # killed while ultralytics wrote last.pt (in place): the previous epoch's copy resumes
        log.warning("last.pt is truncated; resuming from %s (the epoch before)", LAST_GOOD)
        shutil.copyfile(weights / LAST_GOOD, weights / "last.pt")
        state = "unfinished"
    same_run = _read_json(run_dir / RUN_RECORD) == record

    if same_run and state == "finished":
        log.info("detector run in %s is finished with these params and data; reusing it", run_dir)
        if not (live_dir / "metrics.json").exists():
            write_live_history(live_dir, results_history(run_dir / "results.csv"))
        return _best_or_last(weights)

    resume = same_run and state == "unfinished"
    if not resume:
        if state != "missing":
            why = "params or dataset changed" if not same_run else f"last.pt is {state}"
            log.warning("starting detector training afresh in %s (%s)", run_dir, why)
        for stale in (weights, run_dir / "results.csv", run_dir / RUN_RECORD):
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink(missing_ok=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / RUN_RECORD, record, indent=1)

    from ultralytics import YOLO

    if source.is_checkpoint and not resume:
        from ultralytics.data.utils import check_det_dataset

        note_reheading(source, list(check_det_dataset(str(data_yaml))["names"].values()))
    model = YOLO(str(weights / "last.pt") if resume else cfg.model)
    add_callbacks(model, live_dir, run_dir / RUN_RECORD, record)
    with no_label_cache_files():
        if resume:
            log.info("resuming detector training from %s", weights / "last.pt")
            overrides = {k: args[k] for k in _RESUMABLE_OVERRIDES}
            model.train(resume=True, data=args["data"], save_dir=str(run_dir), **overrides)
        else:
            model.train(**args)
    if "," in args["device"]:  # DDP: rank 0 logged in its own process; same rows, rebuilt here
        write_live_history(live_dir, results_history(run_dir / "results.csv"))
    (weights / LAST_GOOD).unlink(missing_ok=True)  # finished: last.pt is whole
    best = _best_or_last(weights)
    _drop_run_specifics(best)
    return best


# DetectorConfig fields that only prediction reads: not ultralytics train args
_PREDICT_ONLY = ("conf", "iou", "max_det")


def _train_args(data_yaml: Path, run_dir: Path, cfg: DetectorConfig, seed: int, *,
                gpu_count: int, checkpoint: bool) -> dict[str, Any]:
    """ultralytics train kwargs: every training field of DetectorConfig (they carry ultralytics'
    names), the device in ultralytics' spelling for a machine with `gpu_count` CUDA GPUs, and
    the fixed choices that keep runs reproducible and offline. `checkpoint`: cfg.model is a .pt
    to fine-tune (ultralytics' pretrained=False would train its architecture from scratch)."""
    device = ultralytics_device(cfg.device, gpu_count)
    args = {k: v for k, v in asdict(cfg).items() if k not in _PREDICT_ONLY}
    return {
        **args,
        "data": str(data_yaml),
        "device": device,
        "amp": amp_mode(cfg.amp, device),
        "seed": seed,
        "deterministic": True,
        "pretrained": checkpoint,
        "val": True,  # per-epoch val metrics for DVCLive
        "project": str(run_dir.parent),
        "name": run_dir.name,
        "exist_ok": True,
        "save_period": -1,
    }


def _identity(cfg: DetectorConfig, seed: int) -> dict[str, Any]:
    """The params that define what a run trains (a change means a new run, not a resume)."""
    fields = {**asdict(cfg), "seed": seed}
    return {k: v for k, v in sorted(fields.items()) if k not in _NOT_IDENTITY}


def _data_fingerprint(data_yaml: Path) -> str:
    """sha256 over class names and every image and label file's path, size and mtime.

    Stat-only, so it is cheap on the full datasets; a stage that rewrites the dataset gives new
    mtimes, hence a new fingerprint (and a fresh run), which is the safe direction.
    """
    from ultralytics.data.utils import IMG_FORMATS, check_det_dataset, img2label_paths

    data = check_det_dataset(str(data_yaml))
    images: list[str] = []
    for split in ("train", "val"):
        entries = data[split] if isinstance(data[split], list) else [data[split]]
        for entry in entries:
            images += _split_files(Path(entry), IMG_FORMATS)
    digest = hashlib.sha256(json.dumps(data["names"], sort_keys=True).encode())
    for path in [*images, *img2label_paths(images)]:
        stat = os.stat(path) if os.path.exists(path) else None
        digest.update(f"{path}\0{stat.st_size if stat else -1}\0"
                      f"{stat.st_mtime_ns if stat else -1}\n".encode())
    return digest.hexdigest()


def _split_files(entry: Path, img_formats: frozenset[str] | set[str]) -> list[str]:
    """Image files of one split entry, by ultralytics' rules: a dir, or a .txt list of paths."""
    if entry.is_dir():
        files = [str(p) for p in entry.rglob("*.*")]
    elif entry.is_file():
        lines = entry.read_text(encoding="utf-8-sig").strip().splitlines()
        files = [str(entry.parent / x[2:]) if x.startswith("./") else x for x in lines]
    else:
        raise MissingInputError(f"dataset split path does not exist: {entry}")
    return sorted(f for f in files if f.rpartition(".")[-1].lower() in img_formats)


def _checkpoint_state(last: Path, epochs: int) -> str:
    """'missing', 'unreadable', 'unfinished' (resumable) or 'finished' (stripped by ultralytics
    at the end of training, or saved at the last epoch but killed before stripping)."""
    if not last.exists():
        return "missing"
    from ultralytics.nn.tasks import torch_safe_load

    try:
        ckpt, _ = torch_safe_load(str(last))
    except Exception as error:  # a half-written last.pt from a killed run
        log.warning("cannot read %s (%s)", last, error)
        return "unreadable"
    epoch = ckpt.get("epoch", -1)
    if epoch < 0 or ckpt.get("optimizer") is None or epoch + 1 >= epochs:
        return "finished"
    return "unfinished"


def _best_or_last(weights: Path) -> Path:
    best = weights / "best.pt"
    if best.exists():
        return best
    if (weights / "last.pt").exists():
        return weights / "last.pt"
    raise FileNotFoundError(f"training finished without a checkpoint in {weights}")


def held_out_metrics(checkpoint: Path) -> dict[str, float | None]:
    """mAP50 and mAP50:95 that ultralytics measured for this checkpoint's epoch on the held-out
    frames of its training domain (the dataset's val split), as recorded in the checkpoint."""
    from ultralytics.nn.tasks import torch_safe_load

    ckpt, _ = torch_safe_load(str(checkpoint))
    recorded = ckpt.get("train_metrics") or {}

    def value(key: str) -> float | None:
        number = recorded.get(key)
        return float(number) if isinstance(number, int | float) and math.isfinite(number) else None

    return {"map50": value("metrics/mAP50(B)"), "map50_95": value("metrics/mAP50-95(B)")}


def write_held_out(checkpoint: Path, path: Path) -> None:
    """held_out_metrics(checkpoint) as JSON at path, atomically."""
    atomic_write_json(Path(path), held_out_metrics(checkpoint), indent=1)


def _drop_run_specifics(checkpoint: Path) -> None:
    """Rewrite a finished checkpoint without what differs between two runs of the same params
    and data on CPU: its save date, epoch timings, the git commit and clone path ultralytics
    records, and absolute paths (made relative to the working directory, the repo root in the
    graph). The same run then gives a byte-identical best.pt in any clone at any commit, so DVC
    sees an unchanged model downstream and a fresh clone's `make demo` leaves dvc.lock as
    committed."""
    from ultralytics.nn.tasks import torch_safe_load

    ckpt, _ = torch_safe_load(str(checkpoint))
    ckpt["date"] = None
    ckpt["git"] = None
    (ckpt.get("train_results") or {}).pop("time", None)
    # the run's args are stored twice: beside the weights and on the model object itself
    for args in (ckpt.get("train_args"), *(getattr(ckpt.get(k), "args", None)
                                          for k in ("model", "ema"))):
        if isinstance(args, dict):
            args.update({key: os.path.relpath(value) for key, value in args.items()
                         if isinstance(value, str) and os.path.isabs(value)})
    atomic_torch_save(ckpt, checkpoint)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


