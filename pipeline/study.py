"""`make study`: translators x seeds (+ the in-domain oracle) as DVC experiments, then one table.

    python -m pipeline.study                      # queue what is missing, run it, collect
    python -m pipeline.study --seeds 1 --no-collect   # one machine's slice of the grid
    python -m pipeline.study --collect-only       # e.g. after `dvc exp pull origin`

Every finished experiment's predictions are scored in one paired bootstrap (the same resampled
images for every run); per bucket and arm: mean ± sd over seeds, and each arm's Δ against the
baseline (the first of study.translators) with a CI that resamples seeds, then images. Writes
outputs/study/: report.md, study.json, forest.csv (for `dvc plots`), forest.png.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import yaml

from common.files import atomic_dir
from evaluation.bootstrap import BucketSamples, bootstrap_buckets
from evaluation.intervals import finite_or_none, seeds_then_images, verdict
from pipeline.common import OUTPUTS, run_stage
from pipeline.params import ParamError, StudyParams, load_params, with_study_set
from pipeline.study_gap import gap_prediction, read_gap, render_gap
from pipeline.study_grid import (
    ORACLE,
    Cell,
    Run,
    StudyError,
    clock,
    experiments,
    grid,
    log_tail,
    plan,
    read_run,
    read_val_tables,
    run_queue,
    submit,
)

STUDY = OUTPUTS / "study"
METRICS = {"map50": "mAP50", "map50_95": "mAP50:95"}
SEED = 0  # of the bootstrap's seed draws (the image draws have their own, in bootstrap_buckets)


def summarize(runs: list[Run], samples: list[BucketSamples], study: StudyParams,
              arms: list[str]) -> dict:
    """study.json's `metrics`: per metric, bucket and arm the per-seed values, mean and sd; per
    arm other than the baseline its Δ (mean over paired seeds of arm − baseline), CI, verdict."""
    baseline = arms[0]
    rows = {arm: sorted((i for i, run in enumerate(runs) if run.cell.arm == arm),
                        key=lambda i: runs[i].cell.seed) for arm in arms}
    out: dict = {metric: {} for metric in METRICS}
    for bucket in samples:
        for metric in METRICS:
            full, boot = getattr(bucket, metric), getattr(bucket, f"boot_{metric}")
            entry = {"n_images": bucket.n_images, "arms": {}, "delta": {}}
            for arm in arms:
                values = full[rows[arm]]
                finite = values[np.isfinite(values)]
                entry["arms"][arm] = {
                    "per_seed": {str(runs[i].cell.seed): finite_or_none(full[i])
                                 for i in rows[arm]},
                    "mean": finite_or_none(finite.mean()) if len(finite) else None,
                    "sd": finite_or_none(finite.std(ddof=1)) if len(finite) > 1 else None}
            base_seed = {runs[i].cell.seed: i for i in rows[baseline]}
            for arm in arms[1:]:
                pairs = [(base_seed[runs[i].cell.seed], i) for i in rows[arm]
                         if runs[i].cell.seed in base_seed]
                a, b = [p[0] for p in pairs], [p[1] for p in pairs]
                if not pairs or not np.isfinite(full[a + b]).all():
                    continue  # no common seed, or no ground truth in the bucket
                delta = seeds_then_images(full[a], full[b], boot[a], boot[b], study.ci, SEED)
                entry["delta"][arm] = {**delta, "verdict": verdict(delta),
                                       "seeds": [runs[i].cell.seed for i in b]}
            out[metric][bucket.key] = entry
    return out


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


def _label(arm: str, baseline: str) -> str:
    return f"{arm} (baseline)" if arm == baseline else \
        f"{arm} (in-domain)" if arm == ORACLE else arm


def render_report(summary: dict, study: StudyParams, arms: list[str], record: dict) -> str:
    baseline, n_seeds = arms[0], len(study.seeds)
    ci = f"{study.ci:.0%}"
    lines = [
        "# Is the gain real? The study", "",
        f"Grid: translators {', '.join(study.translators)} × seeds "
        f"{', '.join(map(str, study.seeds))}" + (" + the oracle" if study.oracle else "")
        + (f"; every experiment with `-S {' -S '.join(f'{k}={v}' for k, v in study.set.items())}`"
           if study.set else "") + ".",
        f"Baseline: `{baseline}`. Cells: mean ± sd over seeds (n= where seeds are missing). "
        f"Δ: mean over paired seeds of arm − baseline, [{ci} CI] from {study.bootstrap} "
        "bootstrap replicates that resample the seeds, then the images (the same image draws "
        "for every run); **better** / **worse** when the interval excludes 0, else no "
        "evidence.",
    ]
    if ORACLE in arms:
        lines.append("`oracle` trains the same detector on the target domain's own train frames "
                     "(`dataset.train_on=bdd100k`"
                     + "".join(f", `{k}={v}`" for k, v in study.oracle_set.items())
                     + "): the in-domain reference, not a translator.")
    known = [exp["seconds"] for exp in record["experiments"] if exp.get("seconds")]
    wall = record["wall_time"] + (
        f" Run times measured where the experiments ran: {len(known)} of "
        f"{len(record['experiments'])} known, {clock(sum(known))} together." if known else "")
    lines += ["", wall, ""]
    if record.get("world_note"):
        lines += [record["world_note"], ""]
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
    lines += render_gap(record.get("gap"))
    lines += ["## Experiments", "",
              "| experiment | arm | seed | state | mAP50 | run time | note |",
              "|---|---|---:|---|---:|---:|---|"]
    for exp in record["experiments"]:
        took = clock(exp["seconds"]) if exp.get("seconds") else "–"
        lines.append(f"| {exp['name']} | {exp['arm']} | {exp['seed']} | {exp['state']} | "
                     f"{_num(exp.get('map50'))} | {took} | {exp.get('note') or ''} |")
    failed = [exp for exp in record["experiments"] if exp.get("log")]
    if failed:
        lines += ["", "## Failures", ""]
        for exp in failed:
            lines += [f"### {exp['name']} ({exp['state']})", "",
                      f"Last lines of `dvc queue logs {exp['name']}`:", "", "```",
                      exp["log"], "```", ""]
    return "\n".join(lines).rstrip() + "\n"


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


def one_world(runs: list[Run], baseline: str) -> tuple[str | None, str | None]:
    """The world (val_world: the val frames) runs are paired in: the one most runs share, on a
    tie the baseline's; and a note for the report when some runs come from another."""
    worlds = Counter(run.world for run in runs)
    if not worlds:
        return None, None
    world = max(worlds, key=lambda w: (worlds[w], any(r.world == w and r.cell.arm == baseline
                                                      for r in runs)))
    if len(worlds) == 1:
        return world, None
    return world, (f"**Different worlds**: the experiments' BDD100K val frames differ "
                   f"({', '.join(f'{w} × {n}' for w, n in worlds.items())}); only the "
                   f"{worlds[world]} runs of {world} are paired, the others are not.")


