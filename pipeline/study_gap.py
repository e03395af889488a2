"""Does the label-free domain gap predict the detection gain? The study's answer, per weather.

Each finished experiment of a translator arm (baseline included, oracle not) wrote
outputs/gap/gap.json (stage gap): per weather, the share of the vKITTI2 → BDD100K gap its frames
close. Against it: the experiment's Δ mAP50 in that weather's BDD100K val bucket, against the
baseline trained on the same seed (the baseline's own points are Δ = 0). Across these
translator × seed points, Spearman's ρ with a percentile bootstrap interval that resamples the
points. An interval that includes 0 means the gap does not (detectably) predict the gain.
"""

from __future__ import annotations

import json

import numpy as np
from scipy.stats import rankdata

from common.weathers import BDD_WEATHER
from evaluation.intervals import finite_or_none, percentile_interval
from evaluation.study import BOOTSTRAP_SEED
from pipeline.common import GAP_JSON
from pipeline.study_grid import ORACLE

SCORES = {"fd_closed": "FD", "kid_closed": "KID"}


def read_gap(rev: str) -> dict | None:
    """An experiment's gap.json at its rev; None if it has none (e.g. run before the stage)."""
    from dvc.api import DVCFileSystem

    try:
        return json.loads(DVCFileSystem(".", rev=rev).read_text(GAP_JSON.as_posix()))
    except (FileNotFoundError, ValueError):
        return None


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman's ρ: Pearson's correlation of the ranks (ties get their average rank);
    None with fewer than 3 points or when either side is constant."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3:
        return None
    rx, ry = rankdata(x), rankdata(y)
    if np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def spearman_ci(x: np.ndarray, y: np.ndarray, n_boot: int, ci: float,
                seed: int = BOOTSTRAP_SEED) -> dict:
    """ρ and a percentile bootstrap interval over `n_boot` resamples of the (x, y) points (a
    resample with a constant side has no ρ and is left out; `n_boot_used` says how many count)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    rho = spearman(x, y)
    out = {"rho": rho, "lo": None, "hi": None, "n_points": len(x), "n_boot_used": 0}
    if rho is None:
        return out
    picks = np.random.default_rng(seed).integers(0, len(x), (n_boot, len(x)))
    replicates = np.array([np.nan if (r := spearman(x[p], y[p])) is None else r for p in picks])
    lo, hi = percentile_interval(replicates, ci)
    out.update(lo=finite_or_none(lo), hi=finite_or_none(hi),
               n_boot_used=int(np.isfinite(replicates).sum()))
    return out


def gap_points(summary: dict, gaps: dict[tuple[str, int], dict | None],
               arms: list[str]) -> dict[str, list[dict]]:
    """Per weather: one point per translator experiment with a gap.json and a Δ mAP50 in the
    weather's bucket: arm, seed, the shares closed, the edge similarity, Δ mAP50."""
    baseline = arms[0]
    weathers = sorted({w for gap in gaps.values() if gap for w in gap.get("weather", {})},
                      key=list(BDD_WEATHER).index)
    points: dict[str, list[dict]] = {}
    for weather in weathers:
        entry = summary.get("map50", {}).get(f"weather/{BDD_WEATHER[weather]}")
        points[weather] = []
        if entry is None:
            continue
        base = entry["arms"][baseline]["per_seed"]
        for arm in arms:
            if arm == ORACLE:
                continue
            for seed, value in entry["arms"][arm]["per_seed"].items():
                gap = (gaps.get((arm, int(seed))) or {}).get("weather", {}).get(weather)
                if gap is None or value is None or base.get(seed) is None:
                    continue
                points[weather].append({
                    "arm": arm, "seed": int(seed), "delta_map50": value - base[seed],
                    "edge_similarity": gap.get("edge_similarity"),
                    **{score: gap.get(score) for score in SCORES}})
    return points


