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
                 "--labels", str(labels), "--out", str(tmp_path / "b")]) == 0
    assert "kept 0 images" in capsys.readouterr().out


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
