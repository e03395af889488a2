"""evaluation: the cases of issue 26 on the real BDD100K fixture. No silent wrong number: frame
names without extension, capitalised classes, partial predictions, frames and classes that match
nothing, bad flags and --out, in `python -m evaluation` and `compare`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from data.bdd100k import frames_to_tables, load_frames
from evaluation import EvalConfig, evaluate, load_predictions
from evaluation.__main__ import main as cli
from evaluation.coverage import frame_key, match_frames

REPO = Path(__file__).resolve().parent.parent
MOT = REPO / "tests" / "fixtures" / "bdd100k" / "scalabel_mot_sample"
GT = MOT / "track_sample_anns.json"
PRED = MOT / "bbox_predictions.json"
FIRST = "b1c66a42-6f7d68ca-0000001.jpg"  # the fixture's first frame


@pytest.fixture(scope="module")
def frames() -> list[dict]:
    return json.loads(PRED.read_text())


@pytest.fixture(scope="module")
def gt_tables():
    return frames_to_tables(load_frames(GT), {"car": "car", "truck": "truck"}, split="val",
                            source="gt")


@pytest.fixture(scope="module")
def map50(gt_tables) -> float:
    """The fixture's mAP50 with its own names (= pycocotools, tests/test_evaluation.py)."""
    table, _ = load_predictions(PRED)
    value = evaluate(gt_tables.images, gt_tables.objects, table, EvalConfig()).metrics["map50"]
    assert round(value, 4) == 0.7531  # the figure of the issue
    return value


def write(tmp_path: Path, frames: list[dict], name: str) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(frames))
    return path


def evaluate_cli(tmp_path: Path, pred: Path, *extra: str) -> dict:
    out = tmp_path / pred.stem
    assert cli(["--gt", str(GT), "--pred", str(pred), "--out", str(out), *extra]) == 0
    return json.loads((out / "metrics.json").read_text())


def report_of(tmp_path: Path, pred: Path) -> str:
    return (tmp_path / pred.stem / "report.md").read_text()


# ---------------------------------------------------------------- frames

def test_frame_rule():
    assert frame_key("./val/b1c6-0001.jpg") == "b1c6-0001" == frame_key("b1c6-0001")
    assert frame_key("a.b.png") == "a.b" and frame_key(".hidden") == ".hidden"
    assert match_frames(["a.jpg", "b.jpg"], ["a.jpg", "b", "./x/c.jpg"]) == {
        "a.jpg": "a.jpg", "b": "b.jpg"}
    # a key shared by two GT frames, or by two prediction frames, matches nothing
    assert match_frames(["a.jpg", "x/a.png"], ["a"]) == {}
    assert match_frames(["a.jpg"], ["a.png", "x/a.jpg"]) == {}
    assert match_frames(["a.jpg"], ["a.jpg", "a.png"]) == {"a.jpg": "a.jpg"}


@pytest.mark.parametrize("rename", [lambda n: n.rsplit(".", 1)[0], lambda n: f"./val/{n}",
                                    lambda n: f"images/{n.rsplit('.', 1)[0]}.png"])
def test_names_without_extension_or_with_a_directory_match(frames, map50, tmp_path, rename):
    """Several exporters drop the extension: the frames match by the rule, the mAP is the
    fixture's, and metrics.json and report.md say how they matched."""
    pred = write(tmp_path, [{**f, "name": rename(f["name"])} for f in frames], "renamed.json")
    metrics = evaluate_cli(tmp_path, pred)
    assert metrics["map50"] == map50
    coverage = metrics["coverage"]
    assert (coverage["matched_by_name"], coverage["matched_by_stem"]) == (0, 202)
    assert coverage["gt_frames_without_entry"] == 0
    assert "202 of the 202 prediction frames match a GT frame (0 by name, 202 by the name " \
           "without directory and extension); 0 match none (not scored)." in report_of(tmp_path,
                                                                                       pred)


