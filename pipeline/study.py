"""`make study`: translators x seeds (+ the ideal arm and the in-domain oracle) as DVC experiments,
then one table.

    python -m pipeline.study                      # queue what is missing, run it, collect
    python -m pipeline.study --seeds 1 --no-collect   # one machine's slice of the grid
    python -m pipeline.study --collect-only       # e.g. after `dvc exp pull origin`

Every finished experiment's predictions are scored in one paired bootstrap (the same resampled
images for every run); per bucket and arm: mean ± sd over seeds, and each arm's Δ against the
baseline (the first of study.translators) with a CI that resamples seeds, then images; the
headroom (the ideal arm's Δ), each translator's share of it, and the minimum detectable effect.
This module runs the grid (study_grid.py) and collects it; evaluation/study.py holds the
statistics, study_report.py the writers. Writes outputs/study/: study.json (numbers only),
report.md, forest.csv (for `dvc plots`), forest.png.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from common.config import read_yaml_file
from common.files import atomic_dir
from detection.model_source import check_detector_model
from evaluation.bootstrap import bootstrap_buckets
from evaluation.study import BOOTSTRAP_SEED, RunLabel, as_json, summarize
from pipeline.common import OUTPUTS, run_stage
from pipeline.params import (
    ParamError,
    StudyParams,
    check_study_arms,
    load_params,
    with_study_set,
)
from pipeline.study_gap import gap_prediction, read_gap
from pipeline.study_grid import (
    IDEAL,
    ORACLE,
    Cell,
    Run,
    StudyError,
    experiments,
    grid,
    log_tail,
    plan,
    read_run,
    read_val_tables,
    run_queue,
    submit,
)
from pipeline.study_report import forest_rows, render_report, write_forest

STUDY = OUTPUTS / "study"


def one_world(runs: list[Run], baseline: str) -> tuple[str | None, dict[str, int]]:
    """The world (val_world: the val frames) runs are paired in: the one most runs share, on a
    tie the baseline's; and how many runs each world has (more than one: the report says so)."""
    worlds = Counter(run.world for run in runs)
    if not worlds:
        return None, {}
    world = max(worlds, key=lambda w: (worlds[w], any(r.world == w and r.cell.arm == baseline
                                                      for r in runs)))
    return world, dict(worlds)


def _known_seconds(out_dir: Path) -> dict[tuple[str, str], float]:
    """Run times an earlier study on this machine measured, by (name, rev)."""
    try:
        old = json.loads((out_dir / "study.json").read_text())
    except (OSError, ValueError):
        return {}
    return {(e["name"], e["rev"]): e["seconds"] for e in old.get("experiments", [])
            if e.get("seconds") and e.get("rev")}


