"""detection/: real (tiny) ultralytics trainings on drawn rectangles, checked by value.

The dataset: coloured rectangles of two classes (car = red, truck = blue) on noisy grey
backgrounds, YOLO txt labels. Val images are non-square, so predicted boxes must be mapped
back through a non-uniform letterbox to land on the drawn rectangles.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pandas as pd
import pytest

import detection.callbacks as callbacks_module
import detection.train as train_module
from common.config import ParamError
from detection import (
    DetectorConfig,
    configure_ultralytics,
    predict,
    train_detector,
    write_scalabel,
)

configure_ultralytics()  # before anything imports ultralytics: see detection/env.py

REPO = Path(__file__).resolve().parents[1]
COLOURS_BGR = [(40, 40, 230), (230, 120, 30)]  # class 0 car (red), class 1 truck (blue)
NAMES = ["car", "truck"]
LIVE_METRICS = ["train/box_loss", "train/cls_loss", "train/dfl_loss", "val/mAP50",
                "val/mAP50-95", "val/precision", "val/recall"]


def draw_dataset(root: Path, n_train: int, n_val: int, size=(64, 64), val_size=(96, 54),
                 seed: int = 0) -> dict[str, list[tuple[int, int, int, int, int]]]:
    """Write images/, labels/ and data.yaml; returns name -> [(cls, x1, y1, x2, y2)]."""
    rng = np.random.default_rng(seed)
    boxes_by_image = {}
    for split, count, (w, h) in (("train", n_train, size), ("val", n_val, val_size)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image = rng.integers(90, 150, (h, w, 3)).astype(np.uint8)
            cls = int(rng.integers(0, 2))
            bw, bh = int(rng.integers(w // 3, w // 1.5)), int(rng.integers(h // 3, h // 1.5))
            x1, y1 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
            cv2.rectangle(image, (x1, y1), (x1 + bw - 1, y1 + bh - 1), COLOURS_BGR[cls], -1)
            name = f"{split}_{i:03d}"
            cv2.imwrite(str(root / "images" / split / f"{name}.png"), image)
            (root / "labels" / split / f"{name}.txt").write_text(
                f"{cls} {(x1 + bw / 2) / w:.6f} {(y1 + bh / 2) / h:.6f} {bw / w:.6f} {bh / h:.6f}\n"
            )
            boxes_by_image[name] = [(cls, x1, y1, x1 + bw, y1 + bh)]
    (root / "data.yaml").write_text(
        f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: car\n  1: truck\n"
    )
    return boxes_by_image


def iou(a, b) -> float:
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def val_images(root: Path, count: int) -> list[tuple[str, Path]]:
    return [(f"val_{i:03d}", root / "images" / "val" / f"val_{i:03d}.png") for i in range(count)]


def read_tsv(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter="\t"))


# SGD at lr 0.01, one step per batch, no mosaic: learns the rectangles in ~20 tiny epochs
QUICK = {"imgsz": 64, "batch": 4, "nbs": 4, "optimizer": "SGD", "lr0": 0.01, "mosaic": 0.0,
         "close_mosaic": 0}


@pytest.fixture
def no_network(monkeypatch):
    """Fails the test if anything tries DNS, a socket connection or runs curl/pip."""
    attempts = []

    def refuse(kind):
        def refused(*args, **kwargs):
            attempts.append((kind, args[:2]))
            raise OSError(f"{kind} attempted in an offline test")
        return refused

    monkeypatch.setattr(socket, "getaddrinfo", refuse("dns"))
    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(subprocess, "run", refuse("subprocess"))
    monkeypatch.setattr(subprocess, "check_output", refuse("subprocess"))
    yield attempts
    assert attempts == []


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("detector")
    boxes = draw_dataset(root / "data", n_train=32, n_val=8)
    cfg = DetectorConfig(epochs=20, **QUICK)
    run_dir = root / "run"
    best = train_detector(root / "data" / "data.yaml", run_dir, cfg, run_dir / "dvclive")
    return SimpleNamespace(root=root, data=root / "data", boxes=boxes, cfg=cfg, run_dir=run_dir,
                           best=best, live=run_dir / "dvclive")


# --- training ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_training_writes_best_and_one_dvclive_row_per_epoch(trained):
    assert trained.best == trained.run_dir / "weights" / "best.pt" and trained.best.is_file()
    for name in LIVE_METRICS:
        header, *rows = read_tsv(trained.live / "plots" / "metrics" / f"{name}.tsv")
        assert header == ["step", name.split("/")[1]]
        assert [int(step) for step, _ in rows] == list(range(trained.cfg.epochs))
        assert all(math.isfinite(float(value)) for _, value in rows)
    summary = json.loads((trained.live / "metrics.json").read_text())
    assert summary["step"] == trained.cfg.epochs - 1
    assert summary["val"]["mAP50"] > 0.3  # the rectangles were learned
    assert not (trained.data / "labels" / "train.cache").exists()  # dataset left untouched


@pytest.mark.slow
def test_held_out_metrics_are_those_of_the_kept_epoch(trained):
    """best.pt records the val metrics of its epoch: one of the logged rows, the best by
    ultralytics' fitness, and at least as good in mAP50:95 as the last epoch."""
    from detection import held_out_metrics

    held_out = held_out_metrics(trained.best)
    rows = {name: [float(v) for _, v in read_tsv(trained.live / "plots" / "metrics"
                                                  / f"{name}.tsv")[1:]]
            for name in ("val/mAP50", "val/mAP50-95")}
    epoch = rows["val/mAP50-95"].index(max(rows["val/mAP50-95"]))
    assert held_out["map50_95"] == pytest.approx(max(rows["val/mAP50-95"]), abs=1e-4)
    assert held_out["map50"] == pytest.approx(rows["val/mAP50"][epoch], abs=0.02)
    assert held_out["map50"] > 0.3


