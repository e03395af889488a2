"""evaluation/bootstrap.py: a replicate's AP is the evaluator's (and pycocotools') AP on the drawn
image list written out; paired deltas behave as a paired bootstrap must."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from evaluation.bootstrap import _bucket_masks, _draw_weights, bootstrap_buckets
from evaluation.compare import forest_rows
from evaluation.config import EvalConfig
from evaluation.core import evaluate
from evaluation.intervals import seeds_then_images, verdict
from tests.test_evaluation import MOT, oracle_metrics, worlds

REPO = Path(__file__).resolve().parents[1]


def written_out(images: pd.DataFrame, gt: pd.DataFrame, preds: pd.DataFrame,
                counts: dict[str, int]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The drawn image list as tables: image `x` drawn w times becomes w frames, renamed apart
    so that they keep x's place in the sorted order, each with x's boxes."""
    rank = {name: i for i, name in enumerate(sorted(images["image_id"]))}

    def copies(table: pd.DataFrame) -> pd.DataFrame:
        parts = []
        for name, w in counts.items():
            rows = table[table["image_id"] == name]
            for c in range(w):
                parts.append(rows.assign(image_id=f"{rank[name]:06d}#{c:03d}"))
        return pd.concat(parts, ignore_index=True) if parts else table.iloc[:0]

    return copies(images), copies(gt), copies(preds)


def draw_counts(samples_images: pd.DataFrame, mask: np.ndarray, weights: np.ndarray
                ) -> dict[str, int]:
    names = samples_images["image_id"].to_numpy()[mask]
    return {str(n): int(w) for n, w in zip(names, weights, strict=True) if w}