def collect(cells: list[Cell], arms: list[str], study: StudyParams, cfg, run: dict,
            out_dir: Path) -> dict:
    """Read every finished experiment back from DVC, score them together, write out_dir.
    `run`: what this command ran ({wall_seconds, experiments_run, reused, removed: names
    taken off the queue unrun, seconds by name})."""
    found = experiments()
    known = _known_seconds(out_dir)
    seconds = run.pop("seconds")
    record: dict = {"grid": {"translators": study.translators, "seeds": study.seeds,
                             "ideal": IDEAL in arms, "oracle": ORACLE in arms, "set": study.set,
                             "oracle_set": study.oracle_set, "bootstrap": study.bootstrap,
                             "ci": study.ci},
                    "arms": arms, "run": run, "experiments": []}
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
                run_read, table = read_run(cell, done[0])
            except Exception as err:  # one unreadable experiment (e.g. not in cache) is reported
                exp.update(state="unreadable", error=f"{type(err).__name__}: {err}")
                continue
            exp.update(map50=run_read.map50, world=run_read.world,
                       predictions=run_read.predictions_hash)
            runs.append(run_read)
            predictions.append(table)
            gaps[(cell.arm, cell.seed)] = read_gap(done[0].rev)
        elif entries:
            exp.update(state=entries[0].state, rev=entries[0].rev)
            if entries[0].state == "failed":
                exp["log"] = log_tail(entries[0])
        elif found.get(cell.name):
            exp["reason"] = "other_params"
        else:
            exp["reason"] = "removed" if cell.name in run.get("removed", []) else "not_run"
    world, worlds = one_world(runs, arms[0])
    record.update(world=world, worlds=worlds)
    if len(worlds) > 1:
        for exp in record["experiments"]:
            if exp.get("world") not in (None, world):
                exp.update(state="not paired", reason="other_world")
        keep = [i for i, r in enumerate(runs) if r.world == world]
        runs, predictions = [runs[i] for i in keep], [predictions[i] for i in keep]
    summary: dict = {}
    if runs:
        images, gt = read_val_tables(runs[0].rev)
        samples = bootstrap_buckets(images, gt, predictions, cfg, n_boot=study.bootstrap,
                                    seed=BOOTSTRAP_SEED, progress=False)
        labels = [RunLabel(r.cell.arm, r.cell.seed) for r in runs]
        typed = summarize(labels, samples, arms, study.ci,
                          ideal=IDEAL if IDEAL in arms else None, reference_arms=(ORACLE,))
        summary = as_json(typed)
        record["gap"] = gap_prediction(summary, {(r.cell.arm, r.cell.seed): gaps[
            (r.cell.arm, r.cell.seed)] for r in runs}, arms, study.bootstrap, study.ci)
    record["metrics"] = summary
    with atomic_dir(out_dir) as tmp:
        (tmp / "study.json").write_text(json.dumps(record, indent=1) + "\n")
        (tmp / "report.md").write_text(render_report(record))
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
                        help="run the oracle arm in this slice (default: study.oracle); "
                             "--oracle also collects it")
    parser.add_argument("--ideal", action=argparse.BooleanOptionalAction, default=None,
                        help="run the ideal arm in this slice (default: study.ideal); "
                             "--ideal also collects it")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--no-collect", action="store_true",
                      help="run the slice and leave its experiments (push them to collect "
                           "elsewhere)")
    mode.add_argument("--collect-only", action="store_true",
                      help="queue nothing: collect the experiments there are")
    parser.add_argument("--out", type=Path, default=STUDY, help="default: %(default)s")
    args = parser.parse_args(argv)

    params = load_params()
    check_study_arms(params)
    study = params.study
    raw = read_yaml_file(Path("params.yaml"))  # as load_params read it: `lr: 1e-4` is a number
    everything = collected_cells(study, raw, args.oracle, args.ideal)
    arms = list(dict.fromkeys(cell.arm for cell in everything))
    run: dict = {"wall_seconds": None, "experiments_run": 0, "reused": 0, "removed": [],
                 "seconds": {}}
    if not args.collect_only:
        planned = with_study_set(raw, study.set)  # checked before hours of queued experiments
        check_detector_model(planned.detector.model, planned.detector.imgsz,
                             planned.pretrain.model, freeze=planned.detector.freeze)
        cells = grid(study, raw, _subset(args.translators, study.translators, "study.translators"),
                     _subset(args.seeds, study.seeds, "study.seeds"), args.oracle, args.ideal)
        todo = plan(cells, experiments())
        for note in todo.notes:
            print(f"study: {note}")
        print(f"study: {len(cells)} experiments: {len(todo.reuse)} finished (reused), "
              f"{len(todo.wait)} already queued, {len(todo.queue)} to queue", flush=True)
        start = time.monotonic()
        submit(todo)
        if todo.queue or todo.wait:
            print("study: follow one with `dvc queue logs -f <name>`", flush=True)
        seconds, removed = run_queue(todo.queue + todo.wait)
        run = {"wall_seconds": time.monotonic() - start, "experiments_run": len(seconds),
               "reused": len(todo.reuse), "removed": removed, "seconds": seconds}
    if args.no_collect:
        return
    # scored as the experiments evaluated themselves: with study.set applied
    cfg = with_study_set(raw, study.set).evaluation
    record = collect(everything, arms, study, cfg, run, args.out)
    states = Counter(exp["state"] for exp in record["experiments"])
    print(f"study: wrote {args.out}/report.md ({', '.join(f'{n} {s}' for s, n in states.items())})")


def collected_cells(study: StudyParams, raw: dict, oracle: bool | None,
                    ideal: bool | None) -> list[Cell]:
    """What the study collects: the grid of params.yaml, and the oracle or ideal arm where this
    command was told to run it (`--oracle` with `study.oracle: false`: its runs are reported, not
    left out). `--no-oracle` only keeps a slice from running it; the grid still has it."""
    return grid(study, raw, oracle=study.oracle or bool(oracle),
                ideal=study.ideal or bool(ideal))


def _main(argv: list[str]) -> None:
    try:
        main(argv)
    except StudyError as err:
        raise SystemExit(f"study: {err}") from None


if __name__ == "__main__":
    run_stage(_main)
