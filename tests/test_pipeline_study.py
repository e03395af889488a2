"""The study (pipeline/study.py, pipeline/study_grid.py).

Fast: the `study:` params, the grid's names and `-S` overrides against what DVC itself applies,
what a re-run reuses, and the statistics and report on a real detector's BDD100K predictions.
Slow: the whole thing for real, beyond one machine: a tiny grid split over two clones of a bare
git `origin` that `dvc exp push` to it (outputs to a local-directory DVC remote), collected in a
third clone after `dvc exp pull`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import dvc.api
import numpy as np
import pytest
import yaml
from dvc.utils.hydra import apply_overrides
from tiny_repo import make_repo, run

from evaluation import EvalConfig, evaluate
from evaluation.bootstrap import bootstrap_buckets
from evaluation.study import RunLabel, as_json, summarize
from pipeline import study_grid
from pipeline.params import ParamError, StudyParams, load_params, without_study
from pipeline.study import collected_cells, one_world
from pipeline.study_grid import (
    REMOVED,
    Entry,
    Plan,
    Run,
    StudyError,
    experiments,
    grid,
    plan,
    queue_status,
    submit,
    succeeded_names,
    task_state,
    worker_env,
    worker_up,
)
from pipeline.study_report import forest_rows, render_report, write_forest

REPO = Path(__file__).resolve().parents[1]


def raw_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.mark.parametrize(
    ("study", "message"),
    [
        ({"translators": ["none", "pix2pix"]}, "study.translators[1]: 'pix2pix' is not allowed"),
        ({"translators": ["none"]}, "study.translators: needs at least two"),
        ({"translators": ["fda", "fda"]}, "study.translators: needs at least two different"),
        ({"seeds": []}, "study.seeds: needs one or more"),
        ({"seeds": [1, 1]}, "study.seeds: needs one or more different"),
        ({"seeds": [0, -1]}, "study.seeds[1]: must be a whole number >= 0, got -1"),
        ({"bootstrap": 99}, "study.bootstrap: must be a whole number in [100, 20000], got 99"),
        ({"bootstrap": 10**9}, "study.bootstrap: must be a whole number in [100, 20000]"),
        ({"ci": 1.0}, "study.ci: must be in (0, 1), got 1.0"),
        ({"oracle": "yes"}, "study.oracle: expected true or false"),
        ({"ideal": 1}, "study.ideal: expected true or false"),
        ({"translators": ["none", "ideal"]}, "study.translators[1]: 'ideal' is not allowed"),
        ({"runs": 3}, "study.runs: unknown key"),
        ({"set": {"detector.epocs": 3}}, "study.set: detector.epocs: unknown key"),
        ({"set": {"detector.epochs": "ten"}}, "study.set: detector.epochs: expected a whole"),
        ({"set": {"detector.epochs": 0}},
         "study.set: detector.epochs: must be a whole number >= 1, got 0"),
        ({"set": {"seed.x": 1}}, "study.set: seed.x: seed is a value, not a section"),
        ({"set": {"seed": 3}}, "study.set.seed: the study sets seed, translator"),
        ({"set": {"dataset.train_on": "bdd100k"}}, "study.set.dataset.train_on: the study sets"),
        ({"set": {"detector.epochs": [1, 2]}}, "study.set.detector.epochs: [1, 2] is not allowed"),
    ],
)
def test_study_params_are_checked_at_load(tmp_path, study, message):
    raw = raw_params()
    raw["study"] = {**raw["study"], **study}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamError) as error:
        load_params(tmp_path / "params.yaml")
    assert str(error.value).startswith(message), error.value
    assert "\n" not in str(error.value)


def test_grid_names_and_overrides_are_what_dvc_applies(tmp_path):
    raw = raw_params()
    # a key params.yaml does not list (patience), and a string DVC must not re-type or split
    study = StudyParams(translators=["none", "fda"], seeds=[0, 3], oracle=True,
                        set={"detector.patience": 7, "translators.nst.weights": "it's, 1"})
    cells = grid(study, raw)
    assert [(c.arm, c.seed) for c in cells] == [("none", 0), ("none", 3), ("fda", 0), ("fda", 3),
                                               ("ideal", 0), ("ideal", 3), ("oracle", 0),
                                               ("oracle", 3)]
    assert cells[4].overrides["translator"] == "ideal"
    tag = cells[0].name.rsplit("-", 1)[1]
    assert [c.name for c in cells[:2]] == [f"study-none-s0-{tag}", f"study-none-s3-{tag}"]
    assert [c.name for c in grid(study, raw)] == [c.name for c in cells]  # deterministic
    other = StudyParams(translators=["none", "fda"], seeds=[0, 3], set={"detector.patience": 8})
    assert grid(other, raw)[0].name != cells[0].name  # the overrides are in the name
    oracle = cells[-1].params
    assert oracle["translator"] == "none" and oracle["dataset"]["train_on"] == "bdd100k"
    for cell in cells:
        path = tmp_path / "params.yaml"
        path.write_text(yaml.safe_dump(raw))
        apply_overrides(path, cell.set_args()[1::2])  # what `dvc exp run -S ...` does
        assert without_study(yaml.safe_load(path.read_text())) == cell.params
    assert cells[0].params["translators"]["nst"]["weights"] == "it's, 1"
    assert cells[3].params["seed"] == 3 and cells[3].params["detector"]["patience"] == 7
    # a slice is a subset of the same cells
    assert [c.name for c in grid(study, raw, ["fda"], [3], False, False)] == [cells[3].name]


def test_an_arm_run_by_flag_is_collected_too():
    """`--oracle` with study.oracle false ran the oracle: collecting leaves it out no more
    (seen: three finished oracle runs missing from a `--collect-only --oracle` report)."""
    study = StudyParams(translators=["none", "fda"], seeds=[0], oracle=False, ideal=False)

    def arms(oracle, ideal, params=study):
        return [cell.arm for cell in collected_cells(params, raw_params(), oracle, ideal)]

    assert arms(None, None) == ["none", "fda"]
    assert arms(True, None) == ["none", "fda", "oracle"]
    assert arms(None, True) == ["none", "fda", "ideal"]
    both = StudyParams(translators=["none", "fda"], seeds=[0], oracle=True, ideal=True)
    assert arms(False, False, both) == ["none", "fda", "ideal", "oracle"]  # a slice's --no-oracle


def test_a_rerun_reuses_what_finished_and_replaces_what_did_not():
    cells = grid(StudyParams(translators=["none", "fda"], seeds=[0], oracle=True, ideal=False),
                 raw_params())
    none, fda, oracle = cells
    stale = {**none.params, "seed": 9}
    found = {none.name: [Entry(none.name, "a" * 40, "success", none.params)],
             fda.name: [Entry(fda.name, "b" * 40, "failed", fda.params)],
             oracle.name: [Entry(oracle.name, "c" * 40, "success", stale)]}
    todo = plan(cells, found)
    assert todo.reuse == [none] and todo.queue == [fda, oracle] and todo.drop == ["b" * 40]
    assert todo.force == {oracle.name}
    assert any("failed before" in n for n in todo.notes)
    assert any(oracle.name in n and "seed" in n for n in todo.notes)
    found[fda.name] = [Entry(fda.name, "d" * 40, "running", fda.params)]
    found[oracle.name].append(Entry(oracle.name, "e" * 40, "success", oracle.params))
    todo = plan(cells, found)
    assert todo.reuse == [none, oracle] and todo.wait == [fda] and not todo.queue


def test_a_task_removed_from_the_queue_is_reported_not_run(tmp_path, monkeypatch):
    """`dvc queue status` stops listing a task once it is removed: that is not a finished run
    (only `dvc exp show` can say one finished), so the study neither counts nor collects it."""
    assert [task_state(s, False) for s in ("Queued", "Running", "Failed", "Success")] == [
        "Queued", "Running", "Failed", "Success"]
    assert task_state(None, True) == "Success"  # unlisted, but its experiment succeeded
    assert task_state(None, False) == REMOVED
    # for real: a queued experiment, then `dvc queue remove`
    repo = make_repo(tmp_path / "repo")
    monkeypatch.chdir(repo)
    cell = grid(StudyParams(translators=["none", "fda"], seeds=[0], oracle=False, ideal=False),
                raw_params(), ["fda"])[0]
    submit(Plan(queue=[cell]))
    task = next(e.rev[:7] for e in experiments()[cell.name] if e.state == "queued")
    assert task_state(queue_status()[0].get(task), False) == "Queued"
    run(repo, "dvc", "queue", "remove", cell.name)
    states, _ = queue_status()
    succeeded = succeeded_names([cell])  # what run_queue asks `dvc exp show` once unlisted
    assert task not in states and cell.name not in succeeded
    assert task_state(states.get(task), cell.name in succeeded) == REMOVED
    record = {"grid": {"translators": ["none", "fda"], "seeds": [0], "ideal": False,
                       "oracle": False, "set": {}, "oracle_set": {}, "bootstrap": 1000,
                       "ci": 0.95},
              "arms": ["none", "fda"], "metrics": {},
              "run": {"wall_seconds": 5.0, "experiments_run": 0, "reused": 0,
                      "removed": [cell.name], "seconds": {}},
              "experiments": [{"name": cell.name, "arm": "fda", "seed": 0, "state": "missing",
                               "rev": None, "seconds": None, "reason": "removed"}]}
    report = render_report(record)
    assert "(0 reused, 1 removed from the queue: not run)" in report
    assert "removed from the queue (`dvc queue remove`) before it ran: not run" in report


def test_a_failed_read_of_the_queue_is_retried_and_said(monkeypatch, capsys):
    """A worker rewriting the queue's files can make one `dvc queue status` fail: the study
    says so and polls again; only POLL_FAILURES failures in a row end its wait."""
    cell = grid(StudyParams(translators=["none", "fda"], seeds=[0], oracle=False, ideal=False),
                raw_params(), ["fda"])[0]
    monkeypatch.setattr(study_grid, "experiments",
                        lambda: {cell.name: [Entry(cell.name, "abcdef0123", "queued", {})]})
    monkeypatch.setattr(study_grid, "dvc", lambda *args, **kwargs: None)  # `dvc queue start`
    monkeypatch.setattr(study_grid, "POLL_S", (0.0, 0.0))
    polls = iter([StudyError("`dvc queue status` failed:\nERROR: unexpected error - Expecting "
                             "value: line 1 column 1 (char 0)"),
                  ({"abcdef0": "Running"}, 1), ({"abcdef0": "Success"}, 1)])

    def queue_status():
        answer = next(polls)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(study_grid, "queue_status", queue_status)
    seconds, removed = study_grid.run_queue([cell])
    assert list(seconds) == [cell.name] and removed == []
    out = capsys.readouterr().out
    assert "reading the queue failed (`dvc queue status` failed:); trying again" in out
    assert f"1/1 done (0 failed): {cell.name} success" in out

    def never():
        raise StudyError("`dvc queue status` failed:\nERROR: unexpected error")

    monkeypatch.setattr(study_grid, "queue_status", never)
    with pytest.raises(StudyError, match=f"could not be read {study_grid.POLL_FAILURES} times"):
        study_grid.run_queue([cell])



def test_the_watch_waits_a_poll_before_calling_a_task_removed_and_restarts_a_worker_once(
        monkeypatch, capsys):
    """A task missing from one `dvc queue status` (a worker taking it) is not yet removed; a
    queue with no worker for NO_WORKER_S gets one `dvc queue start`, and the second time the
    wait ends (collecting what finished)."""
    cell = grid(StudyParams(translators=["none", "fda"], seeds=[0], oracle=False, ideal=False),
                raw_params(), ["fda"])[0]
    starts = []
    monkeypatch.setattr(study_grid, "dvc", lambda *args, **kwargs: starts.append(args))
    monkeypatch.setattr(study_grid, "NO_WORKER_S", 0.0)
    watch = study_grid.QueueWatch([cell], {"abcdef0": cell.name})
    watch.update({}, set())  # unlisted once: a worker may be taking it
    assert watch.removed == [] and not watch.done()
    watch.update({"abcdef0": "Running"}, set())
    assert cell.name in watch.started and watch.removed == []
    assert watch.keep_a_worker({}, 0)  # no worker: idle from now
    assert watch.keep_a_worker({}, 0) and starts == [("queue", "start")]
    assert watch.keep_a_worker({}, 0)  # idle again from now
    assert not watch.keep_a_worker({}, 0)  # ... and past it a second time: stop
    assert starts == [("queue", "start")]
    assert "no queue worker is running and experiments still wait" in capsys.readouterr().out
    watch.update({}, set())
    watch.update({}, set())  # unlisted on two polls, never succeeded: removed, not run
    assert watch.removed == [cell.name] and watch.done()

def test_runs_pair_only_within_one_world():
    cells = grid(StudyParams(translators=["none", "fda"], seeds=[0, 1], oracle=False, ideal=False),
                 raw_params())
    runs = [Run(cell, "0" * 40, world, None, None)
            for cell, world in zip(cells, ["w1", "w2", "w2", "w1"], strict=True)]
    assert one_world(runs[:1], "none") == ("w1", {"w1": 1})
    world, worlds = one_world(runs, "none")  # a tie: the baseline's first world
    assert world == "w1" and worlds == {"w1": 2, "w2": 2}
    assert one_world(runs[1:], "none")[0] == "w2"


def test_summary_report_and_forest_on_real_predictions(mot_tables, tmp_path):
    """Per-seed values are each run's own evaluation; Δ pairs seeds; report and plot say so."""
    images, gt, preds = mot_tables
    cfg = EvalConfig()
    study = StudyParams(translators=["none", "fda"], seeds=[0, 1, 2], oracle=False, ideal=False,
                        bootstrap=200)
    cells = grid(study, raw_params())
    rng = np.random.default_rng(0)
    predictions = []
    for cell in cells:  # arms that differ: the baseline keeps 70 % of the boxes, fda 95 %
        keep = rng.random(len(preds)) < (0.7 if cell.arm == "none" else 0.95)
        predictions.append(preds[keep].reset_index(drop=True))
    runs = [Run(cell, "0" * 40, "w", None, None) for cell in cells]
    samples = bootstrap_buckets(images, gt, predictions, cfg, n_boot=200, progress=False)
    labels = [RunLabel(run.cell.arm, run.cell.seed) for run in runs]
    summary = as_json(summarize(labels, samples, ["none", "fda"], study.ci))

    for cell, table in zip(cells, predictions, strict=True):
        metrics = evaluate(images, gt, table, cfg).metrics
        arms = {key: summary["map50"][key]["arms"][cell.arm]["per_seed"][str(cell.seed)]
                for key in summary["map50"]}
        assert abs(arms["all"] - metrics["map50"]) <= 1e-12
        assert abs(summary["map50_95"]["all"]["arms"][cell.arm]["per_seed"][str(cell.seed)]
                   - metrics["map50_95"]) <= 1e-12
        for name, values in metrics["per_class"].items():
            assert abs(arms[f"class/{name}"] - values["ap50"]) <= 1e-12
        for group in ("occlusion", "weather", "timeofday"):
            for name, values in metrics[group].items():
                if values["map50"] is not None:
                    assert abs(arms[f"{group}/{name}"] - values["map50"]) <= 1e-12
    everything = summary["map50"]["all"]
    none = [everything["arms"]["none"]["per_seed"][s] for s in "012"]
    fda = [everything["arms"]["fda"]["per_seed"][s] for s in "012"]
    assert everything["arms"]["none"]["mean"] == pytest.approx(np.mean(none), abs=1e-12)
    assert everything["arms"]["none"]["sd"] == pytest.approx(np.std(none, ddof=1), abs=1e-12)
    delta = everything["delta"]["fda"]
    assert delta["value"] == pytest.approx(np.mean(fda) - np.mean(none), abs=1e-12)
    assert delta["lo"] <= delta["value"] <= delta["hi"] and delta["seeds"] == [0, 1, 2]
    assert delta["verdict"] == ("better" if delta["lo"] > 0 else
                                "worse" if delta["hi"] < 0 else "no evidence")
    assert "none" not in everything["delta"]  # the baseline has no Δ against itself

    record = {"grid": {**asdict(study), "set": {}}, "arms": ["none", "fda"], "metrics": summary,
              "run": {"wall_seconds": 1.0, "experiments_run": 6, "reused": 0}, "experiments": [
        {"name": c.name, "arm": c.arm, "seed": c.seed, "state": "success", "map50": 0.5}
        for c in cells] + [{"name": "study-fda-s3-x", "arm": "fda", "seed": 3,
                            "state": "failed", "log": "boom: the log's last line"}]}
    report = render_report(record)
    row = next(line for line in report.splitlines() if line.startswith("| all |"))
    assert f"{np.mean(none):.3f} ± {np.std(none, ddof=1):.3f}" in row
    assert f"{delta['value']:+.3f} [{delta['lo']:+.3f}, {delta['hi']:+.3f}]" in row
    assert "## mAP50:95" in report and "| weather/" in report and "| occlusion/11+ |" in report
    assert "\n![Δ mAP50 with its interval, per bucket and arm](forest.png)\n\n## mAP50:95" in report
    assert "### study-fda-s3-x (failed)" in report and "boom: the log's last line" in report

    rows = forest_rows(summary, ["none", "fda"])
    assert len(rows) == len(summary["map50"]) and {r["arm"] for r in rows} == {"fda"}
    write_forest(rows, ["none", "fda"], tmp_path)
    lines = (tmp_path / "forest.csv").read_text().splitlines()
    assert lines[0] == "bucket,arm,label,delta,lo,hi,verdict" and len(lines) == 1 + len(rows)
    assert (tmp_path / "forest.png").read_bytes()[:4] == b"\x89PNG"


