"""The study's grid as DVC experiments: name them, queue what is missing, run, read back by rev.

One experiment per (arm, seed): an arm is a translator, or the oracle (translator none trained on
the target domain's own frames). Nothing is re-run here: an experiment that finished with the
params the grid asks for is reused, and its outputs are read from DVC (cache or remote) at its
rev, with `dvc.api` — whether this machine ran it or `dvc exp pull` brought it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from dvc.api import DVCFileSystem

from data.manifest import IMAGE_DTYPES, OBJECT_DTYPES, apply_dtypes
from evaluation import load_predictions
from pipeline.common import EVAL, INGEST, PREDICT
from pipeline.overrides import set_args
from pipeline.params import StudyParams, with_overrides, without_study

ORACLE = "oracle"
IDEAL = "ideal"  # the perfect appearance translator: its Δ is the headroom
POLL_S = (5.0, 30.0)  # seconds between two `dvc queue status`: a tenth of the current run's
# time so far, within these bounds (each poll is a dvc process: ~0.7 s of CPU)
NO_WORKER_S = 60.0  # no queue worker for this long while ours wait: start one; twice: give up
# `dvc queue status` / `dvc exp show` can fail while a worker rewrites the queue's files (seen:
# "unexpected error - Expecting value: line 1 column 1"): that poll is retried; this many failed
# in a row end the wait (the workers run on; `--collect-only` collects what they finish)
POLL_FAILURES = 5
LOG_LINES = 40  # of a failed experiment's `dvc queue logs`
REMOVED = "Removed"  # a waited-for task's state once `dvc queue remove` dropped it


class StudyError(RuntimeError):
    """DVC refused or failed at something the study needs; the message says what."""


@dataclass
class Cell:
    """One experiment of the grid."""

    arm: str  # a translator, or ORACLE
    seed: int
    name: str  # study-<arm>-s<seed>-<hash of study.set>
    overrides: dict[str, Any]  # dotted key -> value, queued as `-S ++key=value`
    params: dict = field(repr=False)  # params.yaml as the experiment runs it (without `study`)

    def set_args(self) -> list[str]:
        return set_args(self.overrides)


@dataclass
class Entry:
    """One experiment as `dvc exp show` lists it."""

    name: str
    rev: str  # the experiment's commit; for queued / running / failed ones, the queue task
    state: str  # success | queued | running | failed
    params: dict = field(repr=False)  # its params.yaml, without `study`


def grid(study: StudyParams, raw: dict, translators: list[str] | None = None,
         seeds: list[int] | None = None, oracle: bool | None = None,
         ideal: bool | None = None) -> list[Cell]:
    """The cells of the grid (or of a slice of it), baseline first, each arm by seed; then the
    ideal arm and the oracle."""
    base = without_study(raw)
    tag = hashlib.sha1(json.dumps(study.set, sort_keys=True).encode()).hexdigest()[:4]
    arms = [(name, {"translator": name}) for name in translators or study.translators]
    if study.ideal if ideal is None else ideal:
        arms.append((IDEAL, {"translator": IDEAL}))
    if study.oracle if oracle is None else oracle:
        arms.append((ORACLE, {**study.oracle_set, "translator": "none",
                              "dataset.train_on": "bdd100k"}))
    cells = []
    for arm, keys in arms:
        for seed in seeds or study.seeds:
            overrides = {**study.set, **keys, "seed": seed}
            cells.append(Cell(arm, seed, f"study-{arm}-s{seed}-{tag}", overrides,
                              with_overrides(base, overrides)))
    return cells


# Thread counts the libraries this process imports set for themselves: ultralytics' import sets
# OMP_NUM_THREADS=1 when it is unset, and a queue worker started from here would hand that to
# every stage it runs. Such a run trains on 1 thread where one from a shell-started worker trains
# on 2: other floats, another mAP50 for the same params (seen: workers of one study with and
# without it). Workers get these as the user launched the study.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_MAX_THREADS")


def launch_environ() -> dict[str, str] | None:
    """The environment this process was started with (Linux: /proc/self/environ, which
    os.environ's changes do not touch); None where it cannot be read."""
    try:
        raw = Path("/proc/self/environ").read_bytes()
    except OSError:
        return None
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {os.fsdecode(key): os.fsdecode(value) for key, value in pairs}


def worker_env(environ: dict[str, str], launched: dict[str, str] | None) -> dict[str, str]:
    """`environ` with THREAD_VARS as they were at launch (unset if they were unset)."""
    env = dict(environ)
    if launched is None:
        return env
    for var in THREAD_VARS:
        if var in launched:
            env[var] = launched[var]
        else:
            env.pop(var, None)
    return env


def dvc(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the venv's `dvc`; the queue worker it may start runs the stages with this PATH, and
    with the thread counts the study was launched with (THREAD_VARS)."""
    bindir = Path(sys.executable).parent
    env = {**worker_env(dict(os.environ), launch_environ()),
           "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.setdefault("YOLO_CONFIG_DIR", str(Path.cwd() / ".yolo"))
    exe = bindir / "dvc"
    cmd = [str(exe) if exe.exists() else "dvc", *args]
    # files, not pipes: the worker `dvc queue start` leaves running inherits them, and a pipe
    # would keep this call waiting until the whole queue is done
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        code = subprocess.run(cmd, env=env, stdout=out, stderr=err).returncode
        out.seek(0)
        err.seek(0)
        proc = subprocess.CompletedProcess(cmd, code, out.read(), err.read())
    if check and proc.returncode:
        raise StudyError(f"`dvc {' '.join(args)}` failed:\n{proc.stdout}{proc.stderr}".strip())
    return proc


def experiments() -> dict[str, list[Entry]]:
    """The experiments of HEAD by name: finished (run here or pulled), queued, running, failed."""
    found: dict[str, list[Entry]] = {}
    for baseline in json.loads(dvc("exp", "show", "--json").stdout):
        for exp in baseline.get("experiments") or []:
            first = exp["revs"][0]
            name = exp.get("name") or first.get("name")
            if not name:
                continue
            params = ((first.get("data") or {}).get("params") or {}).get("params.yaml") or {}
            state = (exp.get("executor") or {}).get("state") or "success"
            found.setdefault(name, []).append(
                Entry(name, first["rev"], state, without_study(params.get("data") or {})))
    return found


def differences(a: Any, b: Any, key: str = "") -> list[str]:
    """Dotted keys where two params mappings differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in differences(a.get(k), b.get(k), f"{key}.{k}" if key else str(k))]
    return [] if a == b else [key]


@dataclass
class Plan:
    reuse: list[Cell] = field(default_factory=list)  # finished with these params
    wait: list[Cell] = field(default_factory=list)  # already queued or running with them
    queue: list[Cell] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)  # queue tasks to remove first (failed, stale)
    force: set[str] = field(default_factory=set)  # names whose experiment (other params) goes
    notes: list[str] = field(default_factory=list)