@pytest.mark.slow
def test_finished_run_is_returned_without_training(trained):
    before = trained.best.read_bytes()
    again = train_detector(trained.data / "data.yaml", trained.run_dir, trained.cfg, trained.live)
    assert again == trained.best and again.read_bytes() == before
    # prediction-only params do not invalidate the trained run
    looser = DetectorConfig(**{**vars(trained.cfg), "conf": 0.5, "max_det": 10})
    assert train_detector(trained.data / "data.yaml", trained.run_dir, looser,
                          trained.live).read_bytes() == before


@pytest.mark.slow
def test_resume_after_interruption_continues_from_saved_epoch(tmp_path, monkeypatch, no_network):
    draw_dataset(tmp_path / "data", n_train=8, n_val=4)
    # plots=True: ultralytics' plots need a font, which must not be downloaded
    cfg = DetectorConfig(epochs=3, plots=True, **{**QUICK, "batch": 8, "nbs": 8})
    run_dir, data_yaml = tmp_path / "run", tmp_path / "data" / "data.yaml"

    class Killed(Exception):
        pass

    log_epoch = callbacks_module._DVCLiveEpochLogger.on_fit_epoch_end

    def killed_after_first_epoch(self, trainer):
        log_epoch(self, trainer)
        if trainer.epoch == 0:
            raise Killed

    monkeypatch.setattr(callbacks_module._DVCLiveEpochLogger, "on_fit_epoch_end",
                        killed_after_first_epoch)
    with pytest.raises(Killed):
        train_detector(data_yaml, run_dir, cfg, run_dir / "dvclive")
    assert train_module._checkpoint_state(run_dir / "weights" / "last.pt", 3) == "unfinished"
    monkeypatch.setattr(callbacks_module._DVCLiveEpochLogger, "on_fit_epoch_end", log_epoch)

    start_epochs = []
    start = callbacks_module._DVCLiveEpochLogger.on_train_start

    def recording_start(self, trainer):
        start_epochs.append(trainer.start_epoch)
        start(self, trainer)

    monkeypatch.setattr(callbacks_module._DVCLiveEpochLogger, "on_train_start", recording_start)
    best = train_detector(data_yaml, run_dir, cfg, run_dir / "dvclive")
    assert start_epochs == [1] and best.is_file()
    assert train_module._checkpoint_state(run_dir / "weights" / "last.pt", 3) == "finished"
    assert sorted(callbacks_module.results_history(run_dir / "results.csv")) == [0, 1, 2]
    for name in LIVE_METRICS:
        _, *rows = read_tsv(run_dir / "dvclive" / "plots" / "metrics" / f"{name}.tsv")
        assert [int(step) for step, _ in rows] == [0, 1, 2]
    assert (run_dir / "confusion_matrix.png").is_file() and (run_dir / "train_batch0.jpg").is_file()


