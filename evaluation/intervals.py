"""Intervals and verdicts from bootstrap replicates (evaluation/bootstrap.py draws them): what
`compare` and the study report, so both say "better", "worse" or "no evidence" the same way."""

from __future__ import annotations

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


def seeds_then_images(full_a: np.ndarray, full_b: np.ndarray, boot_a: np.ndarray,
                      boot_b: np.ndarray, ci: float, seed: int) -> dict:
    """Δ = mean over seeds of (b − a), with a two-level bootstrap CI: seeds, then images.

    full_*: (n_seeds,) full-set values, boot_*: (n_seeds, R) image replicates, seeds paired by
    position (the same training seed for both arms). Replicate r draws n_seeds seeds with
    replacement (one draw for both arms) and uses image draw r, which every run shares.
    """
    full_a, full_b = np.asarray(full_a, float), np.asarray(full_b, float)
    if full_a.shape != full_b.shape or boot_a.shape != boot_b.shape or not len(full_a):
        raise ValueError("seeds_then_images needs the same seeds (>= 1) for both arms")
    n_seeds, n_boot = boot_a.shape
    picks = np.random.default_rng(seed).integers(0, n_seeds, (n_boot, n_seeds))
    diff = boot_b - boot_a  # (n_seeds, R)
    replicates = diff[picks, np.arange(n_boot)[:, None]].mean(axis=1)
    return delta_summary(float(np.mean(full_b - full_a)), replicates, ci)


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
