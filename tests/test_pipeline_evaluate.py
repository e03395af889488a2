"""The `evaluate` stage (pipeline/evaluate.py) on the real BDD100K fixture, without DVC: the
normal case (every val frame listed in predictions.json) gives exactly the evaluator's figures,
plus a coverage record that says so; a predictions.json whose frames match no val frame stops
the stage with one line, not an mAP of 0."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from data import write_manifest
from data.bdd100k import frames_to_tables, load_frames
from evaluation import EvalConfig, evaluate, load_predictions

REPO = Path(__file__).resolve().parent.parent
MOT = REPO / "tests" / "fixtures" / "bdd100k" / "scalabel_mot_sample"
HELD_OUT = {"map50": 0.5, "map50_95": 0.25}


@pytest.fixture
def stage_dir(tmp_path: Path) -> Path:
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy2(REPO / name, tmp_path / name)
    tables = frames_to_tables(load_frames(MOT / "track_sample_anns.json"),
                              {"car": "car", "truck": "truck"}, split="val", source="fixture")
    write_manifest(tables, tmp_path / "outputs" / "ingest" / "bdd100k")
    predict = tmp_path / "outputs" / "predict"
    predict.mkdir(parents=True)
    shutil.copy2(MOT / "bbox_predictions.json", predict / "predictions.json")
    (predict / "held_out.json").write_text(json.dumps(HELD_OUT))
    return tmp_path


def run_stage(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "pipeline.evaluate"], cwd=root, env=env,
                          capture_output=True, text=True)


def test_stage_normal_case_equals_the_evaluator(stage_dir: Path):
    proc = run_stage(stage_dir)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((stage_dir / "outputs" / "eval" / "metrics.json").read_text())
    coverage = metrics.pop("coverage")
    assert (coverage["gt_frames"], coverage["matched_by_name"], coverage["matched_by_stem"],
            coverage["gt_frames_without_entry"], coverage["prediction_frames_not_in_gt"]) == (
        202, 202, 0, 0, 0)
    assert metrics.pop("held_out") == HELD_OUT
    skipped = metrics.pop("skipped")
    assert skipped["predictions"]["reasons"]["class_not_evaluated"]["count"] == 1290
    tables = frames_to_tables(load_frames(MOT / "track_sample_anns.json"),
                              {"car": "car", "truck": "truck"}, split="val", source="fixture")
    preds, _ = load_predictions(MOT / "bbox_predictions.json")
    assert metrics == evaluate(tables.images, tables.objects, preds, EvalConfig()).metrics
    assert round(metrics["map50"], 4) == 0.7531


def test_stage_stops_when_no_frame_matches(stage_dir: Path):
    path = stage_dir / "outputs" / "predict" / "predictions.json"
    frames = json.loads(path.read_text())
    path.write_text(json.dumps([{**f, "name": f"other-{f['name']}"} for f in frames]))
    proc = run_stage(stage_dir)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith(
        "outputs/predict/predictions.json: none of its 202 frame(s) matches a GT frame (e.g. "
        "'other-b1c66a42-6f7d68ca-0000001.jpg'; GT frames are named like "
        "'b1c66a42-6f7d68ca-0000001.jpg'); frames match by exact name, or by the name without "
        "directory and extension when that is unique on both sides")
    assert not (stage_dir / "outputs" / "eval" / "metrics.json").exists()