@pytest.mark.slow
def test_same_params_give_identical_weights_and_predictions(tmp_path, monkeypatch, no_network):
    from ultralytics.nn.tasks import torch_safe_load  # after conftest configured ultralytics

    cfg = DetectorConfig(epochs=2, **{**QUICK, "batch": 8, "nbs": 8})
    runs = []
    # a repo, then a second clone of it elsewhere, trained one after the other in this process:
    # nothing of the first training (RNG state, ultralytics' globals) or of the path leaks in
    for clone in ("repo", "elsewhere/repo"):
        root = tmp_path / clone
        root.mkdir(parents=True)
        monkeypatch.chdir(root)  # the graph runs its stages from the repo root
        draw_dataset(root / "data", n_train=8, n_val=4)
        run_dir = root / "run"
        best = train_detector(root / "data" / "data.yaml", run_dir, cfg, run_dir / "dvclive")
        checkpoint, _ = torch_safe_load(str(best))  # how ultralytics itself reads best.pt
        runs.append({
            "weights": best.read_bytes(),
            "predictions": predict(best, val_images(root / "data", 4), cfg),
            "curves": [tsv.read_bytes() for tsv in sorted((run_dir / "dvclive").rglob("*.tsv"))],
            "recorded": (checkpoint["git"], checkpoint["train_args"]["data"]),
        })
        shutil.rmtree(run_dir)
    assert runs[0]["recorded"] == (None, "data/data.yaml")  # no commit, no clone path
    assert runs[0]["weights"] == runs[1]["weights"]  # byte-identical
    pd.testing.assert_frame_equal(runs[0]["predictions"], runs[1]["predictions"],
                                  check_exact=True)
    assert runs[1]["curves"] == runs[0]["curves"] and len(runs[0]["curves"]) == 10


def test_changed_dataset_changes_the_fingerprint(tmp_path):
    draw_dataset(tmp_path, n_train=3, n_val=2)
    first = train_module._data_fingerprint(tmp_path / "data.yaml")
    assert train_module._data_fingerprint(tmp_path / "data.yaml") == first
    label = tmp_path / "labels" / "train" / "train_001.txt"
    label.write_text(label.read_text() + "1 0.5 0.5 0.2 0.2\n")
    assert train_module._data_fingerprint(tmp_path / "data.yaml") != first


def test_unreadable_checkpoint_means_a_fresh_start(tmp_path):
    last = tmp_path / "last.pt"
    last.write_bytes(b"half a zip file")
    assert train_module._checkpoint_state(last, 10) == "unreadable"
    assert train_module._checkpoint_state(tmp_path / "absent.pt", 10) == "missing"


def test_results_history_keeps_the_last_row_of_a_rerun_epoch(tmp_path):
    results = tmp_path / "results.csv"
    results.write_text("epoch,time,train/box_loss\n1,1.0,3.0\n2,2.0,2.5\n2,2.1,2.4\n")
    history = callbacks_module.results_history(results)
    assert sorted(history) == [0, 1] and history[1]["train/box_loss"] == 2.4


def test_missing_dataset_yaml_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset yaml not found"):
        train_detector(tmp_path / "nope.yaml", tmp_path / "run", DetectorConfig(), tmp_path / "l")


# --- prediction -------------------------------------------------------------------------------

