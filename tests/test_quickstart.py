"""The README's quickstart, as written there, on a real-layout tree built from the fixtures.

The commands are read from the fenced block after `<!-- quickstart-commands -->` in README.md,
so editing them there changes what this runs. The ones that start a run (`--run`, `dvc`,
`make study`) are left out: days on real data.
"""

from __future__ import annotations

import runpy
import shlex
import shutil
import sys
import warnings
from pathlib import Path

import pytest

from tests.real_tree import build_real_tree, params_for_tree

REPO = Path(__file__).resolve().parents[1]
MARKER = "<!-- quickstart-commands -->"


def quickstart_commands() -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    assert MARKER in text, "README.md lost its quickstart block"
    block = text.split(MARKER, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            commands.append(words)
    return commands


def runnable(words: list[str]) -> bool:
    return "--run" not in words and words[0] == "python"


def run_module(words: list[str], capsys) -> tuple[int, str]:
    """`python -m MODULE ARGS` in this process (seconds, not a fresh interpreter each)."""
    assert words[:2] == ["python", "-m"], words
    argv = sys.argv
    sys.argv = [words[2], *words[3:]]
    code: int | str | None = 0
    try:
        with warnings.catch_warnings():  # runpy: the module is already imported (the tests)
            warnings.simplefilter("ignore", RuntimeWarning)
            runpy.run_module(words[2], run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        code = exit_.code
    finally:
        sys.argv = argv
    return (code or 0) if isinstance(code, int | None) else 1, capsys.readouterr().out


def test_the_block_holds_the_check_and_the_plan() -> None:
    commands = [" ".join(words) for words in quickstart_commands()]
    assert commands[:2] == ["python -m pipeline.check",
                            "python -m pipeline.preset presets/original_study.yaml --plan"]


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch) -> Path:
    """A directory laid out as the repository's root is for these commands: params.yaml (its
    data.real defaults moved under the fixture tree), presets/."""
    build_real_tree(tmp_path / "data")
    params_for_tree(REPO, tmp_path / "data", tmp_path / "params.yaml")
    shutil.copytree(REPO / "presets", tmp_path / "presets")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_quickstart_commands_run_as_written(workdir: Path, capsys) -> None:
    outputs = {}
    for words in filter(runnable, quickstart_commands()):
        code, out = run_module(words, capsys)
        assert code == 0, f"{' '.join(words)} exited {code}:\n{out}"
        outputs[words[2]] = out
    check, plan = outputs["pipeline.check"], outputs["pipeline.preset"]
    assert ("a run would read: kitti 2 frames, vkitti2 8 frames, bdd100k train 202 frames, "
            "bdd100k val 1 frames") in check
    assert "| build_dataset | train 9, val 1 |" in plan
    assert "| train_detector | 9 + 1 val, x 300 epochs |" in plan
    assert "estimate (scaled from CPU timings" in plan


def test_the_plan_stops_on_data_that_would_fail(workdir: Path, capsys) -> None:
    shutil.rmtree(workdir / "data" / "kitti" / "training" / "label_2")
    plan = next(w for w in quickstart_commands() if "--plan" in w)
    code, out = run_module(plan, capsys)
    assert code == 1
    assert "no training/label_2 directory" in out and "| stage |" not in out
