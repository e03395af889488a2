"""The whole DVC graph, for real, on a tiny sample world in a temporary copy of the repository.

One test walks through what a new user does: `dvc repro`, a no-op second `dvc repro`, a forced
re-run that must reproduce metrics.json byte for byte, translator experiments that must not re-run
`ingest` (one on another training seed, scored on the same images), the in-domain oracle
experiment, `dvc exp show` / `dvc metrics diff`, and `dvc plots show` / `dvc plots diff`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from browser import CHROMIUM, chart_errors, drawn_charts, embed_calls, render_offline
from tiny_repo import run


def ingest_lock(repo: Path) -> dict:
    return yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["ingest"]


@pytest.mark.slow
def test_dvc_graph_end_to_end(repo: Path):
    out = run(repo, "dvc", "repro")
    for stage in ("ingest", "translator_train@fog", "translate@overcast", "build_dataset",
                  "pretrain_detector", "train_detector", "gap_reference", "gap", "predict",
                  "evaluate"):
        assert f"Running stage '{stage}'" in out
    assert "WARNING" not in out, out  # e.g. an empty persistent out: a user reads it as trouble

    metrics = json.loads((repo / "outputs/eval/metrics.json").read_text())
    assert set(metrics) >= {"map50", "map50_95", "per_class", "occlusion", "weather", "timeofday"}
    assert set(metrics["occlusion"]) == {"le5", "le10", "all", "0-5", "6-10", "11+"}
    assert set(metrics["weather"]) >= {"clear", "foggy", "rainy", "overcast"}
    n_val = 4 * 4
    assert metrics["occlusion"]["all"]["n_images"] == n_val
    disjoint = sum(metrics["occlusion"][b]["n_images"] for b in ("0-5", "6-10", "11+"))
    assert disjoint == n_val
    assert metrics["occlusion"]["le10"]["n_images"] == (
        metrics["occlusion"]["0-5"]["n_images"] + metrics["occlusion"]["6-10"]["n_images"])
    assert 0.0 <= metrics["map50"] <= 1.0 and math.isfinite(metrics["map50"])
    # how far it gets on held-out frames of its own domain: best.pt's recorded val mAP
    held_out = json.loads((repo / "outputs/predict/held_out.json").read_text())
    assert metrics["held_out"] == held_out and 0.0 <= held_out["map50"] <= 1.0
    assert "## How far it gets" in (repo / "outputs/eval/report.md").read_text()
    assert (repo / "outputs/plots/translation_grid.png").stat().st_size > 0
    assert (repo / "outputs/detector/model/best.pt").exists()
    # the DVCLive curves have one row per epoch
    curves = list((repo / "outputs/detector/dvclive/plots/metrics").rglob("*.tsv"))
    assert curves and all(len(c.read_text().splitlines()) == 1 + 2 for c in curves)

    # the domain gap, per weather, in the fixed seeded extractor's features (gap.reference_model)
    gap_bytes = (repo / "outputs/gap/gap.json").read_bytes()
    gap = json.loads(gap_bytes)
    assert gap["reference_model"] == "outputs/gap_reference/seeded-yolov5n.pt"
    assert gap["features"] == "YOLO SPPF (layer 9, 256 channels, global mean pool)"
    for weather in ("fog", "rain", "overcast"):
        entry = gap["weather"][weather]
        # 4 BDD val and 3 BDD train frames per weather; 8 clone frames, each translated
        assert entry["frames"] == {"target": 4, "source": 8, "translated": 8, "floor": 3}
        assert all(math.isfinite(entry["fd"][k]) and entry["fd"][k] >= 0 for k in entry["fd"])
        assert 0.0 < entry["edge_similarity"] <= 1.0

    # nothing changed -> nothing runs
    again = run(repo, "dvc", "repro")
    assert "Running stage" not in again
    assert "up to date" in run(repo, "dvc", "status")

    # a forced re-run reproduces the metrics byte for byte (CPU, same params): the stages from
    # the world to the metrics, each forced alone (the translators' own re-run:
    # tests/test_pipeline_faults.py; a whole `repro -f` would add minutes of stage start-ups)
    first = (repo / "outputs/eval/metrics.json").read_bytes()
    ingest_outs = ingest_lock(repo)["outs"]
    out = run(repo, "dvc", "repro", "-f", "-s", "ingest", "train_detector", "gap", "predict",
              "evaluate")
    assert all(f"Running stage '{stage}'" in out for stage in ("ingest", "evaluate")), out
    assert (repo / "outputs/eval/metrics.json").read_bytes() == first
    assert json.loads((repo / "outputs/gap/gap.json").read_text()) == gap  # byte for byte:
    assert (repo / "outputs/gap/gap.json").read_bytes() == gap_bytes
    # and ingest's output hashes the same: its reports name the final paths, not the temp dir's
    assert ingest_lock(repo)["outs"] == ingest_outs
    report = (repo / "outputs/ingest/kitti/report.json").read_text()
    assert ".ingest.tmp-" not in report and '"root": "outputs/ingest/sample_world/kitti"' in report

    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "cyclegan run")
    # the detector is a registered model artifact: a version tag (GTO's, as DVC Studio writes
    # it) makes `dvc artifacts get` find it by name
    run(repo, "git", "tag", "-a", "detector@v0.0.1", "-m", "Registering detector v0.0.1")
    run(repo, "dvc", "artifacts", "get", ".", "detector", "-o", str(repo.parent / "got.pt"))
    assert ((repo.parent / "got.pt").read_bytes()
            == (repo / "outputs/detector/model/best.pt").read_bytes())

    # experiments vary the translator without re-running ingest. nst and fda stop after
    # translate@fog, weatherfx (its own effect per weather) after translate: what follows is
    # the same code for every translator (the first run: cyclegan; the study's test runs fda
    # through the whole graph). `none` also takes another training seed: the world has its own
    # seed (data.sample.seed), so that run is scored on the same images.
    for name, sets, targets in (
            ("none", ["translator=none", "seed=1"], []),
            ("nst", ["translator=nst", "translators.nst.weights=random"], ["translate@fog"]),
            ("fda", ["translator=fda"], ["translate@fog"]),
            ("weatherfx", ["translator=weatherfx"], ["translate"])):
        args = ["dvc", "exp", "run", "-n", name]
        for assignment in sets:
            args += ["-S", assignment]
        out = run(repo, *args, *targets)
        assert "Running stage 'ingest'" not in out
        assert "Running stage 'translate@fog'" in out
        assert ("Running stage 'evaluate'" in out) == (not targets), out
        if name == "none":
            assert ingest_lock(repo)["outs"] == ingest_outs
            seeded = json.loads((repo / "outputs/eval/metrics.json").read_text())
            assert ({b: (v["n_images"], v["n_gt"]) for b, v in seeded["occlusion"].items()}
                    == {b: (v["n_images"], v["n_gt"]) for b, v in metrics["occlusion"].items()})
    # back to the committed params: every stage is restored from DVC's run-cache, none re-runs
    # (resume state is kept out of the declared outs, which would disable the run-cache)
    run(repo, "git", "checkout", "params.yaml")
    out = run(repo, "dvc", "repro")
    assert "Running stage" not in out and "is cached - skipping run" in out, out
    assert (repo / "outputs/eval/metrics.json").read_bytes() == first
    # the stages depend on the chosen translator's section only: another's knob re-runs nothing
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["translators"]["nst"]["steps"] = 7
    params["translators"]["fda"]["beta"] = 0.02
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run(repo, "dvc", "repro")
    assert "Running stage" not in out, out
    run(repo, "git", "checkout", "params.yaml")

    # the in-domain oracle: the BDD-like train frames replace KITTI + vKITTI2, val stays unseen
    # (translator none, seed 1: the translator stages come from the `none` run's cache)
    out = run(repo, "dvc", "exp", "run", "-n", "oracle", "-S", "dataset.train_on=bdd100k",
              "-S", "translator=none", "-S", "seed=1")
    assert "Running stage 'ingest'" not in out and "Running stage 'train_detector'" in out
    assert "Running stage 'translate@fog'" not in out, out
    summary = json.loads((repo / "outputs/dataset/summary.json").read_text())
    assert summary["train_images_per_part"] == {"bdd100k": 10}  # 3 per weather, 2 held out
    assert summary["val"]["images"] == 2
    oracle = json.loads((repo / "outputs/eval/metrics.json").read_text())
    assert oracle["occlusion"]["all"]["n_images"] == n_val  # evaluated on the same val frames
    assert "occlusion.le5.map50" in run(repo, "dvc", "metrics", "diff", "--all", "HEAD", "oracle")

    shown = run(repo, "dvc", "exp", "show", "--no-pager", "--csv")
    assert all(name in shown for name in ("none", "nst", "fda", "weatherfx", "oracle"))
    diff = run(repo, "dvc", "metrics", "diff", "--all", "none", "oracle")
    assert "occlusion.le5.map50" in diff and "occlusion.11+.map50" in diff
    # (the shares closed are null where the source is no farther than the floor, as with a
    # detector trained 2 epochs: DVC leaves nulls out)
    assert "weather.fog.fd.translated" in diff and "weather.fog.kid.translated" in diff

    html = run(repo, "dvc", "plots", "show", "-o", "plots_html")
    page = (repo / "plots_html" / "index.html").read_text()
    assert "translation_grid.png" in page and "recall" in page, html
    # the workspace holds a translator=none run, which leaves no CycleGAN curves (neither do
    # fda, weatherfx, nst): none are declared, so no declared plot is missing
    assert not (repo / "outputs/translators/fog/dvclive").exists()
    assert "failed to load" not in html
    # two experiments' curves overlaid, chart by chart
    diff = run(repo, "dvc", "plots", "diff", "oracle", "none", "-o", "plots_diff")
    assert "failed to load" not in diff
    if CHROMIUM:  # every chart draws offline (tests/test_plots_offline.py: the same, unskipped)
        for out in ("plots_html", "plots_diff"):
            html_text = (repo / out / "index.html").read_text()
            dom = render_offline(repo / out / "index.html", repo / ".chromium")
            assert chart_errors(dom) == []
            assert len(drawn_charts(dom)) == embed_calls(html_text) >= 6