def plan(cells: list[Cell], found: dict[str, list[Entry]]) -> Plan:
    out = Plan()
    for cell in cells:
        entries = found.get(cell.name, [])
        same = {e.state for e in entries if e.params == cell.params}
        if "success" in same:
            out.reuse.append(cell)
            continue
        if same & {"queued", "running"}:
            out.wait.append(cell)
            continue
        out.queue.append(cell)
        for entry in entries:
            if entry.state in ("failed", "queued"):
                out.drop.append(entry.rev)
                why = "failed before" if entry.state == "failed" else "queued with other params"
                out.notes.append(f"{cell.name}: {why}, queued again")
            else:
                out.force.add(cell.name)
                keys = differences(entry.params, cell.params)
                out.notes.append(f"{cell.name}: its experiment ran with other params "
                                 f"({', '.join(keys[:3])}), replaced")
    return out


def submit(todo: Plan) -> None:
    if todo.drop:
        dvc("queue", "remove", *todo.drop)
    for cell in todo.queue:
        force = ["-f"] if cell.name in todo.force else []
        dvc("exp", "run", "--queue", "-n", cell.name, *force, *cell.set_args())


def queue_status() -> tuple[dict[str, str], int]:
    """{task (7 hex): Queued | Running | Success | Failed}, and how many workers are up.
    A task `dvc queue remove` dropped is not listed (task_state says what that means)."""
    states, workers = {}, 0
    for line in dvc("queue", "status").stdout.splitlines():
        tokens = line.split()
        counts = re.match(r"Worker status: (\d+) active, (\d+) idle", line)
        if counts:
            workers = int(counts[1]) + int(counts[2])
        elif len(tokens) >= 2 and re.fullmatch(r"[0-9a-f]{7}", tokens[0]):
            states[tokens[0]] = tokens[-1]
    return states, workers


