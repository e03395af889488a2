"""The study's writers: study.json's numbers as report.md, forest.csv and forest.png.

Everything here reads the `record` that study.json holds (numbers only), so a report can be
re-rendered from a study.json alone.
"""

from __future__ import annotations

from pathlib import Path

from evaluation.study import METRICS
from pipeline.study_gap import render_gap
from pipeline.study_grid import IDEAL, ORACLE, clock


def _num(value: float | None, sign: bool = False) -> str:
    return "–" if value is None else f"{value:+.3f}" if sign else f"{value:.3f}"


def _cell(arm: dict, n_seeds: int) -> str:
    text = _num(arm["mean"])
    if arm["sd"] is not None:
        text += f" ± {arm['sd']:.3f}"
    n = sum(v is not None for v in arm["per_seed"].values())
    return text if n == n_seeds or arm["mean"] is None else f"{text} (n={n})"


def _delta(delta: dict | None) -> str:
    if delta is None:
        return "–"
    word = delta["verdict"]
    word = f"**{word}**" if word in ("better", "worse") else word
    return f"{_num(delta['value'], True)} [{_num(delta['lo'], True)}, " \
           f"{_num(delta['hi'], True)}] {word}"


def _share(share: dict | None) -> str:
    if share is None or share["value"] is None:
        return "n/a"
    interval = "" if share["lo"] is None else f" [{share['lo']:+.0%}, {share['hi']:+.0%}]"
    return f"{share['value']:+.0%}{interval}"


def _label(arm: str, baseline: str) -> str:
    return f"{arm} (baseline)" if arm == baseline else \
        f"{arm} (in-domain)" if arm == ORACLE else \
        f"{arm} (perfect translator)" if arm == IDEAL else arm


def _wall(record: dict) -> str:
    run = record["run"]
    if run["wall_seconds"] is None:
        text = "No experiment run by this command: collected what DVC holds."
    else:
        removed = run.get("removed") or []  # older study.json files have no such key
        gone = f", {len(removed)} removed from the queue: not run" if removed else ""
        text = (f"Grid wall time: {clock(run['wall_seconds'])} for {run['experiments_run']} "
                f"experiments run by this command ({run['reused']} reused{gone}).")
    known = [exp["seconds"] for exp in record["experiments"] if exp.get("seconds")]
    if known:
        text += (f" Run times measured where the experiments ran: {len(known)} of "
                 f"{len(record['experiments'])} known, {clock(sum(known))} together.")
    return text


def _worlds(record: dict) -> list[str]:
    worlds = record.get("worlds") or {}
    if len(worlds) < 2:
        return []
    return [f"**Different worlds**: the experiments' BDD100K val frames differ "
            f"({', '.join(f'{w} × {n}' for w, n in worlds.items())}); only the "
            f"{worlds[record['world']]} runs of {record['world']} are paired, the others are "
            "not.", ""]


def render_report(record: dict) -> str:
    grid, summary = record["grid"], record["metrics"]
    arms = record["arms"]
    baseline, n_seeds = arms[0], len(grid["seeds"])
    ci = f"{grid['ci']:.0%}"
    extra = [name for name, on in ((IDEAL, grid.get("ideal")), (ORACLE, grid["oracle"])) if on]
    lines = [
        "# Is the gain real? The study", "",
        f"Grid: translators {', '.join(grid['translators'])} × seeds "
        f"{', '.join(map(str, grid['seeds']))}"
        + "".join(f" + the {name} arm" for name in extra)
        + (f"; every experiment with `-S {' -S '.join(f'{k}={v}' for k, v in grid['set'].items())}`"
           if grid["set"] else "") + ".",
        f"Baseline: `{baseline}`. Cells: mean ± sd over seeds (n= where seeds are missing). "
        f"Δ: mean over paired seeds of arm − baseline, [{ci} CI] from {grid['bootstrap']} "
        "bootstrap replicates that resample the seeds, then the images (the same image draws "
        "for every run); **better** / **worse** when the interval excludes 0, else no "
        "evidence.",
    ]
    if IDEAL in arms:
        lines.append("`ideal` is a perfect appearance translator: the clone frames rendered "
                     "again in each weather's real look, same geometry and boxes (the sample "
                     "world's renders). Its Δ is the headroom: what translation can win here.")
    if ORACLE in arms:
        lines.append("`oracle` trains the same detector on the target domain's own train frames "
                     "(`dataset.train_on=bdd100k`"
                     + "".join(f", `{k}={v}`" for k, v in grid["oracle_set"].items())
                     + "): the in-domain reference, not a translator.")
    lines += ["", _wall(record), "", *_worlds(record)]
    for metric, title in METRICS.items():
        if not summary.get(metric):
            continue
        lines += [f"## {title}", "",
                  "| bucket | images | " + " | ".join(_label(a, baseline) for a in arms)
                  + "".join(f" | Δ {a}" for a in arms[1:]) + " |",
                  "|---|---:|" + "---:|" * len(arms) + "---|" * (len(arms) - 1)]
        for key, entry in summary[metric].items():
            cells = [_cell(entry["arms"][a], n_seeds) for a in arms]
            cells += [_delta(entry["delta"].get(a)) for a in arms[1:]]
            lines.append(f"| {key} | {entry['n_images']} | " + " | ".join(cells) + " |")
        lines.append("")
        if metric == "map50" and len(arms) > 1:  # write_forest draws it next to report.md
            lines += ["![Δ mAP50 with its interval, per bucket and arm](forest.png)", ""]
    lines += render_headroom(summary.get("map50", {}), arms, grid["ci"])
    lines += render_gap(record.get("gap"))
    lines += ["## Experiments", "",
              "| experiment | arm | seed | state | mAP50 | run time | note |",
              "|---|---|---:|---|---:|---:|---|"]
    for exp in record["experiments"]:
        took = clock(exp["seconds"]) if exp.get("seconds") else "–"
        lines.append(f"| {exp['name']} | {exp['arm']} | {exp['seed']} | {exp['state']} | "
                     f"{_num(exp.get('map50'))} | {took} | {_note(exp)} |")
    failed = [exp for exp in record["experiments"] if exp.get("log")]
    if failed:
        lines += ["", "## Failures", ""]
        for exp in failed:
            lines += [f"### {exp['name']} ({exp['state']})", "",
                      f"Last lines of `dvc queue logs {exp['name']}`:", "", "```",
                      exp["log"], "```", ""]
    return "\n".join(lines).rstrip() + "\n"