@pytest.mark.slow
def test_predicted_boxes_land_on_the_drawn_rectangles(trained):
    images = val_images(trained.data, 8)
    predictions = predict(trained.best, images, trained.cfg)
    assert list(predictions.columns) == ["image_id", "class_name", "x1", "y1", "x2", "y2", "score"]
    assert predictions.attrs["image_ids"] == [image_id for image_id, _ in images]
    assert list(dict.fromkeys(predictions["image_id"])) == [i for i, _ in images
                                                           if i in set(predictions["image_id"])]
    assert (predictions["score"] >= trained.cfg.conf).all()
    assert all(rows["score"].is_monotonic_decreasing
               for _, rows in predictions.groupby("image_id", sort=False))
    assert predictions.groupby("image_id").size().max() <= trained.cfg.max_det
    # val images are 96x54: boxes are in those pixels, not in the 64x64 network input
    xs, ys = predictions[["x1", "x2"]].to_numpy(), predictions[["y1", "y2"]].to_numpy()
    assert xs.min() >= 0 and xs.max() <= 96 and ys.min() >= 0 and ys.max() <= 54
    assert (xs[:, 1] > xs[:, 0]).all() and (ys[:, 1] > ys[:, 0]).all()
    hits = 0
    for image_id, rows in predictions[predictions["score"] > 0.2].groupby("image_id"):
        cls, *drawn = trained.boxes[image_id][0]
        hits += any(row.class_name == NAMES[cls]
                    and iou(drawn, (row.x1, row.y1, row.x2, row.y2)) > 0.5
                    for row in rows.itertuples())
    assert hits >= 4  # of 8 images


@pytest.mark.slow
def test_boxes_scale_with_the_image(trained, tmp_path):
    original = trained.data / "images" / "val" / "val_000.png"
    doubled = tmp_path / "doubled.png"
    image = cv2.imread(str(original))
    cv2.imwrite(str(doubled), cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR))
    predictions = predict(trained.best, [("small", original), ("big", doubled)], trained.cfg)
    top = predictions.sort_values("score", ascending=False).groupby("image_id").head(1)
    small = top[top.image_id == "small"][["x1", "y1", "x2", "y2"]].to_numpy()[0]
    big = top[top.image_id == "big"][["x1", "y1", "x2", "y2"]].to_numpy()[0]
    np.testing.assert_allclose(big / 2, small, atol=3.0)  # pixels of the 96x54 image


def test_predict_names_a_missing_image(tmp_path):
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"not read: the images are checked first")
    with pytest.raises(FileNotFoundError, match="'frame-7' not found"):
        predict(weights, [("frame-7", tmp_path / "frame-7.jpg")], DetectorConfig())
    with pytest.raises(ValueError, match="duplicate image_id"):
        predict(weights, [("a", weights), ("a", weights)], DetectorConfig())


# --- Scalabel output --------------------------------------------------------------------------

def _predictions() -> pd.DataFrame:
    frame = pd.DataFrame({
        "image_id": ["b", "a", "b"],
        "class_name": ["car", "truck", "car"],
        "x1": [1.0, 2.5, 10.125], "y1": [2.0, 3.0, 11.0],
        "x2": [5.0, 7.25, 20.0], "y2": [6.0, 8.0, 21.000000000000004],
        "score": [0.25, 0.9, 0.75],
    })
    frame.attrs["image_ids"] = ["c", "b", "a"]  # c: an image without detections
    return frame


def test_write_scalabel_round_trips_every_box(tmp_path):
    path = tmp_path / "out" / "predictions.json"
    write_scalabel(_predictions(), path)
    frames = json.loads(path.read_text())
    assert [f["name"] for f in frames] == ["a", "b", "c"]
    assert frames[2]["labels"] == []
    b_labels = frames[1]["labels"]
    assert [label["score"] for label in b_labels] == [0.75, 0.25]  # by descending score
    assert b_labels[0]["box2d"] == {"x1": 10.125, "y1": 11.0, "x2": 20.0, "y2": 21.000000000000004}
    assert b_labels[0]["category"] == "car"
    assert frames[0]["labels"][0]["category"] == "truck"
    ids = [label["id"] for frame in frames for label in frame["labels"]]
    assert len(set(ids)) == 3 and all(isinstance(i, str) for i in ids)
    first = path.read_bytes()
    write_scalabel(_predictions().sample(frac=1.0, random_state=1), path, image_ids=["c", "b", "a"])
    assert path.read_bytes() == first  # row order does not matter; bytes are stable
    assert [p.name for p in path.parent.iterdir()] == ["predictions.json"]  # no temp left


