"""Intervals and verdicts from bootstrap replicates (evaluation/bootstrap.py draws them): what
`compare` and the study report, so both say "better", "worse" or "no evidence" the same way."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np


def percentile_interval(replicates: np.ndarray, ci: float) -> tuple[float, float]:
    """The central `ci` percentile interval of the finite replicates (NaN, NaN if none)."""
    finite = replicates[np.isfinite(replicates)]
    if not len(finite):
        return float("nan"), float("nan")
    lo, hi = np.percentile(finite, [50 * (1 - ci), 50 * (1 + ci)])
    return float(lo), float(hi)


def delta_summary(value: float, replicates: np.ndarray, ci: float) -> dict:
    """{value, lo, hi, p_positive} of a difference and its paired replicates."""
    lo, hi = percentile_interval(replicates, ci)
    finite = replicates[np.isfinite(replicates)]
    return {"value": finite_or_none(value), "lo": finite_or_none(lo), "hi": finite_or_none(hi),
            "p_positive": float((finite > 0).mean()) if len(finite) else None}


def paired_replicates(full_a: np.ndarray, full_b: np.ndarray, boot_a: np.ndarray,
                      boot_b: np.ndarray, seed: int) -> tuple[float, np.ndarray]:
    """Δ = mean over seeds of (b − a) and its (R,) two-level bootstrap replicates: seeds, then
    images.

    full_*: (n_seeds,) full-set values, boot_*: (n_seeds, R) image replicates, seeds paired by
    position (the same training seed for both arms). Replicate r draws n_seeds seeds with
    replacement (one draw for both arms) and uses image draw r, which every run shares. The seed
    draws depend only on (seed, n_seeds, R): two calls with the same of these resample the same
    seeds, so their replicates pair up (share_of_headroom relies on it).
    """
    full_a, full_b = np.asarray(full_a, float), np.asarray(full_b, float)
    if full_a.shape != full_b.shape or boot_a.shape != boot_b.shape or not len(full_a):
        raise ValueError("paired bootstrap needs the same seeds (>= 1) for both arms")
    n_seeds, n_boot = boot_a.shape
    picks = np.random.default_rng(seed).integers(0, n_seeds, (n_boot, n_seeds))
    diff = boot_b - boot_a  # (n_seeds, R)
    return float(np.mean(full_b - full_a)), diff[picks, np.arange(n_boot)[:, None]].mean(axis=1)


def seeds_then_images(full_a: np.ndarray, full_b: np.ndarray, boot_a: np.ndarray,
                      boot_b: np.ndarray, ci: float, seed: int) -> dict:
    """{value, lo, hi, p_positive} of Δ = mean over seeds of (b − a), its CI from
    paired_replicates."""
    value, replicates = paired_replicates(full_a, full_b, boot_a, boot_b, seed)
    return delta_summary(value, replicates, ci)


def share_of_headroom(full_base: np.ndarray, full_arm: np.ndarray, full_ideal: np.ndarray,
                      boot_base: np.ndarray, boot_arm: np.ndarray, boot_ideal: np.ndarray,
                      ci: float, seed: int) -> dict:
    """{value, lo, hi}: Δ(arm) / Δ(ideal), both against the baseline, over the same seeds.

    Each replicate takes the ratio of the two Δs drawn on the same seeds and images (paired
    replicates), so what the arm and the ideal share (the baseline's luck, a hard image draw)
    cancels in the ratio. 1 = the arm wins all the headroom, 0 = none of it.
    """
    value_arm, rep_arm = paired_replicates(full_base, full_arm, boot_base, boot_arm, seed)
    value_ideal, rep_ideal = paired_replicates(full_base, full_ideal, boot_base, boot_ideal, seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        replicates = rep_arm / rep_ideal
    lo, hi = percentile_interval(replicates, ci)
    value = value_arm / value_ideal if value_ideal else float("nan")
    return {"value": finite_or_none(value), "lo": finite_or_none(lo), "hi": finite_or_none(hi)}


def delta_variances(full_a: np.ndarray, full_b: np.ndarray, boot_a: np.ndarray,
                    boot_b: np.ndarray) -> tuple[float, float]:
    """(seed variance, image variance) of a paired Δ: the variance across seeds of the per-seed
    Δ on the full image set (ddof 1: NaN for one seed), and the variance across image
    replicates of the seed-mean Δ."""
    per_seed = np.asarray(full_b, float) - np.asarray(full_a, float)
    var_seed = float(np.var(per_seed, ddof=1)) if len(per_seed) > 1 else float("nan")
    var_images = float(np.var((boot_b - boot_a).mean(axis=0), ddof=1))
    return var_seed, var_images


def minimum_detectable_effect(var_seed: float, var_images: float, n_seeds: int, ci: float,
                              power: float = 0.8) -> float | None:
    """The smallest true Δ a two-sided test at level 1 − ci detects with probability `power`
    (normal approximation): (z_{(1+ci)/2} + z_power) · SE, SE² = var_seed / n_seeds +
    var_images (the images are shared by every seed, so their variance does not shrink with
    more seeds). None when a variance is unknown."""
    if not (np.isfinite(var_seed) and np.isfinite(var_images)) or n_seeds < 1:
        return None
    z = NormalDist().inv_cdf((1 + ci) / 2) + NormalDist().inv_cdf(power)
    return float(z * math.sqrt(var_seed / n_seeds + var_images))


def verdict(delta: dict) -> str:
    """better / worse when the interval excludes zero, else no evidence."""
    lo, hi = delta.get("lo"), delta.get("hi")
    if lo is None or hi is None:
        return "no evidence"
    if lo > 0:
        return "better"
    if hi < 0:
        return "worse"
    return "no evidence"


def finite_or_none(value: float | None) -> float | None:
    """A float for JSON: None where there is no finite value (e.g. a bucket without GT)."""
    return None if value is None or not np.isfinite(value) else float(value)