# why an experiment has no result (study.json's `reason`), in words
REASONS = {"not_run": "not run",
           "removed": "removed from the queue (`dvc queue remove`) before it ran: not run",
           "other_params": "ran with other params (re-run the study to replace it)",
           "other_world": "scored on other val frames: not paired"}


def _note(exp: dict) -> str:
    if exp.get("error"):
        return exp["error"]
    return REASONS.get(exp.get("reason"), exp.get("reason") or "")


def render_headroom(buckets: dict, arms: list[str], ci: float) -> list[str]:
    """report.md's section on what a perfect translator buys, each translator's share of it,
    and the smallest Δ the study can see (mAP50)."""
    shared = [a for a in arms[1:] if a not in (IDEAL, ORACLE)]
    if not any(entry.get("power") for entry in buckets.values()):
        return []
    lines = ["## Headroom, share closed and what the study can detect (mAP50)", "",
             "Headroom: Δ of `ideal` (the perfect appearance translator) against the baseline. "
             "Share: Δ(arm) / Δ(ideal) on the same seeds, its interval from the same paired "
             "replicates; n/a where the headroom's own interval covers 0. MDE: the smallest "
             f"true Δ this grid detects with {_power(buckets):.0%} power at its {ci:.0%} CI, "
             "(z + z_power) · √(var_seed / seeds + var_images), the variances of the paired Δs "
             "pooled over the translator arms; MDE / headroom ≤ 1/2 means the study can see a "
             "translator that closes half the headroom.", "",
             "| bucket | headroom | MDE | MDE / headroom |"
             + "".join(f" share {a} |" for a in shared),
             "|---|---|---:|---:|" + "---|" * len(shared)]
    for key, entry in buckets.items():
        power, headroom = entry.get("power") or {}, entry.get("headroom")
        mde = power.get("mde")
        ratio = (f"{mde / headroom['value']:.2f}" if mde is not None and headroom
                 and headroom["value"] and headroom["value"] > 0 else "–")
        lines.append(f"| {key} | {_delta(headroom) if headroom else 'no ideal arm'} | "
                     f"{_num(mde)} | {ratio} |"
                     + "".join(f" {_share(entry['share'].get(a))} |" for a in shared))
    return [*lines, ""]


def _power(buckets: dict) -> float:
    return next(entry["power"]["power"] for entry in buckets.values() if entry.get("power"))


def forest_rows(summary: dict, arms: list[str]) -> list[dict]:
    return [{"bucket": key, "arm": arm, "label": f"{key} · {arm}", **{
        k: entry["delta"][arm][k] for k in ("value", "lo", "hi", "verdict")}}
        for key, entry in summary.get("map50", {}).items()
        for arm in arms[1:] if arm in entry["delta"]]


def write_forest(rows: list[dict], arms: list[str], out: Path) -> None:
    """forest.csv (one row per bucket and arm: Δ mAP50, lo, hi) and forest.png."""
    from evaluation.figures import forest_figure  # matplotlib: only where a picture is drawn

    with (out / "forest.csv").open("w") as csv:
        csv.write("bucket,arm,label,delta,lo,hi,verdict\n")
        for r in rows:
            csv.write(",".join([r["bucket"], r["arm"], r["label"]]
                               + ["" if r[k] is None else repr(r[k])
                                  for k in ("value", "lo", "hi")] + [r["verdict"]]) + "\n")
    forest_figure(rows, arms, f"Δ mAP50 against {arms[0]} (CI: seeds, then images)",
                  out / "forest.png")