def worker_up(states: dict[str, str], workers: int) -> bool:
    """Whether a queue worker is up: DVC counts one, or a task is running. DVC's count alone is
    not enough: seen reading `0 active, 0 idle` while three workers ran three tasks, and a study
    that believed it started one more worker, then stopped waiting."""
    return workers > 0 or "Running" in states.values()


def task_state(state: str | None, succeeded: bool) -> str:
    """A waited-for task's state from its `dvc queue status` row (None: the queue no longer
    lists it). Unlisted, it ended as Success only if `dvc exp show` has its experiment
    succeeded (`succeeded`); otherwise `dvc queue remove` dropped it: REMOVED, not run."""
    if state is not None:
        return state
    return "Success" if succeeded else REMOVED


def succeeded_names(cells: list[Cell]) -> set[str]:
    """The cells whose experiment `dvc exp show` lists as finished, with the cell's params."""
    params = {cell.name: cell.params for cell in cells}
    return {e.name for entries in experiments().values() for e in entries
            if e.state == "success" and e.params == params.get(e.name)}


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def run_queue(cells: list[Cell]) -> tuple[dict[str, float], list[str]]:
    """Start the queue worker and wait for these (queued) cells, printing k/N done and an ETA.

    One worker runs them one after another (`dvc queue start`'s default; on 2 cores parallel
    runs are slower). Returns each finished cell's run time (to a poll's precision), and the
    names of those removed from the queue before they finished (not run).
    """
    names = {cell.name for cell in cells}
    tasks = {e.rev[:7]: e.name for entries in experiments().values() for e in entries
             if e.name in names and e.state in ("queued", "running")}
    if not tasks:
        return {}, []
    dvc("queue", "start")
    watch = QueueWatch(cells, tasks)
    while not watch.done():
        time.sleep(min(POLL_S[1], max(POLL_S[0], (time.monotonic() - watch.last) / 10)))
        read = watch.read_queue()
        if read is None:
            continue
        states, workers, succeeded = read
        watch.update(states, succeeded)
        if not watch.keep_a_worker(states, workers):
            break
    print(f"study: the queue took {clock(time.monotonic() - watch.start)}", flush=True)
    return watch.seconds, watch.removed


class QueueWatch:
    """What run_queue knows between two polls of `dvc queue status`: each waited-for task's run
    time once it ended, the tasks removed unrun, and the queue worker's health."""

    def __init__(self, cells: list[Cell], tasks: dict[str, str]) -> None:
        self.cells, self.tasks = cells, tasks  # tasks: {task (7 hex): cell name}
        self.start = self.last = time.monotonic()  # last: when the latest run ended
        self.seconds: dict[str, float] = {}
        self.removed: list[str] = []
        self.started: dict[str, float] = {}  # when a run was first seen running
        # unlisted on one poll only: a task a worker is just taking can be missing from `dvc
        # queue status` for a moment (seen with two workers: a running task reported removed)
        self.unlisted_once: set[str] = set()
        self.failed = 0
        self.failed_polls = 0
        self.idle_since: float | None = None
        self.restarted = False

    def done(self) -> bool:
        return len(self.seconds) + len(self.removed) == len(self.tasks)

    def waiting(self) -> dict[str, str]:
        return {t: n for t, n in self.tasks.items()
                if n not in self.seconds and n not in self.removed}

    def read_queue(self) -> tuple[dict[str, str], int, set[str]] | None:
        """The queue's task states, its worker count and the succeeded cells (asked of `dvc exp
        show` only when a waited-for task is unlisted); None when DVC could not be read, which
        is said and retried at the next poll until POLL_FAILURES in a row."""
        try:
            states, workers = queue_status()
            unlisted = any(t not in states for t in self.waiting())
            succeeded = succeeded_names(self.cells) if unlisted else set()
        except StudyError as err:
            self.failed_polls += 1
            if self.failed_polls == POLL_FAILURES:
                raise StudyError(f"{err}\n(the queue could not be read {POLL_FAILURES} times "
                                 "in a row; its workers run on: `dvc queue status`, then "
                                 "`python -m pipeline.study --collect-only`)") from err
            print(f"study: reading the queue failed ({str(err).splitlines()[0]}); trying again "
                  "at the next poll", flush=True)
            return None
        self.failed_polls = 0
        return states, workers, succeeded

    def update(self, states: dict[str, str], succeeded: set[str]) -> None:
        """Record what ended since the last poll, printing k/N done and an ETA."""
        now, before = time.monotonic(), self.last
        for task, name in self.waiting().items():
            state = task_state(states.get(task), name in succeeded)
            if state == REMOVED and name not in self.unlisted_once:
                self.unlisted_once.add(name)  # removed only if still unlisted on the next poll
                continue
            self.unlisted_once.discard(name)
            if state == "Running":
                self.started.setdefault(name, now)
            elif state == REMOVED:
                self.removed.append(name)
                print(f"study: {name} was removed from the queue: not run", flush=True)
            elif state in ("Success", "Failed"):
                self.seconds[name] = now - self.started.get(name, before)
                self.last = now
                self.failed += state == "Failed"
                left = len(self.tasks) - len(self.seconds) - len(self.removed)
                mean = sum(self.seconds.values()) / len(self.seconds)
                eta = f", ETA {clock(max(0.0, mean * left))}" if left else ""
                print(f"study: {len(self.seconds)}/{len(self.tasks)} done ({self.failed} "
                      f"failed): {name} {state.lower()} after {clock(self.seconds[name])}{eta}",
                      flush=True)

    def keep_a_worker(self, states: dict[str, str], workers: int) -> bool:
        """Start a worker once if none has run for NO_WORKER_S while cells wait; False (stop
        waiting, collect what finished) when that happens a second time."""
        now = time.monotonic()
        if worker_up(states, workers) or self.done():
            self.idle_since = None
        elif self.idle_since is None:
            self.idle_since = now
        elif now - self.idle_since > NO_WORKER_S:
            if self.restarted:
                print("study: no queue worker is running and experiments still wait; see "
                      "`dvc queue status`; collecting what finished", flush=True)
                return False
            dvc("queue", "start")
            self.restarted, self.idle_since = True, None
        return True