def gap_prediction(summary: dict, gaps: dict[tuple[str, int], dict | None], arms: list[str],
                   n_boot: int, ci: float) -> dict:
    """study.json's `gap`: the points, ρ per weather and score, and which detectors measured."""
    gaps = {key: gap for key, gap in gaps.items() if key[0] != ORACLE}  # not a translator
    points = gap_points(summary, gaps, arms)
    rho: dict = {}
    for weather, rows in points.items():
        rho[weather] = {}
        for score in SCORES:
            usable = [r for r in rows if r[score] is not None]
            rho[weather][score] = spearman_ci(np.array([r[score] for r in usable]),
                                              np.array([r["delta_map50"] for r in usable]),
                                              n_boot, ci)
    references = sorted({(g["reference_model"], g["reference_sha256"]) for g in gaps.values()
                         if g})
    return {"points": points, "spearman": rho, "ci": ci, "bootstrap": n_boot,
            "references": [{"model": m, "sha256": h} for m, h in references],
            "missing": sorted(f"{a}-s{s}" for (a, s), g in gaps.items() if g is None)}


def _rho(r: dict) -> str:
    if r["rho"] is None:
        return f"– (n={r['n_points']})"
    interval = "" if r["lo"] is None else f" [{r['lo']:+.2f}, {r['hi']:+.2f}]"
    word = ("**predicts**" if (r["lo"] or 0) > 0 else "**inverted**" if (r["hi"] or 0) < 0
            else "no evidence")
    return f"{r['rho']:+.2f}{interval} {word} (n={r['n_points']})"


def _mean(values: list) -> str:
    finite = [v for v in values if v is not None]
    return f"{np.mean(finite):.2f}" if finite else "–"


def render_gap(gap: dict | None) -> list[str]:
    """report.md's section, as lines."""
    if not gap or not any(gap["points"].values()):
        return []
    ci = f"{gap['ci']:.0%}"
    lines = ["## Does the label-free gap predict the gain?", "",
             "Share of the vKITTI2 → BDD100K gap (in the reference network's SPPF features) "
             "that a translator's frames close, (a − b) / (a − c), against its Δ mAP50 in that "
             "weather's bucket (against the baseline of the same seed; the baseline's points "
             f"are 0). Spearman's ρ across translators × seeds, [{ci} CI] from "
             f"{gap['bootstrap']} bootstrap resamples of the points; **predicts** when the "
             "interval is above 0. KID's estimator is unbiased; FD's grows as the frame sets "
             "shrink, so with few frames trust the KID column more.", ""]
    if len(gap["references"]) > 1:
        lines += [f"**{len(gap['references'])} different reference networks**: the "
                  "experiments measured the gap in different feature spaces (gap.reference_model "
                  f"= {gap['references'][0]['model']}, ...; e.g. each run's own best.pt). A "
                  "share closed is a ratio within one run, but the runs' shares do not compare; "
                  "the default, stage gap_reference's fixed seeded extractor, is one network "
                  "for all.", ""]
    elif gap["references"]:
        ref = gap["references"][0]
        lines += [f"Reference network: `{ref['model']}` (sha256 {ref['sha256'][:12]}) for "
                  "every experiment.", ""]
    if gap["missing"]:
        lines += [f"No gap.json in: {', '.join(gap['missing'])} (run before the gap stage).", ""]
    lines += ["| weather | ρ(FD closed, Δ mAP50) | ρ(KID closed, Δ mAP50) |", "|---|---|---|"]
    for weather, rho in gap["spearman"].items():
        lines.append(f"| {weather} | {_rho(rho['fd_closed'])} | {_rho(rho['kid_closed'])} |")
    lines += ["", "Per translator and weather, means over seeds: the share of the gap closed, "
              "the translate stage's edge similarity to the source frames (1 = same structure; "
              "a translator that closes the gap by moving objects breaks the reused labels), "
              "and Δ mAP50.", "",
              "| translator | weather | FD closed | KID closed | edge similarity | Δ mAP50 |",
              "|---|---|---:|---:|---:|---:|"]
    for weather, rows in gap["points"].items():
        for arm in dict.fromkeys(r["arm"] for r in rows):
            mine = [r for r in rows if r["arm"] == arm]
            lines.append(f"| {arm} | {weather} | " + " | ".join(
                _mean([r[k] for r in mine]) for k in (*SCORES, "edge_similarity"))
                + f" | {np.mean([r['delta_map50'] for r in mine]):+.3f} |")
    return [*lines, ""]
