"""Stage gap (pipeline/gap.py) and the study's question, does the gap predict the gain
(pipeline/study_gap.py), on synthetic numbers with known answers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from evaluation.config import GapConfig
from evaluation.gap import (
    Features,
    frechet_distance,
    gaussian,
    load_extractor,
    share_closed,
    weather_gap,
)
from pipeline.common import GAP_REFERENCE
from pipeline.params import load_params
from pipeline.study_gap import gap_points, gap_prediction, render_gap, spearman, spearman_ci

REPO = Path(__file__).resolve().parents[1]


# --- the stage ----------------------------------------------------------------------------------

def features(values: np.ndarray) -> Features:
    return Features(values, [Path(f"{i}.jpg") for i in range(len(values))], [])


def test_weather_entry_scores_each_set_against_the_target():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(40, 3))
    sets = {"target": features(target), "source": features(target[:30] + 3.0),
            "translated": features(target[:30] + 1.0), "floor": features(target[10:] + 0.1)}
    entry = weather_gap(sets, GapConfig(), 0.9)
    assert entry["frames"] == {"target": 40, "source": 30, "translated": 30, "floor": 30}
    assert entry["edge_similarity"] == 0.9 and entry["skipped"] == {}
    expected = {name: frechet_distance(*gaussian(target), *gaussian(sets[name].values))
                for name in ("source", "translated", "floor")}
    assert entry["fd"] == pytest.approx(expected, rel=1e-12)
    assert entry["fd_closed"] == pytest.approx(share_closed(
        expected["source"], expected["translated"], expected["floor"]), rel=1e-12)
    assert 0.0 < entry["fd_closed"] < 1.0 and 0.0 < entry["kid_closed"] < 1.0


def test_weather_entry_without_two_frames_says_so():
    one = features(np.ones((1, 3)))
    two = features(np.arange(6.0).reshape(2, 3))
    entry = weather_gap({"target": two, "source": two, "translated": two, "floor": one},
                        GapConfig(), None)
    assert entry["note"] == "fewer than 2 readable frames in floor: no score"
    assert "fd" not in entry and entry["edge_similarity"] is None


def test_params_default_to_the_fixed_seeded_reference():
    gap = load_params(REPO / "params.yaml").gap
    assert gap.reference_model == GAP_REFERENCE.as_posix() == GapConfig().reference_model
    assert gap.imgsz == 320


def stage_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "YOLO_CONFIG_DIR": str(tmp_path / ".yolo")}


def test_reference_stage_writes_the_same_bytes_in_two_processes(tmp_path):
    written = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        proc = subprocess.run([sys.executable, "-m", "pipeline.gap_reference"],
                              cwd=tmp_path / run, env=stage_env(tmp_path), capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stderr
        written.append((tmp_path / run / GAP_REFERENCE).read_bytes())
    assert written[0] == written[1]  # DVC's hash of it (and gap.json's sha256) never drifts
    extractor = load_extractor(tmp_path / "a" / GAP_REFERENCE, "cpu")
    assert extractor.channels == 256 and extractor.trained


def test_stage_without_the_reference_checkpoint_is_one_line_and_exit_2(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    proc = subprocess.run([sys.executable, "-m", "pipeline.gap"], cwd=tmp_path,
                          env=stage_env(tmp_path), capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error in stage gap: put a YOLO checkpoint at {GAP_REFERENCE} "
                                   "or set gap.reference_model in params.yaml")


# --- Spearman and its interval ------------------------------------------------------------------

def test_spearman_of_a_hand_computed_example():
    # rank differences -1, 1, -1, 1, 0: ρ = 1 − 6·4 / (5·(25 − 1)) = 0.8
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8, rel=1e-12)
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert spearman([1, 2], [1, 2]) is None  # too few points
    assert spearman([1, 2, 3], [5, 5, 5]) is None  # a constant side


def test_spearman_equals_scipy_with_ties():
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 5, 30).astype(float), rng.normal(size=30)
    y[:10] = x[:10]
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, rel=1e-12)


def test_interval_of_a_monotone_relation_is_one():
    x = np.linspace(0.0, 1.0, 12)
    result = spearman_ci(x, x ** 3, n_boot=500, ci=0.95)
    assert result["rho"] == pytest.approx(1.0) and result["lo"] == pytest.approx(1.0)
    assert result["hi"] == pytest.approx(1.0) and result["n_points"] == 12
    assert 0 < result["n_boot_used"] <= 500  # resamples of one repeated point have no ρ


def test_interval_of_unrelated_numbers_includes_zero():
    rng = np.random.default_rng(2)
    result = spearman_ci(rng.normal(size=12), rng.normal(size=12), n_boot=2000, ci=0.95)
    assert result["lo"] < 0 < result["hi"]
    again = spearman_ci(rng.normal(size=3) * 0, rng.normal(size=3), n_boot=10, ci=0.95)
    assert again == {"rho": None, "lo": None, "hi": None, "n_points": 3, "n_boot_used": 0}


# --- the study's points -------------------------------------------------------------------------

def summary_of(map50: dict[str, dict[int, float]]) -> dict:
    """A study summary with one weather bucket (foggy): per arm, mAP50 per seed."""
    arms = {arm: {"per_seed": {str(s): v for s, v in seeds.items()}}
            for arm, seeds in map50.items()}
    return {"map50": {"weather/foggy": {"arms": arms}}}


def gap_json(closed: float, sha: str = "abc") -> dict:
    return {"reference_model": "ref.pt", "reference_sha256": sha,
            "weather": {"fog": {"fd_closed": closed, "kid_closed": closed / 2,
                                "edge_similarity": 0.9}}}


ARMS = ["none", "fda", "weatherfx", "oracle"]
MAP50 = {"none": {0: 0.30, 1: 0.32}, "fda": {0: 0.35, 1: 0.36},
         "weatherfx": {0: 0.40, 1: 0.45}, "oracle": {0: 0.9, 1: 0.9}}
CLOSED = {"none": (0.1, 0.2), "fda": (0.3, 0.4), "weatherfx": (0.5, 0.6)}


def all_gaps(sha: dict | None = None) -> dict:
    return {(arm, seed): gap_json(CLOSED[arm][seed], (sha or {}).get(arm, "abc"))
            for arm in CLOSED for seed in (0, 1)}


def test_points_pair_each_run_with_its_seeds_baseline_and_leave_out_the_oracle():
    points = gap_points(summary_of(MAP50), all_gaps(), ARMS)["fog"]
    assert [(p["arm"], p["seed"]) for p in points] == [
        ("none", 0), ("none", 1), ("fda", 0), ("fda", 1), ("weatherfx", 0), ("weatherfx", 1)]
    deltas = [p["delta_map50"] for p in points]
    assert deltas == pytest.approx([0.0, 0.0, 0.05, 0.04, 0.10, 0.13])
    assert points[2]["fd_closed"] == 0.3 and points[2]["kid_closed"] == 0.15


def test_a_gap_that_orders_the_gains_predicts_them():
    # Δ ranks 1.5 1.5 4 3 5 6 against closed 1..6: ρ = Pearson of those ranks = 16 / √(17.5·17)
    result = gap_prediction(summary_of(MAP50), all_gaps(), ARMS, n_boot=400, ci=0.9)
    rho = result["spearman"]["fog"]["fd_closed"]
    expected = spearmanr([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0, 0, 0.05, 0.04, 0.10, 0.13])
    assert rho["rho"] == pytest.approx(expected.statistic, rel=1e-12)
    assert rho["rho"] == pytest.approx(16 / np.sqrt(17.5 * 17), rel=1e-12)
    assert rho["n_points"] == 6
    assert result["references"] == [{"model": "ref.pt", "sha256": "abc"}]
    report = "\n".join(render_gap(result))
    # the bootstrap's interval (seeded: these draws every time) lies above 0
    assert ("| fog | +0.93 [+0.60, +1.00] **predicts** (n=6) | +0.93 [+0.60, +1.00] **predicts** "
            "(n=6) |") in report
    assert "| weatherfx | fog | 0.55 | 0.28 | 0.90 | +0.115 |" in report
    assert "Reference network: `ref.pt` (sha256 abc) for every experiment." in report


def test_runs_measured_with_different_detectors_are_flagged_and_missing_ones_named():
    gaps = all_gaps({"fda": "def"})
    gaps[("weatherfx", 1)] = None
    gaps[("oracle", 0)] = gap_json(0.9, "its own")  # not a translator: neither point nor reference
    gaps[("oracle", 1)] = None
    result = gap_prediction(summary_of(MAP50), gaps, ARMS, n_boot=100, ci=0.95)
    assert result["missing"] == ["weatherfx-s1"]
    assert [r["sha256"] for r in result["references"]] == ["abc", "def"]
    assert result["spearman"]["fog"]["kid_closed"]["n_points"] == 5
    report = "\n".join(render_gap(result))
    assert "**2 different reference networks**" in report
    assert "No gap.json in: weatherfx-s1" in report


def test_the_study_report_carries_the_section():
    from dataclasses import asdict

    from pipeline.params import StudyParams
    from pipeline.study_report import render_report

    gap = gap_prediction(summary_of(MAP50), all_gaps(), ARMS, n_boot=100, ci=0.95)
    record = {"grid": asdict(StudyParams()), "arms": ARMS, "metrics": {}, "experiments": [],
              "run": {"wall_seconds": 0.0, "experiments_run": 0, "reused": 0}, "gap": gap}
    report = render_report(record)
    section = report.index("## Does the label-free gap predict the gain?")
    assert section < report.index("## Experiments")
    assert "\n".join(render_gap(gap)) in report
