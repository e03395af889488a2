"""Stage translator_train on several devices: the stage launches itself under torchrun, for real
on the CPU (gloo, 2 processes), on a tiny sample world ingested as the ingest stage does it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from test_translators_cyclegan import TINY
from tiny_repo import merge

import pipeline.ingest
from common.errors import UserError
from pipeline.translator_train import launch_workers

REPO = Path(__file__).resolve().parents[1]
# 8 clone frames (over 2 ranks: 4 each, 2 batches of 2 per epoch), 3 BDD foggy train frames;
# 128 px wide frames are 128×39, enough for TINY's 32-px crops
WORLD = {"translator": "cyclegan",
         "data": {"sample": {"kitti_frames": 2, "vkitti2_scenes": 1,
                             "vkitti2_frames_per_scene": 8, "bdd_train_frames_per_weather": 3,
                             "bdd_val_frames_per_weather": 1, "width": 128}},
         "translators": {"cyclegan": {**TINY, "batch_size": 2, "n_epochs": 2,
                                      "n_epochs_decay": 1, "keep_checkpoints": True,
                                      "score_every": 2, "score_frames": 4}}}
FIT = Path("outputs/translators/fog")
CHECKPOINT = Path("outputs/resume/translators/fog/last.pt")


def edit_params(edit) -> None:
    raw = yaml.safe_load(Path("params.yaml").read_text())
    edit(raw)
    Path("params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> Path:
    """A working directory with tiny params and the ingest stage's output."""
    root = tmp_path_factory.mktemp("translator_train")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        edit_params(lambda raw: merge(raw, WORLD))
        pipeline.ingest.main([])
    return root


@pytest.fixture
def workdir(ingested: Path, tmp_path: Path, monkeypatch) -> Path:
    """A copy of it as the current directory; the workers import this checkout."""
    root = tmp_path / "work"
    shutil.copytree(ingested, root)  # the manifests' paths are relative: they stay valid
    monkeypatch.chdir(root)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return root


def no_temp_dirs() -> bool:
    return not list(Path("outputs/translators").glob(".fog.tmp-*"))


@pytest.mark.slow  # ~30 s: two torchrun launches of 2 processes each
def test_two_workers_train_cyclegan_and_only_the_stage_publishes(workdir: Path, capfd) -> None:
    launch_workers("fog", 2, "cpu")
    summary = json.loads((FIT / "train_summary.json").read_text())
    assert (summary["world_size"], summary["iterations_per_epoch"], summary["iterations"]) == (
        2, 2, 6)
    assert (FIT / "G_A.pt").is_file() and (FIT / "config.json").is_file() and no_temp_dirs()
    state = torch.load(CHECKPOINT, weights_only=True)
    pools = [rank["pool_B"]["images"] for rank in state["ranks"]]
    assert len(pools) == 2 and pools[0].shape == pools[1].shape == (12, 3, 32, 32)
    assert not torch.equal(pools[0], pools[1])  # each rank trained on its own shard
    # rank 0 scored epochs 2 and 3 with the real target score (KID against the 3 BDD foggy
    # train frames) and published the better one
    selection = summary["selection"]
    assert [s["epoch"] for s in selection["scores"]] == [2, 3]
    kids = [s["kid"] for s in selection["scores"]]
    assert all(isinstance(k, float) and np.isfinite(k) for k in kids)
    assert selection["published_score"] == min(kids)
    assert selection["published_epoch"] == 2 + kids.index(min(kids))
    assert state["selection"]["scores"] == [[2, kids[0]], [3, kids[1]]]
    weights = (FIT / "G_A.pt").read_bytes()
    capfd.readouterr()

    # the same params again: the workers resume from the finished checkpoint, train nothing
    # and publish the same bytes
    launch_workers("fog", 2, "cpu")
    assert "cyclegan: resuming from iteration 6 of 6" in capfd.readouterr().out
    assert (FIT / "G_A.pt").read_bytes() == weights and no_temp_dirs()


def test_a_failing_worker_is_one_line_and_publishes_nothing(workdir: Path, capfd) -> None:
    # valid at load, but the 39-px-high sim frames cannot give 64-px crops: each worker fails
    edit_params(lambda raw: raw["translators"]["cyclegan"].update(crop_size=64))
    with pytest.raises(UserError) as caught:
        launch_workers("fog", 2, "cpu")
    assert str(caught.value) == ("translator_train@fog: 2 torchrun workers failed (exit code "
                                 "1); see their output above")
    assert "crop_size 64; lower crop_size" in capfd.readouterr().err  # the workers' own line
    assert not FIT.exists() and no_temp_dirs()


@pytest.mark.skipif(torch.cuda.device_count() >= 2, reason="needs a machine without 2 GPUs")
def test_gpus_torch_does_not_see_are_one_line(workdir: Path) -> None:
    edit_params(lambda raw: raw["translators"].update(device="0,1"))
    count = torch.cuda.device_count()
    seen = f"{count} CUDA GPU{'' if count == 1 else 's'}"
    hint = "use auto or cpu" if count == 0 else "indices 0..0 exist"
    for stage in ("translator_train", "translate"):
        run = subprocess.run([sys.executable, "-m", f"pipeline.{stage}", "fog"],
                             env=os.environ, capture_output=True, text=True)
        assert run.returncode == 2, run.stdout + run.stderr
        lines = run.stderr.strip().splitlines()
        assert lines[-1] == (f"error in stage {stage}: translators.device: '0,1' asks "
                             f"for GPU 1 but torch sees {seen}; {hint}")
        if count == 0:  # first, why (common.runtime.no_gpu_notice), in one line
            assert lines[:-1] and lines[-2].startswith("common.runtime: device 0,1: torch ")
    assert not FIT.exists()