def log_tail(entry: Entry) -> str:
    proc = dvc("queue", "logs", entry.rev, check=False)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return "\n".join(lines[-LOG_LINES:])


# --- reading finished experiments back -------------------------------------------------------

@dataclass
class Run:
    """A finished experiment, read back at its rev."""

    cell: Cell
    rev: str
    world: str | None  # val_world of its BDD100K val frames: runs pair only within one world
    predictions_hash: str | None  # outputs/predict's
    map50: float | None  # its own metrics.json, for the record


def _out_hash(lock: dict, stage: str) -> str | None:
    outs = ((lock.get("stages") or {}).get(stage) or {}).get("outs") or [{}]
    return outs[0].get("md5")


def read_run(cell: Cell, entry: Entry) -> tuple[Run, pd.DataFrame]:
    """The experiment's record and predictions, from DVC at its rev (nothing is re-run)."""
    fs = DVCFileSystem(".", rev=entry.rev)
    lock = yaml.safe_load(fs.read_text("dvc.lock")) or {}
    metrics = json.loads(fs.read_text((EVAL / "metrics.json").as_posix()))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "predictions.json"
        path.write_bytes(fs.read_bytes((PREDICT / "predictions.json").as_posix()))
        predictions, _ = load_predictions(path)
    run = Run(cell, entry.rev, val_world(*read_val_tables(entry.rev)), _out_hash(lock, "predict"),
              metrics.get("map50"))
    return run, predictions


def val_world(images: pd.DataFrame, objects: pd.DataFrame) -> str:
    """A hash of the BDD100K val frames runs are scored on: every image row (its path aside,
    which names where the world was written) and every box. Two experiments pair only when it
    is equal; it does not depend on what else ingest wrote (e.g. the oracle's train frames)."""
    digest = hashlib.sha1()
    for table in (images.drop(columns=["path"], errors="ignore"), objects):
        ordered = table.sort_values(list(table.columns), kind="stable").reset_index(drop=True)
        digest.update(ordered.to_csv(index=False, lineterminator="\n").encode())
    return digest.hexdigest()[:16]


def read_val_tables(rev: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """BDD100K val images and their objects, from the manifest at `rev` (as `evaluate` reads it)."""
    fs = DVCFileSystem(".", rev=rev)
    tables = []
    for name, dtypes in (("images", IMAGE_DTYPES), ("objects", OBJECT_DTYPES)):
        path = (INGEST / "bdd100k" / f"{name}.parquet").as_posix()
        tables.append(apply_dtypes(pd.read_parquet(io.BytesIO(fs.read_bytes(path))), dtypes,
                                   f"{path}@{rev[:7]}"))
    images, objects = tables
    images = images[images["split"] == "val"]
    return images, objects[objects["image_id"].isin(images["image_id"])]