def _known_seconds(out_dir: Path) -> dict[tuple[str, str], float]:
    """Run times an earlier study on this machine measured, by (name, rev)."""
    try:
        old = json.loads((out_dir / "study.json").read_text())
    except (OSError, ValueError):
        return {}
    return {(e["name"], e["rev"]): e["seconds"] for e in old.get("experiments", [])
            if e.get("seconds") and e.get("rev")}


def collect(cells: list[Cell], arms: list[str], study: StudyParams, cfg, seconds: dict,
            wall: str, out_dir: Path) -> dict:
    """Read every finished experiment back from DVC, score them together, write out_dir."""
    found = experiments()
    known = _known_seconds(out_dir)
    record: dict = {"grid": {"translators": study.translators, "seeds": study.seeds,
                             "oracle": study.oracle, "set": study.set,
                             "bootstrap": study.bootstrap, "ci": study.ci},
                    "wall_time": wall, "experiments": []}
    runs, predictions = [], []
    gaps: dict[tuple[str, int], dict | None] = {}  # each run's outputs/gap/gap.json
    for cell in cells:
        exp = {"name": cell.name, "arm": cell.arm, "seed": cell.seed, "state": "missing",
               "rev": None, "seconds": seconds.get(cell.name)}
        record["experiments"].append(exp)
        entries = [e for e in found.get(cell.name, []) if e.params == cell.params]
        done = [e for e in entries if e.state == "success"]
        if done:
            exp.update(state="success", rev=done[0].rev,
                       seconds=exp["seconds"] or known.get((cell.name, done[0].rev)))
            try:
                run, table = read_run(cell, done[0])
            except Exception as err:  # one unreadable experiment (e.g. not in cache) is reported
                exp.update(state="unreadable", note=f"{type(err).__name__}: {err}")
                continue
            exp.update(map50=run.map50, world=run.world, predictions=run.predictions_hash)
            runs.append(run)
            predictions.append(table)
            gaps[(cell.arm, cell.seed)] = read_gap(done[0].rev)
        elif entries:
            exp.update(state=entries[0].state, rev=entries[0].rev)
            if entries[0].state == "failed":
                exp["log"] = log_tail(entries[0])
        elif found.get(cell.name):
            exp["note"] = "ran with other params (re-run the study to replace it)"
        else:
            exp["note"] = "not run"
    world, note = one_world(runs, arms[0])
    if note:
        record["world_note"] = note
        for exp in record["experiments"]:
            if exp.get("world") not in (None, world):
                exp.update(state="not paired", note=f"other val frames ({exp['world']})")
        keep = [i for i, run in enumerate(runs) if run.world == world]
        runs, predictions = [runs[i] for i in keep], [predictions[i] for i in keep]
    summary: dict = {}
    if runs:
        record["world"] = runs[0].world
        images, gt = read_val_tables(runs[0].rev)
        samples = bootstrap_buckets(images, gt, predictions, cfg, n_boot=study.bootstrap,
                                    seed=SEED, progress=False)
        summary = summarize(runs, samples, study, arms)
        record["gap"] = gap_prediction(summary, {(r.cell.arm, r.cell.seed): gaps[
            (r.cell.arm, r.cell.seed)] for r in runs}, arms, study.bootstrap, study.ci)
    record["metrics"] = summary
    with atomic_dir(out_dir) as tmp:
        (tmp / "study.json").write_text(json.dumps(record, indent=1) + "\n")
        (tmp / "report.md").write_text(render_report(summary, study, arms, record))
        write_forest(forest_rows(summary, arms), arms, tmp)
    return record


