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

import contextlib
import csv
import hashlib
import json
import logging
import math
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from common.errors import MissingInputError
from common.files import atomic_path, atomic_torch_save, atomic_write_json
from detection.config import DetectorConfig
from detection.devices import amp_mode, check_ddp_ready, ultralytics_device
from detection.env import configure_ultralytics
from detection.model_source import check_imgsz, file_sha256, inspect_model, note_reheading

log = logging.getLogger(__name__)

RUN_RECORD = "sim2real_run.json"
LAST_GOOD = "last_good.pt"  # the last completely written last.pt (see _keep_a_good_copy)
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
    import torch

    source = inspect_model(cfg.model)
    check_imgsz(cfg.imgsz, source)
    args = _train_args(data_yaml, run_dir, cfg, seed, gpu_count=torch.cuda.device_count(),
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
            _write_live_history(live_dir, _results_history(run_dir / "results.csv"))
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
    with _no_label_cache_files():
        if resume:
            log.info("resuming detector training from %s", weights / "last.pt")
            overrides = {k: args[k] for k in _RESUMABLE_OVERRIDES}
            model.train(resume=True, data=args["data"], save_dir=str(run_dir), **overrides)
        else:
            model.train(**args)
    if "," in args["device"]:  # DDP: rank 0 logged in its own process; same rows, rebuilt here
        _write_live_history(live_dir, _results_history(run_dir / "results.csv"))
    (weights / LAST_GOOD).unlink(missing_ok=True)  # finished: last.pt is whole
    best = _best_or_last(weights)
    _drop_run_specifics(best)
    return best


def add_callbacks(model: Any, live_dir: Path, record_path: Path, record: dict[str, Any]) -> None:
    """Our ultralytics callbacks on `model` (a YOLO): DVCLive logging, the last.pt copy, the run
    record, and the label-cache guard for DDP workers.

    Under DDP, ultralytics cloudpickles the trainer's callbacks into the launch state and each
    worker rebuilds its trainer with them; every event fires in every rank except
    on_pretrain_routine_start, which fires in rank 0 only. So each callback that writes checks
    the rank itself (`_logging_rank`).
    """
    logger = _DVCLiveEpochLogger(live_dir)
    for event in ("on_train_start", "on_train_epoch_end", "on_fit_epoch_end", "on_train_end"):
        model.add_callback(event, getattr(logger, event))
    model.add_callback("on_pretrain_routine_start", _LabelCacheGuard())
    model.add_callback("on_model_save", _keep_a_good_copy)
    # ultralytics' DDP launch deletes the run dir, record included: rank 0 writes it again
    model.add_callback("on_pretrain_routine_start", _RecordWriter(record_path, record))


def _keep_a_good_copy(trainer: Any) -> None:
    """After each completed save, a copy of last.pt under another name, written atomically:
    ultralytics writes last.pt in place, so a kill during that write leaves it truncated, and
    without the copy the run would start afresh instead of losing one epoch."""
    last = Path(trainer.last)
    if last.is_file():
        with atomic_path(last.with_name(LAST_GOOD)) as tmp:
            shutil.copyfile(last, tmp)


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


def _logging_rank() -> bool:
    """True in the process that logs and writes files: rank 0 under DDP, or the only one
    (ultralytics fires callbacks in every DDP rank)."""
    return int(os.environ.get("RANK", -1)) in (-1, 0)


class _RecordWriter:
    """on_pretrain_routine_start: (re)write the run record once the run dir exists."""

    def __init__(self, path: Path, record: dict[str, Any]) -> None:
        self.path, self.record = path, record

    def __call__(self, trainer: Any) -> None:
        if _logging_rank():
            atomic_write_json(self.path, self.record, indent=1)


class _DVCLiveEpochLogger:
    """ultralytics callbacks that mirror results.csv into DVCLive, one step per epoch.

    Logging the rows ultralytics wrote (rather than live tensors) makes a resumed run's
    history identical to its replay: on resume the live dir is rebuilt from results.csv up to
    the checkpoint's epoch, then continued.
    """

    def __init__(self, live_dir: Path) -> None:
        self.live_dir = live_dir
        self.live: Any = None
        self.in_training_epoch = False

    def on_train_start(self, trainer: Any) -> None:
        if not _logging_rank():
            return
        history = _results_history(Path(trainer.csv))
        done = {epoch: row for epoch, row in history.items() if epoch < trainer.start_epoch}
        self.live = _write_live_history(self.live_dir, done, keep_open=True)

    def on_train_epoch_end(self, trainer: Any) -> None:
        self.in_training_epoch = _logging_rank()

    def on_fit_epoch_end(self, trainer: Any) -> None:
        # ultralytics also fires this event once more after training, for best.pt's final val
        if not self.in_training_epoch:
            return
        self.in_training_epoch = False
        row = _results_history(Path(trainer.csv)).get(trainer.epoch)
        if row is None:
            raise RuntimeError(f"epoch {trainer.epoch + 1} missing from {trainer.csv}")
        _log_epoch(self.live, trainer.epoch, row)

    def on_train_end(self, trainer: Any) -> None:
        if self.live is not None:
            self.live.end()


# results.csv column -> DVCLive metric name (the plot file under plots/metrics/)
_LIVE_NAMES = {
    "train/box_loss": "train/box_loss",
    "train/cls_loss": "train/cls_loss",
    "train/dfl_loss": "train/dfl_loss",
    "val/box_loss": "val/box_loss",
    "val/cls_loss": "val/cls_loss",
    "val/dfl_loss": "val/dfl_loss",
    "metrics/mAP50(B)": "val/mAP50",
    "metrics/mAP50-95(B)": "val/mAP50-95",
    "metrics/precision(B)": "val/precision",
    "metrics/recall(B)": "val/recall",
}


def _results_history(results_csv: Path) -> dict[int, dict[str, float]]:
    """0-based epoch -> row of ultralytics' results.csv; a re-run epoch (after a resume) keeps
    its last row."""
    if not results_csv.exists():
        return {}
    with open(results_csv, newline="", encoding="utf-8") as f:
        rows = [{k.strip(): float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    return {int(row["epoch"]) - 1: row for row in rows}


def _write_live_history(live_dir: Path, history: dict[int, dict[str, float]],
                        keep_open: bool = False) -> Any:
    """Start DVCLive afresh in live_dir and log `history`; returns the Live if keep_open."""
    from dvclive import Live

    live = Live(dir=str(live_dir), resume=False, save_dvc_exp=False, dvcyaml=None)
    for epoch in sorted(history):
        _log_epoch(live, epoch, history[epoch])
    if keep_open:
        return live
    live.end()
    return None


def _log_epoch(live: Any, epoch: int, row: dict[str, float]) -> None:
    live.step = epoch
    for column, name in _LIVE_NAMES.items():
        if column in row:
            value = row[column]
            if not math.isfinite(value):
                log.warning("epoch %d: %s is %s", epoch + 1, column, value)
            live.log_metric(name, value)
    live.next_step()


def _skip_label_cache_file(prefix: str, path: Path, x: dict, version: str) -> None:
    x["version"] = version  # the original sets this in place; get_labels() relies on it
    log.info("not writing label cache %s (the dataset belongs to another stage)", path)


def _skip_label_cache_files_in_this_process() -> None:
    """The patch of `_no_label_cache_files`, for good: for a DDP worker, a process of its own
    that ends with training."""
    from ultralytics.data import dataset

    dataset.save_dataset_cache_file = _skip_label_cache_file


class _LabelCacheGuard:
    """Keeps DDP workers from writing label cache files into the dataset.

    Every rank scans the training labels, and a rank that finds no cache file writes one. No
    callback can patch that in ranks 1+ in time (the only event before the scan,
    on_pretrain_routine_start, fires in rank 0 only), but every worker unpickles the callbacks
    first thing: unpickling this object installs the patch (`__reduce__`). As a callback it
    does nothing; in this process `_no_label_cache_files` already holds the patch.
    """

    def __call__(self, trainer: Any) -> None:
        pass

    def __reduce__(self) -> tuple[Any, tuple]:
        return _guard_this_process, ()


def _guard_this_process() -> _LabelCacheGuard:
    """What unpickling a _LabelCacheGuard runs (in a DDP worker)."""
    _skip_label_cache_files_in_this_process()
    return _LabelCacheGuard()


@contextlib.contextmanager
def _no_label_cache_files() -> Iterator[None]:
    """Keep ultralytics from writing labels/<split>.cache into the dataset directory.

    The dataset is another DVC stage's output: a file added there changes that output's hash,
    so the next `dvc repro` would rebuild the dataset and retrain. Without the cache file
    ultralytics rescans the label files each run (seconds, even for the full datasets).
    """
    from ultralytics.data import dataset

    original = dataset.save_dataset_cache_file
    dataset.save_dataset_cache_file = _skip_label_cache_file
    try:
        yield
    finally:
        dataset.save_dataset_cache_file = original


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