def test_write_scalabel_rejects_bad_tables(tmp_path):
    with pytest.raises(ValueError, match="lack column"):
        write_scalabel(_predictions().drop(columns="score"), tmp_path / "p.json")
    broken = _predictions()
    broken.loc[0, "x1"] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        write_scalabel(broken, tmp_path / "p.json")


# --- config and offline setup -----------------------------------------------------------------

@pytest.mark.parametrize("field, value, message", [
    ("epochs", 0, "epochs: must be a whole number >= 1, got 0"),
    ("conf", 1.5, "conf: must be in [0, 1], got 1.5"),
    ("device", "tpu", "device: must be auto, cpu, cuda or distinct GPU indices such as 0,1; "
                      "got 'tpu'"),
    ("model", "yolov5n.onnx", "model: must be an architecture yaml such as yolov5n.yaml (from "
                              "scratch) or a checkpoint .pt"),
    ("batch", True, "batch: must be a whole number >= 1, got True"),
])
def test_bad_config_names_the_field(field, value, message):
    """The config checks its own fields when built; load_params prefixes `detector.`."""
    with pytest.raises(ParamError) as caught:
        DetectorConfig(**{field: value})
    assert str(caught.value).startswith(message)


def test_configure_ultralytics_keeps_everything_local(tmp_path):
    # fresh interpreters: importing detection must not import ultralytics; configuring it
    # first makes it offline with a local config dir; configuring after someone else imported
    # it still makes it offline, without rewriting that other settings file
    script = """
import json, sys
from pathlib import Path
first = sys.argv[2] == "ultralytics-first"
if first:
    import ultralytics
import detection
assert ("ultralytics" in sys.modules) == first
config_dir = detection.configure_ultralytics(Path(sys.argv[1]) / "ours")
import ultralytics.utils as u
from ultralytics.utils.checks import check_font
expected = Path(sys.argv[1]) / ("theirs" if first else "ours")
assert config_dir == expected and u.USER_CONFIG_DIR == expected / "Ultralytics", config_dir
assert check_font("Arial.ttf") == expected / "Ultralytics" / "Arial.ttf"
assert not any(u.SETTINGS[k] for k in ("dvc", "sync", "mlflow", "wandb", "comet", "clearml"))
assert not u.checks.ONLINE and not u.checks.AUTOINSTALL and u.SAFE_LOAD
on_disk = json.loads((expected / "Ultralytics" / "settings.json").read_text())
assert on_disk["dvc"] is first, on_disk  # their file untouched, ours written
print("ok")
"""
    for order in ("detection-first", "ultralytics-first"):
        env = {**os.environ, "YOLO_CONFIG_DIR": str(tmp_path / "theirs"), "YOLO_OFFLINE": "1"}
        if order == "detection-first":
            del env["YOLO_CONFIG_DIR"]
        done = subprocess.run([sys.executable, "-c", script, str(tmp_path), order], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


@pytest.mark.parametrize("omp, expected", [(None, "cores"), ("2", 2), ("1", 1)])
def test_cpu_training_uses_every_core_or_omp_num_threads(tmp_path, omp, expected):
    # ultralytics' select_device would set cpu_count - 1 threads (one, on a 2-core machine)
    script = """
import os, sys, torch
import detection
detection.configure_ultralytics(sys.argv[1])
from ultralytics.utils.torch_utils import select_device
select_device("cpu", verbose=False)
print(torch.get_num_threads(), len(os.sched_getaffinity(0)))
"""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if omp is not None:
        env["OMP_NUM_THREADS"] = omp
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    threads, cores = map(int, done.stdout.split()[-2:])
    assert threads == (cores if expected == "cores" else expected)
