"""presets/original_study.yaml: checked against params.yaml, and applied exactly as DVC's
`dvc exp run -S` applies the arguments `python -m pipeline.preset` prints."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from common.config import read_yaml_file
from common.errors import UserError
from detection import configure_ultralytics
from detection.model_source import check_detector_model
from pipeline.common import run_stage
from pipeline.overrides import set_args
from pipeline.params import load_params
from pipeline.preset import main as preset_main
from pipeline.preset import override_args, read_preset

REPO = Path(__file__).resolve().parents[1]
PRESET = REPO / "presets" / "original_study.yaml"


def test_original_study_preset_is_the_study_recipe():
    preset = read_preset(PRESET, REPO / "params.yaml")
    assert {k: preset[k] for k in ("data.source", "dataset.kitti_share", "detector.model",
                                   "detector.imgsz", "detector.epochs")} == {
        "data.source": "real", "dataset.kitti_share": 0.142857,
        "detector.model": "pretrained/yolov5l6u.pt", "detector.imgsz": 1280,
        "detector.epochs": 300}


def test_printed_overrides_give_the_preset_params_through_dvc(tmp_path, monkeypatch):
    """DVC's own -S machinery (dvc.utils.hydra.apply_overrides) on a copy of params.yaml."""
    import torch
    from dvc.utils.hydra import apply_overrides

    configure_ultralytics()  # before ultralytics is imported (detection/env.py)
    from ultralytics.nn.tasks import DetectionModel

    # the preset's checkpoint, as train_detector checks it: a randomly initialised P6 model
    # (stride 64)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pretrained").mkdir()
    torch.save({"model": DetectionModel("yolov5n6.yaml", verbose=False)},
               tmp_path / "pretrained" / "yolov5l6u.pt")

    params_yaml = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params_yaml)
    args = override_args(read_preset(PRESET, REPO / "params.yaml"))
    assert args[:2] == ["-S", "++data.source='real'"]
    apply_overrides(params_yaml, args[1::2])
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")  # load_params checks weathers
    params = load_params(params_yaml)
    assert (params.data.source, params.dataset.kitti_share) == ("real", 0.142857)
    d = params.detector
    assert (d.model, d.imgsz, d.epochs, d.batch, d.optimizer, d.close_mosaic, d.workers,
            d.amp, d.cache) == ("pretrained/yolov5l6u.pt", 1280, 300, 16, "SGD", 0, 8, True, False)
    check_detector_model(d.model, d.imgsz)  # 1280 fits the P6 stride
    cyclegan = params.translators.configs["cyclegan"]
    assert (cyclegan.ngf, cyclegan.n_blocks, cyclegan.crop_size, cyclegan.n_epochs) == (
        64, 9, 256, 100)
    # nothing else in params.yaml changed
    raw, before = read_yaml_file(params_yaml), read_yaml_file(REPO / "params.yaml")
    assert raw["evaluation"] == before["evaluation"] and raw["classes"] == before["classes"]