def _subset(chosen: list | None, allowed: list, key: str) -> list | None:
    for value in chosen or []:
        if value not in allowed:
            raise ParamError(f"{key}: {value!r} is not in params.yaml's {key} "
                             f"({', '.join(map(str, allowed))})")
    return list(dict.fromkeys(chosen)) if chosen else None


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.study", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--translators", nargs="+", metavar="T",
                        help="run only these of study.translators (a slice of the grid)")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="S",
                        help="run only these of study.seeds")
    parser.add_argument("--oracle", action=argparse.BooleanOptionalAction, default=None,
                        help="run the oracle arm in this slice (default: study.oracle)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--no-collect", action="store_true",
                      help="run the slice and leave its experiments (push them to collect "
                           "elsewhere)")
    mode.add_argument("--collect-only", action="store_true",
                      help="queue nothing: collect the experiments there are")
    parser.add_argument("--out", type=Path, default=STUDY, help="default: %(default)s")
    args = parser.parse_args(argv)

    params = load_params()
    study = params.study
    raw = yaml.safe_load(Path("params.yaml").read_text())
    everything = grid(study, raw)
    arms = list(dict.fromkeys(cell.arm for cell in everything))
    wall = "No experiment run by this command: collected what DVC holds."
    seconds: dict[str, float] = {}
    if not args.collect_only:
        cells = grid(study, raw, _subset(args.translators, study.translators, "study.translators"),
                     _subset(args.seeds, study.seeds, "study.seeds"), args.oracle)
        todo = plan(cells, experiments())
        for note in todo.notes:
            print(f"study: {note}")
        print(f"study: {len(cells)} experiments: {len(todo.reuse)} finished (reused), "
              f"{len(todo.wait)} already queued, {len(todo.queue)} to queue", flush=True)
        start = time.monotonic()
        submit(todo)
        if todo.queue or todo.wait:
            print("study: follow one with `dvc queue logs -f <name>`", flush=True)
        seconds = run_queue(todo.queue + todo.wait)
        wall = (f"Grid wall time: {clock(time.monotonic() - start)} for {len(seconds)} "
                f"experiments run by this command ({len(todo.reuse)} reused).")
    if args.no_collect:
        return
    # scored as the experiments evaluated themselves: with study.set applied
    cfg = with_study_set(raw, study.set).evaluation
    record = collect(everything, arms, study, cfg, seconds, wall, args.out)
    states = Counter(exp["state"] for exp in record["experiments"])
    print(f"study: wrote {args.out}/report.md ({', '.join(f'{n} {s}' for s, n in states.items())})")


def _main(argv: list[str]) -> None:
    try:
        main(argv)
    except StudyError as err:
        raise SystemExit(f"study: {err}") from None


if __name__ == "__main__":
    run_stage(_main)
