"""`python -m pipeline.check` and `--plan` on a real-layout tree built from the fixtures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from common.config import read_yaml_file
from pipeline.check import check_real_data, main
from pipeline.params import load_params, params_from_raw, with_overrides
from pipeline.plan import plan
from pipeline.preset import read_preset
from tests.real_tree import (
    BDD_TRAIN_FRAMES,
    BDD_VAL_FRAMES,
    KITTI_FRAMES,
    VKITTI2_FRAMES,
    build_real_tree,
    params_for_tree,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("real")
    build_real_tree(root / "data")
    params_for_tree(REPO, root / "data", root / "params.yaml")
    return root


def copy_tree(tree: Path, tmp_path: Path) -> Path:
    shutil.copytree(tree / "data", tmp_path / "data")
    params_for_tree(REPO, tmp_path / "data", tmp_path / "params.yaml")
    return tmp_path


def test_counts_are_what_the_fixture_tree_holds(tree: Path, capsys) -> None:
    check = check_real_data(load_params(tree / "params.yaml"))
    assert check.ok
    frames = {name: d.frames for name, d in check.datasets.items()}
    assert frames == {"kitti": KITTI_FRAMES, "vkitti2": VKITTI2_FRAMES,
                      "bdd100k train": BDD_TRAIN_FRAMES, "bdd100k val": BDD_VAL_FRAMES}
    assert main(["--config", str(tree / "params.yaml")]) == 0
    out = capsys.readouterr().out
    assert "  2 frames, 2 label file(s) read, 2 boxes (car 1, truck 1), 4 ignore regions" in out
    assert ("  on disk: 1 scene(s) (Scene01); variations clone, fog, overcast, rain; cameras "
            "Camera_0") in out
    assert ("  202 frames, 1 label file(s) read, 2659 boxes (car 2594, truck 65), 132 ignore "
            "regions; weather none 202") in out
    assert "weather overcast 1" in out
    assert out.rstrip().endswith("ok: every dataset reads")


def test_a_missing_label_2_is_named(tree: Path, tmp_path: Path, capsys) -> None:
    root = copy_tree(tree, tmp_path)
    shutil.rmtree(root / "data" / "kitti" / "training" / "label_2")
    assert main(["--config", str(root / "params.yaml")]) == 1
    out = capsys.readouterr().out
    assert (f"  PROBLEM: {root / 'data' / 'kitti'}: no training/label_2 directory (KITTI labels "
            "missing)") in out
    assert "a run would read: kitti 0 frames, vkitti2 8 frames" in out
    assert out.rstrip().endswith("1 problem(s): the run would fail or read the wrong frames")


def test_a_train_labels_file_given_as_val_is_detected(tree: Path, tmp_path: Path,
                                                      capsys) -> None:
    root = copy_tree(tree, tmp_path)
    labels = root / "data" / "bdd100k" / "labels" / "det_20"
    shutil.copy(labels / "det_train.json", labels / "det_val.json")  # the wrong download
    assert main(["--config", str(root / "params.yaml")]) == 1
    out = capsys.readouterr().out
    assert (f"  PROBLEM: {labels / 'det_val.json'} is a train labels file: 202 of its 202 frames "
            "are in images/100k/train, not val; set data.real.bdd100k_labels_val to the val "
            "file") in out
    assert "missing_image 202" in out


def test_every_missing_vkitti2_part_is_listed(tree: Path, tmp_path: Path, capsys) -> None:
    root = copy_tree(tree, tmp_path)
    scene = root / "data" / "vkitti2" / "Scene01"
    shutil.rmtree(scene / "rain")
    (scene / "fog" / "bbox.txt").unlink()
    assert main(["--config", str(root / "params.yaml")]) == 1
    out = capsys.readouterr().out
    assert "  PROBLEM: Scene01/fog: no bbox.txt and info.txt (the textgt archive;" in out
    assert "  PROBLEM: Scene01/rain: no such variation directory" in out


def test_bad_params_are_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "params.yaml").write_text("data: {source: nowhere}\n")
    assert main(["--config", str(tmp_path / "params.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: data.source:") and err.count("\n") == 1


def test_plan_frames_for_the_original_study(tree: Path) -> None:
    preset = read_preset(REPO / "presets" / "original_study.yaml", tree / "params.yaml")
    params = params_from_raw(with_overrides(read_yaml_file(tree / "params.yaml"), preset))
    rows = {row.stage: row for row in plan(params, check_real_data(params))}
    assert rows["ingest"].frames == ("KITTI 2, vKITTI2 8 (clone 2, fog 2, overcast 2, rain 2), "
                                     "BDD100K train 202, val 1")
    # KITTI: 1 held out, 1 left; 8 sim frames (clone + 3 weathers x 2), 1/7 real: 1 KITTI frame
    assert rows["build_dataset"].frames == "train 9, val 1"
    assert rows["translate@fog"].frames == "2 clone frames translated"
    assert rows["train_detector"].frames == "9 + 1 val, x 300 epochs"
    # 52 V100-hours for 300 x 10,419.7 image-steps at 1280 px; here 300 x (9 + 1/3)
    assert rows["train_detector"].gpu_hours == pytest.approx(52 * 9.3333 / 10_419.67, rel=1e-3)
    assert rows["predict"].disk == 1 * 100 * 176


def test_plan_of_cyclegan_at_the_reference_sizes(tree: Path) -> None:
    preset = read_preset(REPO / "presets" / "original_study.yaml", tree / "params.yaml")
    raw = with_overrides(read_yaml_file(tree / "params.yaml"), {**preset, "translator": "cyclegan"})
    params = params_from_raw(raw)
    row = {r.stage: r for r in plan(params, check_real_data(params))}["translator_train@fog"]
    assert row.frames == "2 clone + 0 BDD100K foggy"
    # the reference ResNet generator (ngf 64, 9 blocks): 11,378,179 float32 parameters
    assert row.disk == 4 * 11_378_179
    # 200 epochs of max(2 clone, 0 target) frames at batch 1, at 60 V100-hours a 3.19 M
    assert row.gpu_hours == pytest.approx(60 * 200 * 2 / 3.19e6)