STUDY = {"translators": ["none", "fda", "nst"], "seeds": [0], "oracle": True, "ideal": False,
         "bootstrap": 200,
         "ci": 0.95, "set": {"detector.epochs": 1},
         # the oracle's own world: more BDD train frames (ingest differs), the same val frames
         "oracle_set": {"data.sample.bdd_train_frames_per_weather": 4}}


def study_json(clone: Path) -> dict:
    return json.loads((clone / "outputs/study/study.json").read_text())


@pytest.mark.slow
def test_study_split_over_two_clones_and_collected_in_a_third(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no VGG19 weights: nst fails
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))  # the bootstrap compiles once
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["study"] = STUDY
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(repo, "dvc", "remote", "add", "-d", "store", str(tmp_path / "store"))
    run(repo, "git", "add", "params.yaml", ".dvc/config")
    run(repo, "git", "commit", "-qm", "study grid, shared DVC remote")
    run(tmp_path, "git", "clone", "-q", "--bare", str(repo), "origin.git")
    for clone in ("a", "b", "c"):
        run(tmp_path, "git", "clone", "-q", "origin.git", clone)
    a, b, c = (tmp_path / clone for clone in ("a", "b", "c"))
    names = {cell.arm: cell.name for cell in grid(StudyParams(**STUDY), params)}
    study_cmd = ("python", "-m", "pipeline.study")

    # machine A: the baseline, and nst, which fails offline (no VGG19 weights); collected there
    out = run(a, *study_cmd, "--translators", "none", "nst", "--no-oracle")
    assert "2 to queue" in out and "2/2 done (1 failed)" in out, out
    found = {e["name"]: e for e in study_json(a)["experiments"]}
    assert {name: found[name]["state"] for name in names.values()} == {
        names["none"]: "success", names["nst"]: "failed", names["fda"]: "missing",
        names["oracle"]: "missing"}
    assert "VGG19 ImageNet weights not found" in found[names["nst"]]["log"]
    report = (a / "outputs/study/report.md").read_text()
    assert f"### {names['nst']} (failed)" in report and "translator_train@fog" in report
    # again: the finished baseline is reused, the failed experiment queued again
    out = run(a, *study_cmd, "--translators", "none", "nst", "--no-oracle", "--no-collect")
    assert "1 finished (reused), 0 already queued, 1 to queue" in out, out
    assert f"{names['nst']}: failed before, queued again" in out
    run(a, "dvc", "exp", "push", "origin")

    # machine B: fda and the oracle, left for someone else to collect
    out = run(b, *study_cmd, "--translators", "fda", "--no-collect")
    assert "2/2 done (0 failed)" in out and not (b / "outputs/study").exists(), out
    run(b, "dvc", "exp", "push", "origin")

    # C collects both machines' experiments from the remotes, running nothing
    run(c, "dvc", "exp", "pull", "origin")
    run(c, *study_cmd, "--collect-only")
    study = study_json(c)
    found = {e["name"]: e for e in study["experiments"]}
    assert {name: found[name]["state"] for name in names.values()} == {
        names["none"]: "success", names["fda"]: "success", names["oracle"]: "success",
        names["nst"]: "missing"}
    hashes, ingest_hashes = set(), {}
    for arm in ("none", "fda", "oracle"):
        exp = found[names[arm]]
        metrics = json.loads(dvc.api.read("outputs/eval/metrics.json", repo=str(c),
                                          rev=exp["rev"]))
        lock = yaml.safe_load(dvc.api.read("dvc.lock", repo=str(c), rev=exp["rev"]))["stages"]
        assert exp["world"] == study["world"]  # one set of val frames, so all are paired
        ingest_hashes[arm] = lock["ingest"]["outs"][0]["md5"]
        assert exp["predictions"] == lock["predict"]["outs"][0]["md5"]
        hashes.add(exp["predictions"])
        values = {key: bucket["arms"][arm]["per_seed"]["0"]
                  for key, bucket in study["metrics"]["map50"].items()}
        assert abs(values["all"] - metrics["map50"]) <= 1e-12
        for name, class_metrics in metrics["per_class"].items():
            assert abs(values[f"class/{name}"] - class_metrics["ap50"]) <= 1e-12
        for name, bucket in metrics["occlusion"].items():
            assert abs(values[f"occlusion/{name}"] - bucket["map50"]) <= 1e-12
        assert set(study["metrics"]["map50"]["all"]["delta"]) == {"fda", "oracle"}
    assert len(hashes) == 3  # each experiment's own predictions
    # the oracle's world has more BDD train frames (its own ingest), the others share one
    assert ingest_hashes["none"] == ingest_hashes["fda"] != ingest_hashes["oracle"]
    report = (c / "outputs/study/report.md").read_text()
    assert all(names[arm] in report for arm in ("none", "fda", "oracle"))
    assert "| all | 16 |" in report and "oracle (in-domain)" in report
    assert (c / "outputs/study/forest.png").stat().st_size > 0
    # the gap: each translator run's own gap.json (read at its rev) against its Δ mAP50; the
    # oracle is no translator; one seed per arm is too few points for a ρ
    for weather in ("fog", "rain", "overcast"):
        points = study["gap"]["points"][weather]
        assert [(p["arm"], p["seed"]) for p in points] == [("none", 0), ("fda", 0)]
        gap = json.loads(dvc.api.read("outputs/gap/gap.json", repo=str(c),
                                      rev=found[names["fda"]]["rev"]))
        assert points[1]["kid_closed"] == gap["weather"][weather]["kid_closed"]
        assert points[0]["delta_map50"] == 0.0
        assert study["gap"]["spearman"][weather]["kid_closed"]["rho"] is None
    assert "## Does the label-free gap predict the gain?" in report
    # one feature space for all: stage gap_reference's file, restored from the run-cache
    assert "Reference network: `outputs/gap_reference/seeded-yolov5n.pt`" in report
    assert len((c / "outputs/study/forest.csv").read_text().splitlines()) > 1

    # the pulled experiments are the finished grid: a full run there queues nothing (and
    # collects nothing new: the collection above is what it would write)
    out = run(c, *study_cmd, "--translators", "none", "fda", "--no-collect")
    assert "3 finished (reused), 0 already queued, 0 to queue" in out, out
    assert "No experiment tasks in the queue" in run(c, "dvc", "queue", "status")


