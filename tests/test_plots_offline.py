"""The `dvc plots` page draws every declared chart with no network (issue 19).

A real DVC repository holding this project's dvc.yaml, .dvc/config and plots/offline.html, with
every declared plot file written the way the graph writes it: the evaluation outputs by
run_evaluation on the real BDD100K fixture, the detector curves by DVCLive, the translation grid
as a PNG. Then real `dvc plots show` / `dvc plots diff`, and headless Chromium with the network
cut off counts the charts Vega drew.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from browser import (
    CHROMIUM,
    NO_CHROMIUM,
    REMOTE_LOAD,
    chart_errors,
    drawn_charts,
    embed_calls,
    has_data_marks,
    render_offline,
)

from evaluation import EvalConfig
from evaluation.run import run_evaluation

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)


def dvc(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def write_detector_curves(root: Path, epochs: int) -> None:
    """What detection/train.py logs: DVCLive metrics per epoch (the step is the epoch)."""
    from dvclive import Live

    live = Live(dir=str(root / "outputs/detector/dvclive"), save_dvc_exp=False, dvcyaml=None,
                report=None)
    for epoch in range(epochs):
        live.log_metric("train/box_loss", 2.0 / (epoch + 1))
        live.log_metric("metrics/mAP50(B)", 0.1 * epoch)
        live.next_step()
    live.end()


def write_eval(root: Path, tables: tuple, keep_every: int = 1) -> None:
    images, gt, predictions = tables
    run_evaluation(images, gt, predictions.iloc[::keep_every].reset_index(drop=True),
                   EvalConfig(), root / "outputs/eval", held_out={"map50": 0.5})


@pytest.fixture(scope="module")
def plots_repo(tmp_path_factory, mot_tables) -> Path:
    """A git + DVC repository with this project's plot declarations and every plot file."""
    root = tmp_path_factory.mktemp("plots") / "repo"
    root.mkdir()
    for name in ("dvc.yaml", "params.yaml", "plots/offline.html"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, root / name)
    dvc(root, "git", "init", "-q")
    dvc(root, "dvc", "init", "-q")
    shutil.copy2(REPO / ".dvc/config", root / ".dvc/config")
    write_detector_curves(root, epochs=4)
    write_eval(root, mot_tables)
    grid = np.full((40, 120, 3), 90, np.uint8)
    grid[:, 60:] = 200
    (root / "outputs/plots").mkdir(parents=True)
    assert cv2.imwrite(str(root / "outputs/plots/translation_grid.png"), grid)
    dvc(root, "git", "add", "-A")
    dvc(root, "git", "commit", "-qm", "all plot files")
    return root


def declared_vega_charts(root: Path) -> int:
    """Charts dvc.yaml declares: one per DVCLive curve file, one per other non-image entry."""
    count = 0
    for entry in yaml.safe_load((root / "dvc.yaml").read_text())["plots"]:
        name = entry if isinstance(entry, str) else next(iter(entry))
        if name.endswith(".png"):
            continue
        path = root / name
        count += len(list(path.rglob("*.tsv"))) if path.is_dir() else 1
    return count


def check_page(page: Path, profile: Path, expected_charts: int) -> list[str]:
    html = page.read_text(encoding="utf-8")
    assert "cdn.jsdelivr" not in html and not REMOTE_LOAD.search(html)
    assert embed_calls(html) == expected_charts
    dom = render_offline(page, profile)
    assert chart_errors(dom) == []
    charts = drawn_charts(dom)
    assert len(charts) == expected_charts
    assert all(has_data_marks(svg) for svg in charts)
    return charts


def test_template_carries_the_pinned_libraries():
    """plots/offline.html holds each pinned bundle whole (sha256 recorded next to it), is the
    template .dvc/config names, and loads nothing from the network."""
    sys.path.insert(0, str(REPO / "plots"))
    try:
        from vendor import PINNED, TEMPLATE
    finally:
        sys.path.pop(0)
    page = TEMPLATE.read_text(encoding="utf-8")
    scripts = re.findall(r"<!-- (\S+)@(\S+) (\S+) sha256=([0-9a-f]{64}) \(BSD-3-Clause\) -->\n"
                         r"    <script>(.*?)</script>", page, re.DOTALL)
    assert [(p, v) for p, v, *_ in scripts] == [(p, v) for p, v, _, _ in PINNED]
    for _, _, _, digest, source in scripts:
        assert hashlib.sha256(source.encode("utf-8")).hexdigest() == digest
    assert "{plot_divs}" in page and "{scripts}" not in page and not REMOTE_LOAD.search(page)
    assert "html_template = ../plots/offline.html" in (REPO / ".dvc/config").read_text()


@needs_chromium
def test_plots_show_draws_every_declared_chart_offline(plots_repo, tmp_path):
    shown = dvc(plots_repo, "dvc", "plots", "show", "-o", "page")
    assert "failed to load" not in shown.stdout + shown.stderr
    expected = declared_vega_charts(plots_repo)
    assert expected == 2 + 4  # the detector's two DVCLive curves + the four evaluation charts
    charts = check_page(plots_repo / "page/index.html", tmp_path / "profile", expected)
    # the bar chart has a bar per bucket of buckets.csv (occlusion, weather, timeofday)
    bars = [svg for svg in charts if "mark-rect role-mark" in svg]
    assert len(bars) == 1
    n_buckets = len((plots_repo / "outputs/eval/buckets.csv").read_text().splitlines()) - 1
    assert len(re.findall(r'role="graphics-symbol"[^>]*aria-roledescription="bar"',
                          bars[0])) == n_buckets
    assert (plots_repo / "page/static").is_dir()  # the translation grid, copied next to it
    assert "translation_grid.png" in (plots_repo / "page/index.html").read_text()


@needs_chromium
def test_plots_diff_overlays_two_runs_offline(plots_repo, mot_tables, tmp_path):
    """A second run (every other prediction kept) against the committed one: each chart holds
    both revisions' data, and every chart still draws offline."""
    write_eval(plots_repo, mot_tables, keep_every=2)
    try:
        diffed = dvc(plots_repo, "dvc", "plots", "diff", "HEAD", "-o", "diff")
        assert "failed to load" not in diffed.stdout + diffed.stderr
        page = plots_repo / "diff/index.html"
        check_page(page, tmp_path / "profile", declared_vega_charts(plots_repo))
        specs = [json.loads(s) for s in re.findall(r"var spec = (\{.*?\});\n", page.read_text())]
        pr = [s for s in specs if s.get("title", {}).get("text", "").startswith(
            "PR curve per occlusion bucket")]
        assert len(pr) == 1
        revs = {row["rev"] for row in pr[0]["data"]["values"]}
        assert revs == {"HEAD", "workspace"}
    finally:
        dvc(plots_repo, "git", "checkout", "--", "outputs")


@needs_chromium
def test_dvc_default_page_draws_nothing_offline(plots_repo, tmp_path):
    """The check above can fail: DVC's own page (Vega from the CDN) draws no chart offline."""
    from dvc_render.html import PAGE_HTML

    default = tmp_path / "default.html"
    default.write_text(PAGE_HTML)
    dvc(plots_repo, "dvc", "plots", "show", "-o", str(tmp_path / "page"),
        "--html-template", str(default))
    html = (tmp_path / "page/index.html").read_text()
    assert "cdn.jsdelivr" in html and embed_calls(html) == declared_vega_charts(plots_repo)
    assert drawn_charts(render_offline(tmp_path / "page/index.html", tmp_path / "profile")) == []