def test_bad_preset_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("detector.imgsz: 0\n")
    with pytest.raises(UserError) as caught:
        read_preset(bad, REPO / "params.yaml")
    assert str(caught.value) == (f"{bad}: detector.imgsz: must be a whole number >= 1, got 0")
    done = subprocess.run([sys.executable, "-m", "pipeline.preset", str(bad)], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error in stage preset: {caught.value}"]


def test_the_shared_encoder_gives_back_each_value_through_dvc(tmp_path):
    """pipeline/overrides.py, which the study and the presets share: what DVC's -S applies is
    the value given, whatever quotes and backslashes a string holds."""
    from dvc.utils.hydra import apply_overrides

    values = {"a": "1", "b": "null", "c": r"C:\x" + "\\", "d": "it's", "e": "a\\'b",
              "f": ["x", 1, None], "g": 1e-4, "h": True, "i": 0.142857, "j": "0,1"}
    path = tmp_path / "params.yaml"
    path.write_text("{}\n")
    apply_overrides(path, set_args(values)[1::2])
    assert read_yaml_file(path) == values
    with pytest.raises(UserError, match=r"^detector.model: 'a b' has a space"):
        override_args({"detector.model": "a b"})


# --------------------------------------------------------------------------- the command line

BIN = Path(sys.executable).parent
# one stage that records the param the presets below set
SHOW_IMGSZ = """stages:
  show:
    cmd: python show.py
    deps: [show.py]
    params: [detector.imgsz]
    outs: [imgsz.txt]
"""
SHOW_PY = """import yaml
imgsz = yaml.safe_load(open("params.yaml"))["detector"]["imgsz"]
open("imgsz.txt", "w").write(str(imgsz))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": str(REPO), "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


@pytest.fixture
def dvc_repo(tmp_path: Path) -> Path:
    """A git + DVC repository with the project's params.yaml and one stage reading
    detector.imgsz (params.yaml's default: 320)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(REPO / "params.yaml", repo / "params.yaml")
    (repo / "dvc.yaml").write_text(SHOW_IMGSZ)
    (repo / "show.py").write_text(SHOW_PY)
    (repo / "good.yaml").write_text("detector.imgsz: 416\n")
    (repo / "bad.yaml").write_text("detector.imgsz: 0\n")
    for command in (["git", "init", "-q"], [str(BIN / "dvc"), "init", "-q"],
                    ["git", "add", "-A"], ["git", "commit", "-qm", "one stage"]):
        subprocess.run(command, cwd=repo, env=_env(), check=True, capture_output=True)
    return repo


def _bash(repo: Path, line: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", line], cwd=repo, env=_env(), capture_output=True,
                          text=True)


def test_bad_preset_in_dvc_exp_run_substitution_fails_loudly(dvc_repo):
    """The reporter's command: the expansion of a bad preset makes dvc refuse to run, where an
    empty one would have run params.yaml's defaults."""
    done = _bash(dvc_repo, f"{BIN / 'dvc'} exp run $({sys.executable} -m pipeline.preset "
                           "bad.yaml)")
    assert done.returncode == 254  # dvc's exit code for a bad command line
    assert done.stderr.splitlines()[0] == ("error in stage preset: bad.yaml: detector.imgsz: "
                                           "must be a whole number >= 1, got 0")
    assert done.stderr.strip().splitlines()[-1] == (
        "ERROR: unrecognized arguments: --invalid-preset")
    assert not (dvc_repo / "imgsz.txt").exists()  # nothing ran


def test_run_flag_runs_the_experiment_with_the_preset(dvc_repo):
    done = _bash(dvc_repo, f"{sys.executable} -m pipeline.preset good.yaml --run -- -n tiny")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0] == (
        "running: dvc exp run -S ++detector.imgsz=416 -n tiny")
    assert (dvc_repo / "imgsz.txt").read_text() == "416"
    assert "tiny" in _bash(dvc_repo, f"{BIN / 'dvc'} exp list --name-only").stdout.split()
    # a bad preset under --run: one line, exit 2, dvc never started
    done = _bash(dvc_repo, f"{sys.executable} -m pipeline.preset bad.yaml --run")
    assert (done.returncode, done.stdout) == (2, "--invalid-preset\n")
    assert done.stderr.strip().splitlines() == [
        "error in stage preset: bad.yaml: detector.imgsz: must be a whole number >= 1, got 0"]


def _preset_cli(monkeypatch, capsys, *argv: str) -> tuple[int, str, str]:
    """`python -m pipeline.preset ARGV` in this process: exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["pipeline/preset.py", *argv])
    with pytest.raises(SystemExit) as exited:
        run_stage(preset_main)
        sys.exit(0)
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def test_help_and_bad_flags(monkeypatch, capsys):
    code, out, err = _preset_cli(monkeypatch, capsys, "--help")
    assert (code, err) == (0, "")
    assert out.startswith("usage: python -m pipeline.preset [-h] [--run] [--plan] preset\n")
    assert "python -m pipeline.preset presets/original_study.yaml --run" in out
    code, out, err = _preset_cli(monkeypatch, capsys)
    assert (code, out) == (2, "--invalid-preset\n")
    assert err.strip().splitlines()[-1] == (
        "python -m pipeline.preset: error: the following arguments are required: preset")
    code, out, err = _preset_cli(monkeypatch, capsys, str(PRESET), "--", "-n", "x")
    assert (code, out) == (2, "--invalid-preset\n")
    assert err.strip().splitlines() == [
        "error in stage preset: arguments after -- (-n x) are for dvc exp run: add --run"]
