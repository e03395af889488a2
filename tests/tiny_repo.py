"""The tiny sample world the DVC-graph tests run: a temporary git + DVC copy of the repository
with params small enough that a whole `dvc repro` is a couple of minutes of CPU.

Most of that time is each stage's process starting (torch, ultralytics): the tests that run the
graph keep the number of stage runs low.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

TINY = {
    "translator": "cyclegan",  # what the graph tests train, whichever translator is the default
    "data": {"sample": {"kitti_frames": 16, "vkitti2_scenes": 1, "vkitti2_frames_per_scene": 8,
                        "bdd_train_frames_per_weather": 3, "bdd_val_frames_per_weather": 4,
                        "pretrain_frames": 0}},
    "translators": {"cyclegan": {"ngf": 4, "ndf": 4, "n_blocks": 1, "crop_size": 32,
                                 "n_epochs": 1, "n_epochs_decay": 0},
                    "nst": {"steps": 2}},
    "detector": {"model": "yolov5n.yaml", "epochs": 2, "imgsz": 128, "batch": 8},
    # from scratch: a pretraining stage run per graph would cost every graph test its start-up
    # (tests/test_pipeline_pretrain.py runs it)
    "pretrain": {"epochs": 0},
}


def merge(base: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value


def run(cwd: Path, *args: str) -> str:
    """Run a command in `cwd` with the venv's tools first on PATH; fail the test if it fails."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "YOLO_CONFIG_DIR": str(cwd / ".yolo"), "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def make_repo(root: Path) -> Path:
    """A fresh git + DVC repository at `root` holding the project's files and TINY params."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    params = yaml.safe_load((root / "params.yaml").read_text())
    merge(params, TINY)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(root, "git", "init", "-q")
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "tiny sample world")
    return root


def out_hashes(root: Path) -> dict[str, list[tuple[str, str]]]:
    """Each stage's outs in dvc.lock: (path, md5), sorted."""
    stages = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    return {name: sorted((out["path"], out.get("md5", "")) for out in stage.get("outs", []))
            for name, stage in stages.items()}
