"""Hostile prediction / ground-truth JSON for the evaluator, and translator model directories
whose config.json points outside them (issue 16). Exact error text and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data import BadInputError
from evaluation import EvalInputError, load_predictions
from evaluation.__main__ import main as cli
from translators.fda import FourierDomainAdaptation
from translators.io import model_files, write_rgb

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LEGACY = FIXTURES / "bdd100k" / "legacy_unitest_val_bdd.json"
DEEP = "[" * 100_000 + "]" * 100_000
NESTED = "nested too deeply for a labels or predictions file"


def prediction(x1: str = "10", score: str = "0.9") -> str:
    return ('[{"name": "a.jpg", "labels": [{"category": "car", "score": ' + score
            + ', "box2d": {"x1": ' + x1 + ', "y1": 1, "x2": 50, "y2": 40}}]}]')


@pytest.mark.parametrize(("text", "error"), [
    (prediction(x1="9" * 400), "frame 'a.jpg' label #0: 'x1' is <integer of 400 digits>, "
                               "not a number"),
    (prediction(score="9" * 5000), "frame 'a.jpg' label #0: 'score' is <integer of 5000 digits>, "
                                   "not a number"),
    (DEEP, f"invalid JSON at line 1: {NESTED}"),
    ('{"annotations": ' + DEEP + "}", f"invalid JSON at line 1: {NESTED}"),
    ('[{"image_id": "a.jpg", "category": "car", "score": 1, "bbox": [1, 2, 3, '
     + "4" * 400 + "]}]", "result #0: 'bbox' must be [x, y, w, h] numbers"),
    (prediction() + " []", "invalid JSON at line 1: text after the JSON value"),
    ('{"images": [{"id": ' + "1" * 400 + ', "file_name": "a.jpg"}], "annotations": []}',
     "'images' #0: needs an integer or string 'id' and a non-empty string 'file_name', got "
     "{'id': <integer of 400 digits>, 'file_name': 'a.jpg'}"),
])
def test_prediction_decoder_limits_are_one_error(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "pred.json"
    path.write_text(text)
    with pytest.raises(EvalInputError) as raised:
        load_predictions(path)
    assert str(raised.value) == f"{path}: {error}"


def test_prediction_encodings(tmp_path: Path) -> None:
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + prediction().encode())
    table, _ = load_predictions(bom)
    assert table[["x1", "score"]].values.tolist() == [[10.0, 0.9]]
    latin1 = tmp_path / "latin1.json"
    text = prediction().replace("a.jpg", "é.jpg")
    latin1.write_bytes(text.encode("latin-1"))
    with pytest.raises(EvalInputError) as raised:
        load_predictions(latin1)
    assert str(raised.value) == (f"{latin1}: not UTF-8 (byte 0xe9 at offset {text.index('é')}); "
                                 "save it as UTF-8")


@pytest.mark.parametrize("which", ["gt", "pred"])
def test_cli_deep_or_latin1_json_exits_2_with_one_line(tmp_path: Path, capsys, which: str
                                                       ) -> None:
    good = tmp_path / "good.json"
    good.write_text(prediction())
    for name, payload in (("deep.json", DEEP.encode()), ("latin1.json", b'[{"name": "\xe9"}]')):
        bad = tmp_path / name
        bad.write_bytes(payload)
        gt, pred = (bad, good) if which == "gt" else (LEGACY, bad)
        assert cli(["--gt", str(gt), "--pred", str(pred), "--out", str(tmp_path / "m.json")]) == 2
        err = capsys.readouterr().err
        expected = NESTED if name == "deep.json" else "not UTF-8 (byte 0xe9 at offset 11)"
        assert err == f"evaluation: error: {bad}: " + (
            f"invalid JSON at line 1: {expected}\n" if name == "deep.json" else
            f"{expected}; save it as UTF-8\n")
        assert not (tmp_path / "m.json").exists()


def test_gt_huge_integers_are_counted_skips(tmp_path: Path) -> None:
    from data.bdd100k import frames_to_tables, load_frames

    gt = tmp_path / "gt.json"
    gt.write_text('[{"name": "a.jpg", "labels": [{"category": "car", "box2d": {"x1": '
                  + "9" * 400 + ', "y1": 1, "x2": 5, "y2": 5}}]}]')
    tables = frames_to_tables(load_frames(gt), {"car": "car"}, split="val", source=str(gt))
    assert tables.report["skipped"]["bad_box"]["count"] == 1
    assert len(tables.images) == 1 and len(tables.objects) == 0


# ------------------------------------------------------------------ translator model directories


@pytest.fixture
def fda_dir(tmp_path: Path) -> Path:
    import numpy as np

    out = tmp_path / "model"
    write_rgb(out / "reference_000.png", np.full((8, 8, 3), 100, np.uint8))
    write_rgb(tmp_path / "outside.png", np.full((8, 8, 3), 200, np.uint8))
    return out


@pytest.mark.parametrize("name", ["../outside.png", "{tmp}/outside.png", "link.png"])
def test_config_json_may_not_name_a_file_outside_the_model_dir(fda_dir: Path, name: str) -> None:
    tmp = fda_dir.parent
    (fda_dir / "link.png").symlink_to(tmp / "outside.png")
    name = name.format(tmp=tmp)
    config = {"translator": "fda", "config": {"beta": 0.01, "n_references": 1},
              "references": [name]}
    (fda_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(BadInputError) as raised:
        FourierDomainAdaptation().load(fda_dir, "cpu")
    assert str(raised.value) == (
        f"{fda_dir / 'config.json'}: references entry {name!r}: {fda_dir / name} resolves to "
        f"{tmp / 'outside.png'}, outside the root {fda_dir} (the model directory)")
    config["references"] = ["reference_000.png"]
    (fda_dir / "config.json").write_text(json.dumps(config))
    FourierDomainAdaptation().load(fda_dir, "cpu")  # the same dir with an inside name loads


def test_nst_styles_outside_the_model_dir(fda_dir: Path) -> None:
    from translators.nst import NeuralStyleTransfer

    config = {"translator": "nst", "config": {"weights": "random"}, "styles": ["/etc/hostname"]}
    (fda_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(BadInputError) as raised:
        NeuralStyleTransfer().load(fda_dir, "cpu")
    assert str(raised.value).startswith(
        f"{fda_dir / 'config.json'}: styles entry '/etc/hostname': /etc/hostname resolves to ")
    assert str(raised.value).endswith(f"outside the root {fda_dir} (the model directory)")


@pytest.mark.parametrize(("names", "error"), [
    (None, "'styles' must be a list of file names"),
    ("style.png", "'styles' must be a list of file names"),
    ([""], "'styles' must be a list of file names"),
])
def test_model_files_shape(tmp_path: Path, names: object, error: str) -> None:
    with pytest.raises(BadInputError) as raised:
        model_files(tmp_path, names, "styles")
    assert str(raised.value) == f"{tmp_path / 'config.json'}: {error}"


def test_broken_config_json_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_bytes(b"\xff{")
    with pytest.raises(BadInputError, match="config.json: not a translator config.json"):
        FourierDomainAdaptation().load(tmp_path, "cpu")
