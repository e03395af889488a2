"""The statistics of a study: arms × seeds scored on the same images, compared with the baseline.

Input: one BucketSamples list (evaluation/bootstrap.py: every run's full-set value and its
image-bootstrap replicates, the same image draws for every run) and which arm and training seed
each run is. Output, per metric and bucket (`BucketResult`):
- each arm's per-seed values, mean and sd;
- each arm's Δ against the baseline: mean over paired seeds, with a seeds-then-images CI;
- with an `ideal` arm (a perfect appearance translator): the headroom (its Δ), each other arm's
  share of it, Δ(arm) / Δ(ideal) from the same paired replicates — n/a where the headroom's
  own interval covers 0 (a share of nothing measurable);
- the minimum detectable effect (MDE): the smallest Δ the study finds with 80 % power at its CI,
  from the seed and image variances measured on the compared arms (pooled).
Numbers only: pipeline/study_report.py words them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from evaluation.bootstrap import BucketSamples
from evaluation.intervals import (
    delta_variances,
    finite_or_none,
    minimum_detectable_effect,
    seeds_then_images,
    share_of_headroom,
    verdict,
)

METRICS = {"map50": "mAP50", "map50_95": "mAP50:95"}
BOOTSTRAP_SEED = 0  # of the seed draws (the image draws have theirs, in bootstrap_buckets);
# not the training `seed`
POWER = 0.8  # of the minimum detectable effect


@dataclass
class RunLabel:
    """Which arm and training seed one scored run is."""

    arm: str
    seed: int


@dataclass
class ArmValues:
    per_seed: dict[str, float | None]  # training seed (as a JSON key) -> the run's value
    mean: float | None
    sd: float | None


@dataclass
class Delta:
    """An arm against the baseline: mean over paired seeds of arm − baseline, CI, verdict."""

    value: float | None
    lo: float | None
    hi: float | None
    p_positive: float | None
    verdict: str
    seeds: list[int]


@dataclass
class Share:
    """Δ(arm) / Δ(ideal): the share of the headroom an arm closes (None: n/a)."""

    value: float | None
    lo: float | None
    hi: float | None


@dataclass
class Power:
    """What the study can detect in a bucket: MDE = (z_ci + z_power) · √(var_seed / n_seeds +
    var_images), with the variances pooled (averaged) over the compared arms' paired Δs."""

    mde: float | None
    var_seed: float | None
    var_images: float | None
    n_seeds: int
    power: float = POWER


@dataclass
class BucketResult:
    n_images: int
    arms: dict[str, ArmValues]
    delta: dict[str, Delta] = field(default_factory=dict)
    headroom: Delta | None = None  # the ideal arm's Δ, when the study has one
    share: dict[str, Share] = field(default_factory=dict)  # per arm (not ideal, not oracle)
    power: Power | None = None


def summarize(labels: list[RunLabel], samples: list[BucketSamples], arms: list[str], ci: float,
              ideal: str | None = None, reference_arms: tuple[str, ...] = ()
              ) -> dict[str, dict[str, BucketResult]]:
    """Per metric and bucket key, the study's numbers. `arms[0]` is the baseline; `ideal` names
    the headroom arm if there is one; `reference_arms` (the oracle) get a Δ but no share and do
    not enter the pooled variances (they are not translators)."""
    rows = {arm: sorted((i for i, label in enumerate(labels) if label.arm == arm),
                        key=lambda i: labels[i].seed) for arm in arms}
    out: dict[str, dict[str, BucketResult]] = {metric: {} for metric in METRICS}
    for bucket in samples:
        for metric in METRICS:
            full, boot = getattr(bucket, metric), getattr(bucket, f"boot_{metric}")
            out[metric][bucket.key] = _bucket(full, boot, bucket.n_images, labels, rows, arms,
                                              ci, ideal, reference_arms)
    return out


def _bucket(full: np.ndarray, boot: np.ndarray, n_images: int, labels: list[RunLabel],
            rows: dict[str, list[int]], arms: list[str], ci: float, ideal: str | None,
            reference_arms: tuple[str, ...]) -> BucketResult:
    result = BucketResult(n_images, {arm: _arm_values(full, rows[arm], labels) for arm in arms})
    baseline = arms[0]
    base_row = {labels[i].seed: i for i in rows[baseline]}
    variances = []
    for arm in arms[1:]:
        pairs = [(base_row[labels[i].seed], i) for i in rows[arm] if labels[i].seed in base_row]
        a, b = [p[0] for p in pairs], [p[1] for p in pairs]
        if not pairs or not np.isfinite(full[a + b]).all():
            continue  # no common seed, or no ground truth in the bucket
        delta = seeds_then_images(full[a], full[b], boot[a], boot[b], ci, BOOTSTRAP_SEED)
        result.delta[arm] = Delta(**delta, verdict=verdict(delta),
                                  seeds=[labels[i].seed for i in b])
        if arm not in reference_arms:
            variances.append(delta_variances(full[a], full[b], boot[a], boot[b]))
    if variances:
        var_seed, var_images = (float(np.mean(v)) for v in zip(*variances, strict=True))
        n_seeds = len(base_row)
        result.power = Power(minimum_detectable_effect(var_seed, var_images, n_seeds, ci),
                             finite_or_none(var_seed), finite_or_none(var_images), n_seeds)
    if ideal is not None and ideal in result.delta:
        result.headroom = result.delta[ideal]
        for arm in arms[1:]:
            if arm in (ideal, *reference_arms) or arm not in result.delta:
                continue
            result.share[arm] = _share(full, boot, labels, rows, baseline, arm, ideal, ci,
                                       result.headroom)
    return result


def _share(full: np.ndarray, boot: np.ndarray, labels: list[RunLabel],
           rows: dict[str, list[int]], baseline: str, arm: str, ideal: str, ci: float,
           headroom: Delta) -> Share:
    """The arm's share of the headroom on the seeds all three arms ran; n/a (None) where the
    headroom's interval covers 0."""
    if headroom.verdict != "better":
        return Share(None, None, None)
    by_seed = [{labels[i].seed: i for i in rows[name]} for name in (baseline, arm, ideal)]
    seeds = sorted(set(by_seed[0]) & set(by_seed[1]) & set(by_seed[2]))
    if not seeds:
        return Share(None, None, None)
    base, mine, best = ([row[s] for s in seeds] for row in by_seed)
    return Share(**share_of_headroom(full[base], full[mine], full[best], boot[base], boot[mine],
                                     boot[best], ci, BOOTSTRAP_SEED))


def _arm_values(full: np.ndarray, rows: list[int], labels: list[RunLabel]) -> ArmValues:
    values = full[rows]
    finite = values[np.isfinite(values)]
    return ArmValues(
        per_seed={str(labels[i].seed): finite_or_none(full[i]) for i in rows},
        mean=finite_or_none(finite.mean()) if len(finite) else None,
        sd=finite_or_none(finite.std(ddof=1)) if len(finite) > 1 else None)


def as_json(results: dict[str, dict[str, BucketResult]]) -> dict:
    """summarize's results as study.json holds them (plain dicts, numbers only)."""
    return {metric: {key: asdict(result) for key, result in buckets.items()}
            for metric, buckets in results.items()}
