"""Our ultralytics callbacks: DVCLive curves, a safe copy of last.pt, the run record, and no
label cache files in the dataset (the dataset is another DVC stage's output).

Under DDP, ultralytics cloudpickles the trainer's callbacks into its launch state and each worker
rebuilds its trainer with them; every event fires in every rank except
on_pretrain_routine_start, which fires in rank 0 only. So each callback that writes checks the
rank itself (`_logging_rank`).
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common.files import atomic_path, atomic_write_json

log = logging.getLogger(__name__)

LAST_GOOD = "last_good.pt"  # the last completely written last.pt (see _keep_a_good_copy)


def add_callbacks(model: Any, live_dir: Path, record_path: Path, record: dict[str, Any]) -> None:
    """Our ultralytics callbacks on `model` (a YOLO): DVCLive logging into live_dir, the
    last.pt copy, the run record, and the label-cache guard for DDP workers."""
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
        history = results_history(Path(trainer.csv))
        done = {epoch: row for epoch, row in history.items() if epoch < trainer.start_epoch}
        self.live = write_live_history(self.live_dir, done, keep_open=True)

    def on_train_epoch_end(self, trainer: Any) -> None:
        self.in_training_epoch = _logging_rank()

    def on_fit_epoch_end(self, trainer: Any) -> None:
        # ultralytics also fires this event once more after training, for best.pt's final val
        if not self.in_training_epoch:
            return
        self.in_training_epoch = False
        row = results_history(Path(trainer.csv)).get(trainer.epoch)
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


def results_history(results_csv: Path) -> dict[int, dict[str, float]]:
    """0-based epoch -> row of ultralytics' results.csv; a re-run epoch (after a resume) keeps
    its last row."""
    if not results_csv.exists():
        return {}
    with open(results_csv, newline="", encoding="utf-8") as f:
        rows = [{k.strip(): float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    return {int(row["epoch"]) - 1: row for row in rows}


def write_live_history(live_dir: Path, history: dict[int, dict[str, float]],
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


class _LabelCacheGuard:
    """Keeps DDP workers from writing label cache files into the dataset.

    Every rank scans the training labels, and a rank that finds no cache file writes one. No
    callback can patch that in ranks 1+ in time (the only event before the scan,
    on_pretrain_routine_start, fires in rank 0 only), but every worker unpickles the callbacks
    first thing: unpickling this object installs the patch (`__reduce__`). As a callback it
    does nothing; in this process `no_label_cache_files` already holds the patch.
    """

    def __call__(self, trainer: Any) -> None:
        pass

    def __reduce__(self) -> tuple[Any, tuple]:
        return _guard_this_process, ()


def _guard_this_process() -> _LabelCacheGuard:
    """What unpickling a _LabelCacheGuard runs (in a DDP worker): the patch of
    `no_label_cache_files`, for good, since the worker is a process that ends with training."""
    from ultralytics.data import dataset

    dataset.save_dataset_cache_file = _skip_label_cache_file
    return _LabelCacheGuard()


@contextlib.contextmanager
def no_label_cache_files() -> Iterator[None]:
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