def test_val_world_ignores_paths_and_other_splits(mot_tables):
    """Pairing key: the val frames and boxes, not where the world was written."""
    from pipeline.study_grid import val_world

    images, objects, _ = mot_tables
    images = images.assign(path="/somewhere/" + images["image_id"])
    moved = images.assign(path="/elsewhere/" + images["image_id"])
    assert val_world(images, objects) == val_world(moved, objects)
    assert val_world(images.iloc[::-1], objects.iloc[::-1]) == val_world(images, objects)
    fewer = objects.iloc[1:]
    assert val_world(images, fewer) != val_world(images, objects)


def test_report_states_headroom_share_and_mde_from_study_json(mot_tables):
    """The headroom section prints the numbers study.json holds: the ideal arm's Δ, the MDE and
    MDE / headroom, each translator's share with its interval."""
    images, gt, preds = mot_tables
    study = StudyParams(translators=["none", "fda"], seeds=[0, 1, 2], oracle=False, ideal=True,
                        bootstrap=200)
    cells = grid(study, raw_params())
    keep_share = {"none": 0.6, "fda": 0.75, "ideal": 0.95}  # ideal finds the most boxes
    rng = np.random.default_rng(1)
    predictions = [preds[rng.random(len(preds)) < keep_share[c.arm]].reset_index(drop=True)
                   for c in cells]
    samples = bootstrap_buckets(images, gt, predictions, EvalConfig(), n_boot=200,
                                progress=False)
    labels = [RunLabel(c.arm, c.seed) for c in cells]
    arms = ["none", "fda", "ideal"]
    summary = as_json(summarize(labels, samples, arms, study.ci, ideal="ideal"))
    record = {"grid": asdict(study), "arms": arms, "metrics": summary, "experiments": [],
              "run": {"wall_seconds": None, "experiments_run": 0, "reused": 0}}
    report = render_report(record)
    assert "## Headroom, share closed and what the study can detect (mAP50)" in report
    entry = summary["map50"]["all"]
    headroom, share, power = entry["headroom"], entry["share"]["fda"], entry["power"]
    assert headroom == entry["delta"]["ideal"] and headroom["verdict"] == "better"
    row = next(line for line in report.splitlines()
               if line.startswith("| all |") and "MDE" not in line and "%" in line)
    assert (f"{headroom['value']:+.3f} [{headroom['lo']:+.3f}, {headroom['hi']:+.3f}]"
            in row)
    assert f"| {power['mde']:.3f} | {power['mde'] / headroom['value']:.2f} |" in row
    assert f"{share['value']:+.0%} [{share['lo']:+.0%}, {share['hi']:+.0%}]" in row
    assert 0 < share["value"] < 1 and power["n_seeds"] == 3 and power["power"] == 0.8
    assert "ideal (perfect translator)" in report


