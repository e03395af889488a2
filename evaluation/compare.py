"""Several runs on the same images, each mAP with its bootstrap interval and each Δ against the
first run with a paired one: compare.json (the shape other tools read) and compare.md.

    python -m evaluation compare --gt GT.json --pred A.json --pred B.json --out DIR
"""

from __future__ import annotations

import json

from evaluation.bootstrap import BucketSamples
from evaluation.coverage import Coverage
from evaluation.intervals import delta_summary, finite_or_none, percentile_interval, verdict

METRICS = ("map50", "map50_95")


def compare(names: list[str], samples: list[BucketSamples], n_boot: int, ci: float) -> dict:
    """compare.json: every bucket's value and interval per run, and Δ against names[0]."""
    buckets = {}
    for bucket in samples:
        entry: dict = {"n_images": bucket.n_images}
        for metric in METRICS:
            full = getattr(bucket, metric)
            boot = getattr(bucket, f"boot_{metric}")
            entry[metric] = {}
            for i, name in enumerate(names):
                lo, hi = percentile_interval(boot[i], ci)
                entry[metric][name] = {"value": finite_or_none(full[i]), "lo": finite_or_none(lo),
                                       "hi": finite_or_none(hi)}
            entry[f"delta_{metric}"] = {
                name: delta_summary(full[i] - full[0], boot[i] - boot[0], ci)
                for i, name in enumerate(names) if i > 0}
        buckets[bucket.key] = entry
    return {"names": list(names), "bootstrap": n_boot, "ci": ci, "buckets": buckets}


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _interval(entry: dict, signed: bool = False) -> str:
    if entry["value"] is None:
        return "n/a"
    return (f"{_fmt(entry['value'], signed)} [{_fmt(entry['lo'], signed)}, "
            f"{_fmt(entry['hi'], signed)}]")


def _coverage_lines(coverage: dict) -> list[str]:
    """compare.md's account of what each run's file covers (compare refuses runs that cover
    different GT frames, so any gap here is the same for every run that lists its frames)."""
    lines = []
    for name, record in coverage.items():
        missing = record["gt_frames_without_entry"]
        frames = ("a COCO results list: which GT frames it covers cannot be checked"
                  if missing is None else f"{record['gt_frames'] - missing} of the "
                  f"{record['gt_frames']} GT frames listed")
        lines.append(f"- `{name}`: {frames}; {record['matched_by_stem']} matched by the name "
                     f"without directory and extension; {record['prediction_frames_not_in_gt']} "
                     "prediction frames not in the GT; classes not evaluated: "
                     f"{', '.join(record['classes_not_evaluated']) or 'none'}.")
    return ["Coverage (frames without an entry are scored as frames without detections):", "",
            *lines, ""] if lines else []


def render_compare(result: dict) -> str:
    """compare.md: one table per metric, a row per bucket, verdicts from the paired CI."""
    names, ci = result["names"], result["ci"]
    pct = f"{100 * ci:g} %"
    lines = ["# Paired bootstrap comparison", "",
             f"{result['bootstrap']} replicates; {pct} percentile intervals. Each replicate draws "
             "a bucket's images with replacement (as many as it holds) and scores every run on "
             f"that same draw, so Δ (each run minus `{names[0]}`) is paired image by image. "
             f"Verdict: better / worse when the {pct} interval of Δ excludes 0, else no "
             "evidence. P(Δ>0) is the share of replicates in which the run is ahead.", ""]
    lines += _coverage_lines(result.get("coverage", {}))
    for metric, title in (("map50", "mAP50"), ("map50_95", "mAP50:95")):
        header = ["bucket", "images", *(f"{n} {title}" for n in names)]
        align = ["---", "---:", *("---:" for _ in names)]
        for name in names[1:]:
            header += [f"Δ {name}", "P(Δ>0)", "verdict"]
            align += ["---:", "---:", "---"]
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |",
                  "|" + "|".join(align) + "|"]
        for key, entry in result["buckets"].items():
            row = [key, str(entry["n_images"])]
            row += [_interval(entry[metric][n]) for n in names]
            for name in names[1:]:
                delta = entry[f"delta_{metric}"][name]
                p = delta["p_positive"]
                row += [_interval(delta, signed=True), "n/a" if p is None else f"{p:.2f}",
                        verdict(delta) if delta["value"] is not None else "n/a"]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)


def compare_json(result: dict) -> str:
    return json.dumps(result, indent=2, allow_nan=False) + "\n"


def forest_rows(result: dict) -> list[dict]:
    """One row per (bucket, run after the first): Δ mAP50 with its paired interval."""
    return [{"bucket": key, "arm": name, **{k: entry["delta_map50"][name][k]
                                             for k in ("value", "lo", "hi")}}
            for key, entry in result["buckets"].items() for name in result["names"][1:]]


def coverage_difference(names: list[str], coverages: list[Coverage]) -> str | None:
    """Why a Δ between these runs would not compare like with like (different GT frames
    covered, a class spelt differently), or None."""
    first = coverages[0]
    for name, other in zip(names[1:], coverages[1:], strict=True):
        if first.covered is not None and other.covered is not None \
                and other.covered != first.covered:
            pairs = [(names[0], first, other), (name, other, first)]
            gaps = [f"{n!r} lists {len(c.covered)} of them" + (
                f" ({len(c.covered - o.covered)} the other does not, e.g. "
                f"{sorted(c.covered - o.covered)[0]!r})" if c.covered - o.covered else "")
                for n, c, o in pairs]
            return (f"runs {names[0]!r} and {name!r} cover different GT frames (of "
                    f"{first.record['gt_frames']}, {'; '.join(gaps)}): a Δ between them would "
                    "compare different frames; give every run the same frames")
        if other.near_misses != first.near_misses:
            spelt = {n: c.near_misses for n, c in ((names[0], first), (name, other))}
            return (f"runs {names[0]!r} and {name!r} spell evaluated classes differently "
                    f"(classes that differ from an evaluated one only in case: {spelt}): "
                    "a Δ would compare a class against nothing; fix the class names")
    return None