def replicate_weights(images: pd.DataFrame, cfg: EvalConfig, key: str, n_boot: int,
                      seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The draws bootstrap_buckets makes for bucket `key` (same rng keying)."""
    import zlib

    table = images.sort_values("image_id", kind="stable").reset_index(drop=True)
    mask = _bucket_masks(table, cfg)[key]
    rng = np.random.default_rng([seed, zlib.crc32(np.packbits(mask).tobytes())])
    return table, mask, _draw_weights(int(mask.sum()), n_boot, rng)


def by_key(samples) -> dict:
    return {s.key: s for s in samples}


# ---------------------------------------------------------------- exactness

@pytest.mark.parametrize("key", ["all", "occlusion/0-5", "occlusion/le10", "weather/rainy"])
def test_replicates_equal_pycocotools_on_the_written_out_draw(mot_tables, key):
    images, gt, preds = mot_tables
    # the MOT frames carry no weather: give every third one rain, to test an attribute bucket
    images = images.assign(weather=np.where(np.arange(len(images)) % 3 == 0, "rainy", "clear"))
    cfg = EvalConfig()
    samples = by_key(bootstrap_buckets(images, gt, [preds], cfg, n_boot=6, seed=3,
                                       progress=False))[key]
    table, mask, weights = replicate_weights(images, cfg, key, 6, 3)
    assert samples.n_images == int(mask.sum())
    for r in range(3):
        drawn = written_out(images, gt, preds, draw_counts(table, mask, weights[r]))
        ref = oracle_metrics(*drawn, cfg)  # pycocotools on the written-out list
        assert samples.boot_map50[0, r] == pytest.approx(ref["map"], abs=1e-12)
        assert samples.boot_map50_95[0, r] == pytest.approx(ref["map_range"], abs=1e-12)
        ours = evaluate(*drawn, cfg).metrics  # and our evaluator, bit for bit
        assert samples.boot_map50[0, r] == ours["map50"]
        assert samples.boot_map50_95[0, r] == ours["map50_95"]


def test_full_set_values_are_the_evaluators(mot_tables):
    images, gt, preds = mot_tables
    cfg = EvalConfig()
    samples = by_key(bootstrap_buckets(images, gt, [preds], cfg, n_boot=2, progress=False))
    metrics = evaluate(images, gt, preds, cfg).metrics
    assert samples["all"].map50[0] == metrics["map50"]
    assert samples["all"].map50_95[0] == metrics["map50_95"]
    for name, values in metrics["per_class"].items():
        assert samples[f"class/{name}"].map50[0] == values["ap50"]
        assert samples[f"class/{name}"].map50_95[0] == values["ap50_95"]
    for group in ("occlusion", "weather", "timeofday"):
        for name, values in metrics[group].items():
            got = samples[f"{group}/{name}"]
            assert got.n_images == values["n_images"]
            if values["map50"] is None:
                assert np.isnan(got.map50[0])
            else:
                assert got.map50[0] == values["map50"]


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_random_worlds_with_ties_equal_the_written_out_draw(world):
    """Score ties inside an image, crowd regions, max_dets cuts, other IoU thresholds."""
    images, gt, preds, cfg = world
    samples = by_key(bootstrap_buckets(images, gt, [preds], cfg, n_boot=4, seed=1,
                                       progress=False))
    table, mask, weights = replicate_weights(images, cfg, "all", 4, 1)
    for r in range(4):
        drawn = written_out(images, gt, preds, draw_counts(table, mask, weights[r]))
        ours = evaluate(*drawn, cfg).metrics
        for got, want in ((samples["all"].boot_map50[0, r], ours["map50"]),
                          (samples["all"].boot_map50_95[0, r], ours["map50_95"])):
            if want is None:
                assert np.isnan(got)
            else:
                assert got == want


# ---------------------------------------------------------------- paired deltas

def test_identical_predictions_give_a_zero_delta_with_a_zero_interval(mot_tables):
    images, gt, preds = mot_tables
    samples = bootstrap_buckets(images, gt, [preds, preds.copy()], EvalConfig(), n_boot=200,
                                progress=False)
    for s in samples:
        diff = s.boot_map50[1] - s.boot_map50[0]
        assert np.all(diff[np.isfinite(diff)] == 0), s.key


def improved_on(preds: pd.DataFrame, gt: pd.DataFrame, images: set[str]) -> pd.DataFrame:
    """Predictions made better on some images only: their GT boxes added with top scores."""
    boxes = gt[gt["image_id"].isin(images) & ~gt["ignore"].astype(bool)
               & gt["class_name"].isin(["car", "truck"])]
    perfect = boxes[["image_id", "class_name", "x1", "y1", "x2", "y2"]].assign(score=1.0)
    return pd.concat([preds, perfect], ignore_index=True)


def test_a_gain_on_one_bucket_shows_there_only(mot_tables):
    images, gt, preds = mot_tables
    counts = images["n_occluded_vehicles"]
    few = set(images["image_id"][counts <= 5])
    better = improved_on(preds, gt, few)
    samples = by_key(bootstrap_buckets(images, gt, [preds, better], EvalConfig(), n_boot=500,
                                       progress=False))
    lo, hi = np.percentile(samples["occlusion/0-5"].boot_map50[1]
                           - samples["occlusion/0-5"].boot_map50[0], [2.5, 97.5])
    assert lo > 0
    for key in ("occlusion/6-10", "occlusion/11+"):  # untouched images: no difference at all
        diff = samples[key].boot_map50[1] - samples[key].boot_map50[0]
        assert np.all(diff[np.isfinite(diff)] == 0), key


def test_interval_narrows_as_images_grow(mot_tables):
    """The same frames repeated four times (renamed apart) give a ~half as wide interval."""
    images, gt, preds = mot_tables
    worse = preds[preds["score"] > 0.5]
    widths = []
    for k in (1, 4):
        tables = [pd.concat([t.assign(image_id=t["image_id"] + f"~{i}") for i in range(k)],
                            ignore_index=True) for t in (images, gt, preds, worse)]
        s = by_key(bootstrap_buckets(tables[0], tables[1], tables[2:], EvalConfig(), n_boot=400,
                                     progress=False))["all"]
        lo, hi = np.percentile(s.boot_map50[1] - s.boot_map50[0], [2.5, 97.5])
        widths.append(hi - lo)
    assert widths[1] < 0.7 * widths[0]


def test_seeds_then_images_and_verdicts():
    rng = np.random.default_rng(0)
    base = rng.normal(0.4, 0.01, (3, 1000))
    same = seeds_then_images(base[:, 0], base[:, 0], base, base, 0.95, 0)
    assert same == {"value": 0.0, "lo": 0.0, "hi": 0.0, "p_positive": 0.0}
    assert verdict(same) == "no evidence"
    up = base + 0.05
    better = seeds_then_images(base[:, 0], up[:, 0], base, up, 0.95, 0)
    assert better["value"] == pytest.approx(0.05) and better["lo"] > 0
    assert verdict(better) == "better" and better["p_positive"] == 1.0
    assert verdict(seeds_then_images(up[:, 0], base[:, 0], up, base, 0.95, 0)) == "worse"
    # seed-to-seed spread widens the interval: one seed gains, another loses
    mixed = base + np.array([[0.1], [-0.1], [0.0]])
    wide = seeds_then_images(base[:, 0], mixed[:, 0], base, mixed, 0.95, 0)
    assert wide["lo"] < 0 < wide["hi"] and verdict(wide) == "no evidence"


# ---------------------------------------------------------------- the CLI

GT_FILE = "track_sample_anns.json"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evaluation", "compare", *args],
                          capture_output=True, text=True, cwd=REPO)


def test_compare_cli_writes_the_documented_shape(tmp_path):
    from evaluation import load_predictions

    preds, _ = load_predictions(MOT / "bbox_predictions.json")
    weaker = tmp_path / "weaker.json"  # the same boxes, every other one dropped
    frames = json.loads((MOT / "bbox_predictions.json").read_text())
    for frame in frames:
        frame["labels"] = (frame.get("labels") or [])[::2]
    weaker.write_text(json.dumps(frames))
    proc = run_cli("--gt", str(MOT / GT_FILE), "--pred", str(MOT / "bbox_predictions.json"),
                   "--pred", str(weaker), "--names", "full,half", "--bootstrap", "200",
                   "--quiet", "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert result["names"] == ["full", "half"] and result["bootstrap"] == 200
    assert result["ci"] == 0.95
    keys = set(result["buckets"])
    assert {"all", "class/car", "class/truck", "occlusion/le5", "occlusion/11+",
            "weather/unknown", "timeofday/unknown"} <= keys
    from data.bdd100k import frames_to_tables, load_frames

    gt = frames_to_tables(load_frames(MOT / GT_FILE), {"car": "car", "truck": "truck"},
                          split="val", source="cli")
    half, _ = load_predictions(weaker)
    full_m = evaluate(gt.images, gt.objects, preds, EvalConfig()).metrics
    half_m = evaluate(gt.images, gt.objects, half, EvalConfig()).metrics
    entry = result["buckets"]["all"]
    assert entry["n_images"] == full_m["n_images"]
    assert entry["map50"]["full"]["value"] == full_m["map50"]
    assert entry["map50_95"]["half"]["value"] == half_m["map50_95"]
    assert entry["map50"]["full"]["lo"] <= full_m["map50"] <= entry["map50"]["full"]["hi"]
    delta = entry["delta_map50"]["half"]
    assert delta["value"] == pytest.approx(half_m["map50"] - full_m["map50"], abs=1e-15)
    assert set(delta) == {"value", "lo", "hi", "p_positive"} and 0 <= delta["p_positive"] <= 1
    assert "full" not in entry["delta_map50"]
    occ = result["buckets"]["occlusion/0-5"]
    assert occ["map50"]["half"]["value"] == half_m["occlusion"]["0-5"]["map50"]
    report = (tmp_path / "out" / "compare.md").read_text()
    assert "| all | 202 |" in report and "verdict" in report
    # the forest plot of Δ with its interval, next to the tables
    assert report.endswith("\n![Δ mAP50 with its interval](forest.png)\n")
    assert (tmp_path / "out" / "forest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = forest_rows(result)
    assert len(rows) == len(result["buckets"])  # one run after the reference: a row per bucket
    assert rows[0] == {"bucket": next(iter(result["buckets"])), "arm": "half",
                       **{k: v for k, v in next(iter(result["buckets"].values()))[
                           "delta_map50"]["half"].items() if k != "p_positive"}}


@pytest.mark.parametrize("extra, message", [
    (["--names", "a"], "--names needs 2 distinct names"),
    (["--bootstrap", "0"], "--bootstrap must be between 1 and"),
    (["--bootstrap", "1000000000"], "--bootstrap must be between 1 and 20000"),
    (["--ci", "1.5"], "--ci must be between 0 and 1"),
])
def test_compare_cli_bad_arguments(tmp_path, extra, message):
    pred = str(MOT / "bbox_predictions.json")
    proc = run_cli("--gt", str(MOT / GT_FILE), "--pred", pred, "--pred", pred, *extra,
                   "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and message in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_compare_cli_bad_inputs_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[{\"name\": \"a.jpg\", \"labels\": [")
    taken = tmp_path / "taken"
    taken.write_text("a file")
    pred = str(MOT / "bbox_predictions.json")
    proc = run_cli("--gt", str(MOT / GT_FILE), "--pred", pred, "--pred", str(bad),
                   "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and str(bad) in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("--gt", str(MOT / GT_FILE), "--pred", pred, "--out", str(taken))
    assert proc.returncode == 2 and "is not a directory" in proc.stderr
    proc = run_cli("--gt", str(tmp_path / "missing.json"), "--pred", pred,
                   "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "missing.json" in proc.stderr