def test_a_running_task_means_a_worker_is_up_whatever_dvc_counts():
    assert worker_up({"70dd240": "Running", "77f23ea": "Queued"}, 0)  # DVC said 0 active
    assert worker_up({"77f23ea": "Queued"}, 1)
    assert not worker_up({"77f23ea": "Queued", "e74bf35": "Success"}, 0)
    assert not worker_up({}, 0)


def test_queue_workers_get_the_thread_counts_the_study_was_launched_with():
    launched = {"PATH": "/bin", "MKL_NUM_THREADS": "2"}
    now = {"PATH": "/bin", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "X": "y"}
    assert worker_env(now, launched) == {"PATH": "/bin", "MKL_NUM_THREADS": "2", "X": "y"}
    assert worker_env(now, None) == now  # no /proc: nothing to restore from


def test_the_launch_environment_is_read_past_what_imports_set(tmp_path):
    """A process started without OMP_NUM_THREADS that imports ultralytics (which sets it to 1)
    still hands its dvc calls none."""
    code = ("import json, os; import ultralytics; from pipeline.study_grid import launch_environ, "
            "worker_env; print(json.dumps([os.environ.get('OMP_NUM_THREADS'), "
            "worker_env(dict(os.environ), launch_environ()).get('OMP_NUM_THREADS')]))")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS",)}
    env.update(PYTHONPATH=str(REPO), YOLO_CONFIG_DIR=str(tmp_path / ".yolo"), YOLO_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out.splitlines()[-1]) == ["1", None]
