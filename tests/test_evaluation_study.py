"""The study's statistics on synthetic cases with known answers: the share of the headroom from
paired replicates, the variance parts of a paired Δ and the minimum detectable effect."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.bootstrap import BucketSamples
from evaluation.intervals import (
    delta_variances,
    minimum_detectable_effect,
    paired_replicates,
    share_of_headroom,
)
from evaluation.study import RunLabel, as_json, summarize

Z95, Z80 = 1.959963984540054, 0.8416212335729143


def _runs(rng: np.random.Generator, n_seeds: int, n_boot: int, image_sd: float):
    """A baseline whose per-seed values and image replicates are noisy: seed luck (sd 0.05)
    and image draws (sd image_sd) that every arm shares."""
    full = 0.3 + rng.normal(0, 0.05, n_seeds)
    boot = full[:, None] + rng.normal(0, image_sd, (1, n_boot)) + rng.normal(0, 0.001,
                                                                             (n_seeds, n_boot))
    return full, boot


def test_share_of_headroom_is_exact_when_the_arm_wins_a_fixed_part_of_every_replicate():
    """arm − base = 0.4 × (ideal − base) in every run and replicate: the share is 0.4 with a
    zero-width interval, however noisy the baseline and the images are (pairing cancels them)."""
    rng = np.random.default_rng(1)
    base, boot_base = _runs(rng, 3, 500, image_sd=0.08)
    gain_full = 0.06 + rng.normal(0, 0.02, 3)
    gain_boot = gain_full[:, None] + rng.normal(0, 0.02, (3, 500))
    ideal, boot_ideal = base + gain_full, boot_base + gain_boot
    arm, boot_arm = base + 0.4 * gain_full, boot_base + 0.4 * gain_boot
    share = share_of_headroom(base, arm, ideal, boot_base, boot_arm, boot_ideal, 0.95, seed=0)
    assert share["value"] == pytest.approx(0.4, abs=1e-12)
    assert share["lo"] == pytest.approx(0.4, abs=1e-9) and share["hi"] == pytest.approx(0.4,
                                                                                        abs=1e-9)


def test_share_of_headroom_pairs_the_two_deltas_replicate_by_replicate():
    """With arm noise of its own, the interval is the percentile interval of the per-replicate
    ratios of the two paired Δs (same seed draws, same image draws), and covers the truth."""
    rng = np.random.default_rng(2)
    base, boot_base = _runs(rng, 4, 2000, image_sd=0.05)
    gain = 0.08 + rng.normal(0, 0.01, (4, 1))
    boot_ideal = boot_base + gain + rng.normal(0, 0.005, (4, 2000))
    boot_arm = boot_base + 0.5 * gain + rng.normal(0, 0.005, (4, 2000))
    ideal, arm = boot_ideal.mean(axis=1), boot_arm.mean(axis=1)
    share = share_of_headroom(base, arm, ideal, boot_base, boot_arm, boot_ideal, 0.9, seed=3)
    _, rep_arm = paired_replicates(base, arm, boot_base, boot_arm, seed=3)
    _, rep_ideal = paired_replicates(base, ideal, boot_base, boot_ideal, seed=3)
    lo, hi = np.percentile(rep_arm / rep_ideal, [5, 95])
    assert (share["lo"], share["hi"]) == (pytest.approx(lo), pytest.approx(hi))
    assert share["value"] == pytest.approx(np.mean(arm - base) / np.mean(ideal - base))
    assert share["lo"] < 0.5 < share["hi"] and share["hi"] - share["lo"] < 0.2
    # unpaired (another seed draw for the arm's Δ), the shared baseline noise no longer
    # cancels: the interval is much wider
    _, unpaired = paired_replicates(base, arm, boot_base, boot_arm, seed=4)
    lo_u, hi_u = np.percentile(unpaired / rep_ideal, [5, 95])
    assert hi_u - lo_u > 1.5 * (share["hi"] - share["lo"])


def test_variance_parts_and_the_minimum_detectable_effect():
    """Known seed variance (per-seed Δs 0.01, 0.03, 0.05: variance 4e-4) and known image
    variance (the seed-mean Δ's replicates: ±0.01 alternating, variance ~1e-4)."""
    n_boot = 10_000
    full_a = np.array([0.30, 0.31, 0.29])
    full_b = full_a + np.array([0.01, 0.03, 0.05])
    image = np.where(np.arange(n_boot) % 2, 0.01, -0.01)
    boot_a = full_a[:, None] + np.zeros((3, n_boot))
    boot_b = full_b[:, None] + image[None, :]
    var_seed, var_images = delta_variances(full_a, full_b, boot_a, boot_b)
    assert var_seed == pytest.approx(4e-4)
    assert var_images == pytest.approx(1e-4 * n_boot / (n_boot - 1))
    mde = minimum_detectable_effect(4e-4, 1e-4, n_seeds=3, ci=0.95, power=0.8)
    assert mde == pytest.approx((Z95 + Z80) * math.sqrt(4e-4 / 3 + 1e-4))
    # more seeds shrink only the seed part
    assert minimum_detectable_effect(4e-4, 0.0, 4, 0.95) == pytest.approx(
        minimum_detectable_effect(4e-4, 0.0, 1, 0.95) / 2)
    assert minimum_detectable_effect(0.0, 1e-4, 9, 0.95) == pytest.approx((Z95 + Z80) * 0.01)
    # one seed: no seed variance measured, no MDE
    assert minimum_detectable_effect(*delta_variances(full_a[:1], full_b[:1], boot_a[:1],
                                                      boot_b[:1]), 1, 0.95) is None


def test_the_mde_is_the_effect_found_with_80_percent_power():
    """Simulate studies whose Δ estimate is normal with SE² = var_seed / n + var_images and a
    true effect equal to the MDE: a 95 % interval excludes 0 in ~80 % of them."""
    var_seed, var_images, n = 9e-4, 2e-4, 3
    mde = minimum_detectable_effect(var_seed, var_images, n, 0.95)
    se = math.sqrt(var_seed / n + var_images)
    estimates = np.random.default_rng(0).normal(mde, se, 200_000)
    assert np.mean(np.abs(estimates) > Z95 * se) == pytest.approx(0.8, abs=0.005)


def _samples(values: dict[tuple[str, int], float], n_boot: int = 400) -> list[BucketSamples]:
    rng = np.random.default_rng(5)
    labels = [RunLabel(arm, seed) for arm, seed in values]
    full = np.array(list(values.values()))
    image = rng.normal(0, 0.01, n_boot)  # the same image draws for every run
    boot = full[:, None] + image[None, :]
    bucket = BucketSamples("all", 100, full, full / 2, boot, boot / 2)
    return labels, [bucket]


def test_summarize_reports_headroom_share_and_power():
    seeds = (0, 1, 2)
    base = {0: 0.30, 1: 0.28, 2: 0.32}
    values = {("none", s): base[s] for s in seeds}
    values |= {("fda", s): base[s] + 0.02 + 0.002 * s for s in seeds}
    values |= {("ideal", s): base[s] + 0.05 + 0.004 * s for s in seeds}
    values |= {("oracle", s): base[s] + 0.10 for s in seeds}
    labels, samples = _samples(values)
    result = summarize(labels, samples, ["none", "fda", "ideal", "oracle"], 0.95, ideal="ideal",
                       reference_arms=("oracle",))["map50"]["all"]
    assert result.headroom is result.delta["ideal"] and result.headroom.verdict == "better"
    assert result.headroom.value == pytest.approx(0.054)
    assert set(result.share) == {"fda"}  # not the ideal itself, not the oracle
    assert result.share["fda"].value == pytest.approx(0.022 / 0.054)
    assert result.share["fda"].lo <= result.share["fda"].value <= result.share["fda"].hi
    # pooled over fda and ideal (the oracle is a reference, not a translator)
    parts = [np.var([values[(arm, s)] - base[s] for s in seeds], ddof=1)
             for arm in ("fda", "ideal")]
    assert result.power.var_seed == pytest.approx(np.mean(parts))
    assert result.power.var_images == pytest.approx(0.0, abs=1e-12)  # the draws cancel
    assert result.power.mde == pytest.approx((Z95 + Z80) * math.sqrt(np.mean(parts) / 3))
    assert as_json({"map50": {"all": result}})["map50"]["all"]["share"]["fda"]["value"] == \
        pytest.approx(0.022 / 0.054)


def test_no_share_of_a_headroom_that_is_not_there():
    values = {("none", s): 0.3 + 0.01 * s for s in range(3)}
    values |= {("fda", s): 0.31 + 0.01 * s for s in range(3)}
    values |= {("ideal", s): 0.3 + 0.01 * s + (0.02, -0.02, 0.0)[s] for s in range(3)}
    labels, samples = _samples(values)
    result = summarize(labels, samples, ["none", "fda", "ideal"], 0.95,
                       ideal="ideal")["map50"]["all"]
    assert result.headroom.verdict == "no evidence"
    assert result.share["fda"].value is None  # n/a: the report prints "n/a"
