"""Faults across the graph: SIGKILL a `dvc repro` inside each long stage in turn, then run again.

What a user whose job was killed (OOM killer, a pre-empted cluster node, Ctrl-\\) relies on:
- a killed stage never leaves a half-written out where a later stage (or DVC) would take it;
- the re-run finishes, and every stage but the detector gives the same bytes as a run that was
  never interrupted (their outs hash the same in dvc.lock);
- the detector resumes from its last complete checkpoint (ultralytics' last.pt, saved every epoch
  in place, or its copy when the kill hit that write), so at most one epoch is lost. Its resume
  is not bit-exact (ultralytics does not checkpoint RNG state): the test prints the metric
  difference against an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from tiny_repo import BIN, merge, out_hashes, run

# Long enough that each trainer is killed with work still to do (after its first checkpoint).
LONGER = {"translators": {"cyclegan": {"n_epochs": 3}}, "detector": {"epochs": 3}}
KILL_TIMEOUT_S = 900


def first(pattern: str, root: Path) -> Path | None:
    return next(iter(sorted(root.glob(pattern))), None)


def has_files(pattern: str) -> Callable[[Path, str], bool]:
    """Ready once a temp dir/file of the stage's atomic write exists and holds something."""
    def ready(root: Path, log: str) -> bool:
        found = first(pattern, root)
        return found is not None and (found.is_file() or any(found.rglob("*")))
    return ready


def exists(pattern: str) -> Callable[[Path, str], bool]:
    """Ready as soon as the stage's temp dir exists (a fast stage: it fills it in milliseconds)."""
    return lambda root, log: first(pattern, root) is not None


def printed(progress: str) -> Callable[[Path, str], bool]:
    """Ready once the stage's progress bar is in the log (for stages that only publish at the
    very end, where a temp dir exists for a few milliseconds)."""
    return lambda root, log: progress in log


# (stage, when it is far enough in to kill, the outs it must not have published)
KILLS = [
    ("ingest", has_files("outputs/.ingest.tmp-*"), ["outputs/ingest"]),
    ("translator_train@fog", has_files("outputs/resume/translators/fog/last.pt"),
     ["outputs/translators/fog"]),
    ("translate@fog", has_files("outputs/translate/.fog.tmp-*/images/*/*/*.jpg"),
     ["outputs/translate/fog"]),
    ("build_dataset", exists("outputs/.dataset.tmp-*"), ["outputs/dataset"]),
    # once an epoch's checkpoint is complete (its copy exists): killing during the first save is
    # losing the one epoch there is, which the resume cannot show
    ("train_detector", has_files("outputs/resume/detector/weights/last_good.pt"),
     ["outputs/detector/model", "outputs/detector/dvclive"]),
    ("predict", printed("predict:"), ["outputs/predict"]),
]


def env_for(cwd: Path) -> dict[str, str]:
    # unbuffered: "Running stage ..." must reach the log when printed, not when a buffer fills
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "YOLO_CONFIG_DIR": str(cwd / ".yolo"), "PYTHONUNBUFFERED": "1"}


def repro_killed_in(root: Path, stage: str, ready: Callable[[Path, str], bool]) -> str:
    """Start `dvc repro`, SIGKILL its whole process group once `stage` runs and `ready` holds."""
    log_path = root / f".kill-{stage.replace('@', '-')}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(["dvc", "repro"], cwd=root, env=env_for(root), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + KILL_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            text = log_path.read_text()
            started = text.find(f"Running stage '{stage}'")
            if started >= 0 and ready(root, text[started:]):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return log_path.read_text()
            if proc.poll() is not None:
                pytest.fail(f"dvc repro ended before {stage} could be killed:\n"
                            f"{log_path.read_text()[-3000:]}")
            time.sleep(0.005)
        pytest.fail(f"{stage} never got far enough to be killed:\n{log_path.read_text()[-3000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
def test_kill_each_long_stage_then_rerun(repo: Path):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    merge(params, LONGER)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    later = [stage for stage, _, _ in KILLS]
    resumed_detector = ""
    for i, (stage, ready, outs) in enumerate(KILLS):
        log = repro_killed_in(repo, stage, ready)
        # nothing after the killed stage ran, and the killed stage published nothing
        assert not any(f"Running stage '{s}'" in log for s in later[i + 1:]), log
        for out in outs:
            assert not (repo / out).exists(), f"{stage} was killed but {out} exists"
        if stage == "predict":  # the detector was resumed by the run this one interrupted
            resumed_detector = log
    assert "resuming detector training from" in resumed_detector

    out = run(repo, "dvc", "repro")
    assert "Running stage 'evaluate'" in out
    assert "up to date" in run(repo, "dvc", "status")
    killed = out_hashes(repo)
    killed_metrics = json.loads((repo / "outputs/eval/metrics.json").read_text())
    curves = list((repo / "outputs/detector/dvclive/plots/metrics").rglob("*.tsv"))
    assert curves and all(len(c.read_text().splitlines()) == 1 + 3 for c in curves)  # each epoch
    # once
    # no leftovers of the killed writes where a later stage or DVC would see them
    assert not list((repo / "outputs").rglob(".*.tmp-*"))

    # the same graph never interrupted: each killed stage forced alone (the others ran once,
    # uninterrupted), then what follows a changed best.pt
    run(repo, "dvc", "repro", "-f", "-s", *(stage for stage, _, _ in KILLS))
    run(repo, "dvc", "repro")
    clean = out_hashes(repo)
    clean_metrics = json.loads((repo / "outputs/eval/metrics.json").read_text())
    detector_side = {"train_detector", "predict", "evaluate"}  # all read best.pt
    assert {k: v for k, v in killed.items() if k not in detector_side} == {
        k: v for k, v in clean.items() if k not in detector_side}
    assert killed_metrics["occlusion"]["all"]["n_images"] == clean_metrics["occlusion"]["all"][
        "n_images"]
    print(f"\nresumed detector mAP50 {killed_metrics['map50']:.4f} vs uninterrupted "
          f"{clean_metrics['map50']:.4f} (difference "
          f"{killed_metrics['map50'] - clean_metrics['map50']:+.4f}); mAP50:95 "
          f"{killed_metrics['map50_95']:.4f} vs {clean_metrics['map50_95']:.4f}")
