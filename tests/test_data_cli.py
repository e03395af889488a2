"""`python -m data ingest`: writes the manifest, prints a summary, exits 2 on bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from data import read_manifest
from data.__main__ import main

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]


def test_kitti_ingest(tmp_path: Path, capsys) -> None:
    code = main(["ingest", "--format", "kitti", "--root", str(FIXTURES / "kitti" / "detection"),
                 "--out", str(tmp_path / "m")])
    assert code == 0
    out = capsys.readouterr().out
    assert "kept 2 images and 6 objects (car: 1, truck: 1; 4 ignore regions)" in out
    assert "dropped by the class map: Cyclist 1, Pedestrian 1" in out
    assert len(read_manifest(tmp_path / "m").objects) == 6


def test_tracking_and_bdd_ingest(tmp_path: Path, capsys) -> None:
    assert main(["ingest", "--format", "kitti-tracking", "--root",
                 str(FIXTURES / "kitti" / "tracking"), "--out", str(tmp_path / "t")]) == 0
    assert "missing_image 445" in capsys.readouterr().out
    (tmp_path / "images" / "val").mkdir(parents=True)
    labels = FIXTURES / "bdd100k" / "legacy_unitest_val_bdd.json"
    assert main(["ingest", "--format", "bdd100k", "--root", str(tmp_path / "images"),
                 "--labels", str(labels), "--out", str(tmp_path / "b"), "--allow-empty"]) == 0
    assert "kept 0 images" in capsys.readouterr().out
    assert len(read_manifest(tmp_path / "b").images) == 0


def test_keeping_no_image_is_an_error_unless_allowed(tmp_path: Path) -> None:
    """The reporter's case: the 202 labelled frames of the MOT sample, an image directory that
    holds none of them."""
    (tmp_path / "images" / "val").mkdir(parents=True)
    labels = FIXTURES / "bdd100k" / "scalabel_mot_sample" / "track_sample_anns.json"
    command = [sys.executable, "-m", "data", "ingest", "--format", "bdd100k", "--root",
               str(tmp_path / "images"), "--labels", str(labels), "--out", str(tmp_path / "m")]
    run = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr.strip().splitlines() == [
        "error: bdd100k: kept 0 images, 202 skipped (missing_image 202, e.g. "
        f"b1c66a42-6f7d68ca-0000001.jpg not in {tmp_path / 'images' / 'val'}); check --root, "
        "or pass --allow-empty to write an empty manifest"]
    assert not (tmp_path / "m").exists()
    run = subprocess.run([*command, "--allow-empty"], capture_output=True, text=True, cwd=REPO)
    assert (run.returncode, run.stderr) == (0, "")
    assert run.stdout.startswith("bdd100k: read 1 label file(s); kept 0 images and 0 objects")
    assert "skipped 202 (missing_image 202)" in run.stdout
    assert read_manifest(tmp_path / "m").report["skipped"]["missing_image"]["count"] == 202


def test_a_tree_without_frames_is_an_error_unless_allowed(tmp_path: Path, capsys) -> None:
    for name in ("image_2", "label_2"):
        (tmp_path / "kitti" / "training" / name).mkdir(parents=True)
    args = ["ingest", "--format", "kitti", "--root", str(tmp_path / "kitti"), "--out",
            str(tmp_path / "m")]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        "error: kitti: kept 0 images (0 label file(s) read, no frame in them); check the "
        "dataset paths, or pass --allow-empty to write an empty manifest\n")
    assert main([*args, "--allow-empty"]) == 0
    assert "kitti: read 0 label file(s); kept 0 images" in capsys.readouterr().out


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"frames": 3}')
    (tmp_path / "val").mkdir()
    run = subprocess.run([sys.executable, "-m", "data", "ingest", "--format", "bdd100k",
                          "--root", str(tmp_path), "--labels", str(bad), "--out",
                          str(tmp_path / "out")], capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip().startswith("error: ") and str(bad) in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