def test_no_frame_in_common_is_an_error(frames, tmp_path, capsys):
    pred = write(tmp_path, [{**f, "name": f"cam2-{f['name']}"} for f in frames], "other.json")
    assert cli(["--gt", str(GT), "--pred", str(pred), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (
        f"evaluation: error: {pred}: none of its 202 frame(s) matches a GT frame (e.g. "
        f"'cam2-{FIRST}'; GT frames are named like '{FIRST}'); frames match by exact name, or "
        "by the name without directory and extension when that is unique on both sides\n")
    assert not (tmp_path / "o").exists()


def test_prediction_frames_not_in_gt_are_counted(frames, map50, tmp_path):
    extra = [{"name": "elsewhere.jpg", "labels": frames[0]["labels"][:3]},
             {"name": "empty.jpg", "labels": []}]
    pred = write(tmp_path, frames + extra, "extra.json")
    metrics = evaluate_cli(tmp_path, pred)
    assert metrics["map50"] == map50
    assert metrics["coverage"]["prediction_frames_not_in_gt"] == 2
    assert metrics["skipped"]["predictions"]["reasons"]["frame_not_in_gt"] == {
        "count": 2, "examples": [
            {"file": str(pred), "line": None, "detail": "frame 'elsewhere.jpg' (3 boxes): no GT "
                                                        "frame is named so or, uniquely, "
                                                        "'elsewhere'"},
            {"file": str(pred), "line": None, "detail": "frame 'empty.jpg' (0 boxes): no GT "
                                                        "frame is named so or, uniquely, "
                                                        "'empty'"}]}
    assert metrics["n_predictions_unmatched_frames"] == 3
    report = report_of(tmp_path, pred)
    assert "2 prediction frames match no GT frame (not scored)" in report
    assert "| predictions | frame_not_in_gt | 2 | frame 'elsewhere.jpg' (3 boxes)" in report


# ---------------------------------------------------------------- partial predictions

def test_gt_frames_without_an_entry_are_counted_apart_from_empty_frames(frames, gt_tables,
                                                                      tmp_path):
    """Every 4th frame missing from the file, or listed with no labels: the same mAP (a missing
    frame is scored as one without detections, as pycocotools does), told apart in the
    coverage; report.md never says "No input was skipped" alone for the first."""
    missing = write(tmp_path, [f for i, f in enumerate(frames) if i % 4], "missing.json")
    empty = write(tmp_path, [f if i % 4 else {**f, "labels": []}
                             for i, f in enumerate(frames)], "empty.json")
    table, _ = load_predictions(missing)
    expected = evaluate(gt_tables.images, gt_tables.objects, table,
                        EvalConfig()).metrics["map50"]
    first = evaluate_cli(tmp_path, missing)
    second = evaluate_cli(tmp_path, empty)
    assert first["map50"] == second["map50"] == expected and round(expected, 3) == 0.566
    absent = [f["name"] for i, f in enumerate(frames) if i % 4 == 0]
    assert (first["coverage"]["gt_frames_without_entry"],
            first["coverage"]["gt_frames_without_entry_examples"],
            first["coverage"]["gt_frames_without_detections"]) == (51, absent[:5], 51)
    assert (second["coverage"]["gt_frames_without_entry"],
            second["coverage"]["gt_frames_without_detections"]) == (0, 51)
    report = report_of(tmp_path, missing)
    assert f"**Coverage:** 51 of 202 GT frames have no entry in the predictions (e.g. " \
           f"{', '.join(absent[:5])}; scored as frames without detections)" in report
    assert "**51 of the 202 GT frames have no entry in the predictions**" in report
    assert "No input was skipped." not in report
    assert "Every one of the 202 GT frames has an entry in the predictions (51 without " \
           "detections)." in report_of(tmp_path, empty)


def test_stderr_names_the_missing_frames(frames, tmp_path, capsys):
    pred = write(tmp_path, frames[1:], "short.json")
    evaluate_cli(tmp_path, pred, "--categories", "car")
    err = capsys.readouterr().err
    assert f"evaluation: warning: {pred}: 1 of 202 GT frames have no entry in the predictions " \
           f"(e.g. {FIRST}; scored as frames without detections)\n" in err


# ---------------------------------------------------------------- classes

def capitalised(frames: list[dict], which: set[str]) -> list[dict]:
    return [{**f, "labels": [{**lab, "category": lab["category"].capitalize()
                              if lab["category"] in which else lab["category"]}
                             for lab in f["labels"]]} for f in frames]


def test_no_evaluated_class_predicted_is_an_error(frames, tmp_path, capsys):
    pred = write(tmp_path, capitalised(frames, {"car", "truck"}), "caps.json")
    assert cli(["--gt", str(GT), "--pred", str(pred), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (
        f"evaluation: error: {pred}: none of its predicted classes ('Car', 'Truck', 'bicycle', "
        "'bus', 'motorcycle', 'pedestrian', 'rider', 'train') is an evaluated class ('car', "
        "'truck'); 'Car' differs from 'car' only in case; 'Truck' differs from 'truck' only in "
        "case\n")


def test_a_near_miss_class_is_counted_and_named(frames, tmp_path):
    pred = write(tmp_path, capitalised(frames, {"truck"}), "truck.json")
    metrics = evaluate_cli(tmp_path, pred)
    assert metrics["per_class"]["truck"]["ap50"] == 0.0
    assert metrics["coverage"]["near_misses"] == {"Truck": "truck"}
    reason = metrics["skipped"]["predictions"]["reasons"]["class_not_evaluated"]
    assert reason["count"] == 1290 + 389
    assert reason["examples"][0]["detail"] == \
        "'Truck': 389 boxes, differs from the evaluated class 'truck' only in case"
    assert "Truck 389 (differs from 'truck' only in case)" in report_of(tmp_path, pred)


@pytest.mark.parametrize("command", [[], ["compare"]])
def test_categories_must_be_gt_classes(tmp_path, capsys, command):
    assert cli([*command, "--gt", str(GT), "--pred", str(PRED), "--out", str(tmp_path / "o"),
                "--categories", "car,trukc"]) == 2
    prog = " ".join(["evaluation", *command])
    assert capsys.readouterr().err == (
        f"{prog}: error: --categories: 'trukc' not a class of {GT} (its classes: bicycle, "
        "bus, car, motorcycle, pedestrian, rider, traffic light, traffic sign, train, truck)\n")
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- flags and --out

SHARED_FLAGS = [
    ("--iou", "50", "--iou: must be in (0, 1], got 50.0"),
    ("--occlusion-edges", "10,5", "--occlusion-edges: must be strictly increasing, got [10, 5]"),
    ("--max-dets", "0", "--max-dets: must be a whole number >= 1, got 0"),
    ("--occlusion-edges", "-1", "--occlusion-edges: -1 is not a whole number >= 0"),
]


@pytest.mark.parametrize(("command", "flag", "value", "error"), [
    *(([], *case) for case in SHARED_FLAGS),
    *((["compare"], *case) for case in SHARED_FLAGS),
    ([], "--report-score", "2", "--report-score: must be in [0, 1], got 2.0"),
    ([], "--report-small-height", "-3", "--report-small-height: must be in [0, inf], got -3.0"),
])
def test_bad_flags_are_one_line(tmp_path, capsys, command, flag, value, error):
    with pytest.raises(SystemExit) as raised:
        cli([*command, "--gt", str(GT), "--pred", str(PRED), "--out", str(tmp_path / "o"),
             flag, value])
    assert raised.value.code == 2
    prog = " ".join(["evaluation", *command])
    assert capsys.readouterr().err == f"{prog}: error: {error}\n"
    assert not (tmp_path / "o").exists()


def run_module(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evaluation", *args], capture_output=True,
                          text=True, cwd=cwd, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin"})


def test_out_is_a_directory_or_a_json_in_both_commands(tmp_path):
    """A trailing slash or a name without .json: a directory, everything inside it, nothing in
    the working directory. A .json: that file, the rest next to it. The same in `compare`."""
    base = ["--gt", str(GT), "--pred", str(PRED)]
    assert run_module(tmp_path, *base, "--out", "results/").returncode == 0
    assert run_module(tmp_path, *base, "--out", "plain").returncode == 0
    for name in ("results", "plain"):
        written = sorted(p.name for p in (tmp_path / name).iterdir())
        assert written == ["buckets.csv", "buckets.png", "metrics.json", "pr_class.csv",
                           "pr_class.png", "pr_occlusion.csv", "pr_occlusion.png",
                           "pr_score.csv", "pr_score.png", "report.md"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain", "results"]
    assert run_module(tmp_path, *base, "--out", "named/run.json").returncode == 0
    assert {"run.json", "report.md"} <= {p.name for p in (tmp_path / "named").iterdir()}
    compare = ["compare", *base, "--pred", str(PRED), "--bootstrap", "5", "--quiet"]
    assert run_module(tmp_path, *compare, "--out", "cmp/").returncode == 0
    assert sorted(p.name for p in (tmp_path / "cmp").iterdir()) == [
        "compare.json", "compare.md", "forest.png"]
    assert run_module(tmp_path, *compare, "--out", "c2/cmp.json").returncode == 0
    assert sorted(p.name for p in (tmp_path / "c2").iterdir()) == [
        "cmp.json", "compare.md", "forest.png"]
    (tmp_path / "taken").write_text("a file")
    for command in ([], ["compare"]):
        proc = run_module(tmp_path, *command, *base, "--out", "taken")
        assert proc.returncode == 2
        assert proc.stderr == (f"{' '.join(['evaluation', *command])}: error: --out taken: exists "
                               "and is not a directory; give a directory or a path ending in "
                               ".json\n")


# ---------------------------------------------------------------- compare

def compare(tmp_path: Path, *preds: Path) -> tuple[int, str]:
    argv = ["compare", "--gt", str(GT), "--bootstrap", "20", "--quiet",
            "--out", str(tmp_path / "cmp")]
    for pred in preds:
        argv += ["--pred", str(pred)]
    return cli(argv), str(tmp_path / "cmp")


def test_compare_refuses_runs_that_cover_different_frames(frames, tmp_path, capsys):
    short = write(tmp_path, [f for i, f in enumerate(frames) if i % 4], "short.json")
    code, out = compare(tmp_path, PRED, short)
    assert code == 2 and not Path(out).exists()
    assert capsys.readouterr().err.splitlines()[-1] == (
        "evaluation compare: error: runs 'bbox_predictions' and 'short' cover different GT "
        "frames (of 202, 'bbox_predictions' lists 202 of them (51 the other does not, e.g. "
        f"'{FIRST}'); 'short' lists 151 of them): a Δ between them would compare different "
        "frames; give every run the same frames")


def test_compare_refuses_a_class_spelt_differently(frames, tmp_path, capsys):
    truck = write(tmp_path, capitalised(frames, {"truck"}), "truck.json")
    code, _ = compare(tmp_path, PRED, truck)
    assert code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "evaluation compare: error: runs 'bbox_predictions' and 'truck' spell evaluated classes "
        "differently (classes that differ from an evaluated one only in case: "
        "{'bbox_predictions': {}, 'truck': {'Truck': 'truck'}}): a Δ would compare a class "
        "against nothing; fix the class names")


def test_compare_matches_frames_by_the_rule(frames, tmp_path):
    """The issue's "worse, -0.753": the same boxes under extension-less names are the same run."""
    bare = write(tmp_path, [{**f, "name": f["name"].rsplit(".", 1)[0]} for f in frames],
                 "bare.json")
    code, out = compare(tmp_path, PRED, bare)
    assert code == 0
    result = json.loads((Path(out) / "compare.json").read_text())
    assert result["buckets"]["all"]["delta_map50"]["bare"] == {
        "value": 0.0, "lo": 0.0, "hi": 0.0, "p_positive": 0.0}
    assert result["coverage"]["bare"]["matched_by_stem"] == 202
    assert ("- `bare`: 202 of the 202 GT frames listed; 202 matched by the name without "
            "directory and extension; 0 prediction frames not in the GT; classes not evaluated: "
            "bicycle, bus, motorcycle, pedestrian, rider, train.") in \
        (Path(out) / "compare.md").read_text()
