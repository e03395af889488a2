"""Fine-tuning from a local checkpoint, P6 models and their stride, GPU lists, the checkpoint dep.

No pretrained weights exist offline, so the checkpoint is one we train here: one epoch from
yolov5n.yaml on drawn rectangles (car, truck), then fine-tuned on the same frames relabelled
with three other classes. Everything is real ultralytics on the CPU; DDP itself needs GPUs, so
for device lists the test checks the ultralytics args we build.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from common.config import ParamError, build
from common.errors import MissingInputError, UserError
from detection import DetectorConfig, configure_ultralytics, train_detector
from detection.devices import ultralytics_device
from detection.model_source import check_detector_model, check_freeze, check_imgsz, inspect_model
from detection.train import _train_args
from pipeline.params import load_params
from tests.test_detection import QUICK, draw_dataset

configure_ultralytics()  # before anything imports ultralytics: see detection/env.py

REPO = Path(__file__).resolve().parents[1]
THREE = ["bus", "van", "tram"]


def relabel(data: Path, names: list[str]) -> Path:
    """The same frames and boxes under another class list: a new data.yaml beside them."""
    spec = yaml.safe_load((data / "data.yaml").read_text())
    spec["names"] = dict(enumerate(names))
    out = data / f"data_{len(names)}.yaml"
    out.write_text(yaml.safe_dump(spec))
    return out


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """best.pt of one epoch from yolov5n.yaml on car/truck rectangles."""
    root = tmp_path_factory.mktemp("scratch")
    draw_dataset(root / "data", n_train=8, n_val=4)
    cfg = DetectorConfig(epochs=1, **QUICK)
    best = train_detector(root / "data" / "data.yaml", root / "run", cfg, root / "run" / "live")
    return root, best


def test_fine_tuning_replaces_the_head_with_our_classes(scratch, caplog):
    from ultralytics import YOLO
    from ultralytics.nn.tasks import torch_safe_load

    root, source = scratch
    data = relabel(root / "data", THREE)
    cfg = DetectorConfig(model=str(source), epochs=1, **QUICK)
    with caplog.at_level(logging.WARNING, logger="detection"):
        best = train_detector(data, root / "tuned", cfg, root / "tuned" / "live")
    head = YOLO(str(best)).model.model[-1]
    assert head.nc == 3
    assert YOLO(str(best)).names == {0: "bus", 1: "van", 2: "tram"}
    assert YOLO(str(source)).model.model[-1].nc == 2  # the source checkpoint is untouched
    ckpt, _ = torch_safe_load(str(best))
    assert ckpt["train_args"]["pretrained"] is True  # ultralytics loaded the source's weights
    assert ckpt["train_args"]["model"] == os.path.relpath(source)  # relative: see train.py
    notes = [r.getMessage() for r in caplog.records if "fine-tuning" in r.getMessage()]
    assert notes == [f"fine-tuning {source}: its 2 classes (car, truck) are replaced by a new "
                     "head for the dataset's 3 (bus, van, tram); the other layers keep their "
                     "weights"]
    assert len(list((root / "tuned" / "live").glob("plots/metrics/train/*.tsv"))) == 3


def test_the_checkpoint_bytes_are_part_of_the_run_record(scratch, tmp_path):
    """Same path, other bytes: a fresh run, not the finished one returned as is."""
    import json

    from common.files import file_sha256

    root, source = scratch
    record = json.loads((root / "tuned" / "sim2real_run.json").read_text())
    assert record["train_args"]["model_sha256"] == file_sha256(source)


def test_bare_hub_name_not_on_disk_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no yolov5su.pt here
    draw_dataset(tmp_path / "data", n_train=2, n_val=1)
    cfg = DetectorConfig(model="yolov5su.pt", epochs=1, **QUICK)
    with pytest.raises(MissingInputError) as caught:
        train_detector(tmp_path / "data" / "data.yaml", tmp_path / "run", cfg, tmp_path / "live")
    assert str(caught.value) == (
        "detector.model: yolov5su.pt is not on disk and nothing is downloaded at run time; put "
        "the checkpoint at pretrained/yolov5su.pt and set detector.model: pretrained/yolov5su.pt")
    assert not (tmp_path / "run").exists() and not (tmp_path / "yolov5su.pt").exists()


def test_missing_checkpoint_path_is_named():
    with pytest.raises(MissingInputError) as caught:
        inspect_model("pretrained/nope.pt")
    assert str(caught.value) == (
        "detector.model: checkpoint not found: pretrained/nope.pt (nothing is downloaded at run "
        "time: put the file there; pretrained/README.md says where to get one)")


@pytest.mark.parametrize("content, expected", [
    (b"not a checkpoint at all", "is not a readable YOLO checkpoint ("),
    (b"", "is not a readable YOLO checkpoint ("),
    ({"weights": torch.zeros(3)}, "is not a YOLO detection checkpoint (holds no model, expected "
                                  "an ultralytics DetectionModel)"),
    ({"model": torch.nn.Linear(2, 2)}, "is not a"),  # refused by the safe loader or by us
])
def test_corrupt_or_foreign_pt_is_one_line(tmp_path, content, expected):
    path = tmp_path / "bad.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(UserError) as caught:
        inspect_model(str(path))
    message = str(caught.value)
    assert message.startswith(f"detector.model: {path} {expected}")
    assert "\n" not in message


def test_truncated_real_checkpoint_is_one_line(scratch, tmp_path):
    _, source = scratch
    cut = tmp_path / "cut.pt"
    cut.write_bytes(source.read_bytes()[:5000])
    with pytest.raises(UserError) as caught:
        inspect_model(str(cut))
    assert str(caught.value).startswith(f"detector.model: {cut} is not a readable YOLO checkpoint")
    assert "\n" not in str(caught.value)


def test_checkpoint_stride_and_names_are_read_from_it(scratch):
    _, source = scratch
    found = inspect_model(str(source))
    assert (found.stride, found.names, found.is_checkpoint) == (32, ("car", "truck"), True)



def test_a_frozen_backbone_keeps_the_checkpoints_weights_and_the_neck_learns(scratch):
    """detector.freeze: 10 fine-tunes YOLOv5's neck and head only: every weight of layers 0-9
    is the source checkpoint's after training, while later layers moved."""
    from ultralytics.nn.tasks import torch_safe_load

    root, source = scratch
    cfg = DetectorConfig(model=str(source), epochs=1, freeze=10, **QUICK)
    best = train_detector(root / "data" / "data.yaml", root / "frozen", cfg,
                          root / "frozen" / "live")

    def weights(path: Path) -> dict[str, torch.Tensor]:
        ckpt, _ = torch_safe_load(str(path))
        net = ckpt["ema"] or ckpt["model"]
        return {k: v.float() for k, v in net.state_dict().items() if k.endswith(".weight")}

    before, after = weights(source), weights(best)
    frozen = [k for k in before if int(k.split(".")[1]) < 10]
    learned = [k for k in before if 10 <= int(k.split(".")[1]) < 24]
    assert frozen and learned
    assert all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in learned)
    assert inspect_model(str(best)).layers == 25  # YOLOv5n: 10 backbone, 14 neck, the head


def test_freezing_the_head_too_is_refused_before_training(scratch):
    _, source = scratch
    check_freeze(24, inspect_model(str(source)))  # all but the head: allowed
    with pytest.raises(ParamError) as caught:
        check_freeze(25, inspect_model(str(source)))
    assert str(caught.value) == (f"detector.freeze: 25 would freeze all 25 layers of {source}, "
                                 "the head too; at most 24 (YOLOv5's backbone is the first 10)")
    with pytest.raises(ParamError, match="freeze: must be a whole number >= 0, got -1"):
        DetectorConfig(freeze=-1)

# --- P6 and imgsz ---------------------------------------------------------------------------

def test_p6_yaml_at_1280_validates_and_builds():
    from ultralytics.nn.tasks import DetectionModel

    source = inspect_model("yolov5n6.yaml")
    assert source.stride == 64
    check_imgsz(1280, source)  # no error
    net = DetectionModel("yolov5n6.yaml", nc=2, verbose=False).eval()
    with torch.no_grad():
        out = net(torch.zeros(1, 3, 1280, 1280))[0]
    # 4 + 2 box/class channels over the P3..P6 grids: 160² + 80² + 40² + 20² cells
    assert tuple(out.shape) == (1, 6, 160**2 + 80**2 + 40**2 + 20**2)


def test_imgsz_not_a_multiple_of_the_p6_stride_is_refused(tmp_path):
    with pytest.raises(UserError) as caught:
        check_imgsz(1248, inspect_model("yolov5n6.yaml"))
    assert str(caught.value) == ("detector.imgsz: must be a multiple of 64 (the largest stride "
                                 "of yolov5n6.yaml), got 1248")
    check_imgsz(1248, inspect_model("yolov5n.yaml"))  # fine for a P5 model (stride 32)
    draw_dataset(tmp_path / "data", n_train=2, n_val=1)
    cfg = DetectorConfig(**{**QUICK, "model": "yolov5n.yaml", "imgsz": 100})
    with pytest.raises(UserError, match=r"^detector.imgsz: must be a multiple of 32 \(the largest "
                                        r"stride of yolov5n.yaml\), got 100$"):
        train_detector(tmp_path / "data" / "data.yaml", tmp_path / "run", cfg, tmp_path / "live")
    assert not (tmp_path / "run").exists()


# --- devices ---------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, normalised", [
    ("auto", "auto"), ("cpu", "cpu"), ("cuda", "cuda"), (0, "0"), ("0,1,2,3", "0,1,2,3"),
    ([0, 1], "0,1"), ("2, 3", "2,3"),
])
def test_device_lists_are_accepted_at_load(raw, normalised):
    assert build(DetectorConfig, {"device": raw}, "detector").device == normalised


@pytest.mark.parametrize("raw", ["0,0", "-1", "0,x", "", [0, True], "tpu", 1.5])
def test_bad_device_lists_name_the_key(raw):
    with pytest.raises(ParamError) as caught:
        build(DetectorConfig, {"device": raw}, "detector")
    assert str(caught.value).startswith("detector.device: ")


def test_rect_batches_on_several_gpus_are_refused():
    with pytest.raises(ParamError) as caught:
        build(DetectorConfig, {"device": [0, 1], "rect": True}, "detector")
    assert str(caught.value) == ("detector.rect: true does not work on several GPUs (device "
                                 "0,1): ultralytics' DDP shuffles and mosaics; set rect: false")
    assert build(DetectorConfig, {"device": 0, "rect": True}, "detector").rect is True


def test_device_list_is_passed_to_ultralytics_as_it_expects(tmp_path):
    cfg = DetectorConfig(device="0,1", batch=32, workers=8, cache=True)
    args = _train_args(tmp_path / "data.yaml", tmp_path / "run", cfg, seed=3, gpu_count=2,
                       checkpoint=True)
    # ultralytics: a "0,1" device string means DDP over those GPUs; batch is the total
    assert {k: args[k] for k in ("device", "batch", "workers", "cache", "seed", "deterministic",
                                 "pretrained")} == {
        "device": "0,1", "batch": 32, "workers": 8, "cache": True, "seed": 3,
        "deterministic": True, "pretrained": True}
    assert _train_args(tmp_path / "d.yaml", tmp_path / "r", DetectorConfig(), seed=0,
                       gpu_count=0, checkpoint=False)["pretrained"] is False


@pytest.mark.parametrize("device, gpus, expected", [
    ("auto", 0, "cpu"), ("auto", 4, "0"), ("cuda", 1, "0"), ("cpu", 4, "cpu"), ("0,1", 2, "0,1"),
    ("3", 4, "3"),
])
def test_ultralytics_device_spelling(device, gpus, expected):
    assert ultralytics_device(device, gpus) == expected


@pytest.mark.parametrize("device, gpus, message", [
    ("0,1", 0, "detector.device: '0,1' asks for GPU 1 but torch sees 0 CUDA GPUs; use auto or cpu"),
    ("0,1,2,3", 2, "detector.device: '0,1,2,3' asks for GPU 3 but torch sees 2 CUDA GPUs; "
                   "indices 0..1 exist"),
    ("cuda", 0, "detector.device: '0' asks for GPU 0 but torch sees 0 CUDA GPUs; use auto or cpu"),
])
def test_too_few_gpus_is_one_line_at_train_time(device, gpus, message):
    with pytest.raises(UserError) as caught:
        ultralytics_device(device, gpus)
    assert str(caught.value) == message


def test_gpu_list_on_this_machine_fails_before_training(tmp_path):
    if torch.cuda.device_count() >= 2:
        pytest.skip("this machine has the GPUs")
    draw_dataset(tmp_path / "data", n_train=2, n_val=1)
    cfg = DetectorConfig(device="0,1", **QUICK)
    with pytest.raises(UserError, match=r"^detector.device: '0,1' asks for GPU 1 but torch sees"):
        train_detector(tmp_path / "data" / "data.yaml", tmp_path / "run", cfg, tmp_path / "live")
    assert not (tmp_path / "run").exists()


# --- the checkpoint as a DVC dep -------------------------------------------------------------

def test_train_and_predict_check_the_model_before_any_work(tmp_path, monkeypatch):
    """train_detector and predict check detector.model against the files and the model's stride
    right after loading params (the other stages never import ultralytics)."""
    monkeypatch.chdir(tmp_path)
    params = yaml.safe_load((REPO / "params.yaml").read_text())

    def load_with(**detector) -> None:
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(
            {**params, "detector": {**params["detector"], **detector}}))
        detector = load_params(tmp_path / "params.yaml").detector
        check_detector_model(detector.model, detector.imgsz)

    load_with(model="yolov5n6.yaml", imgsz=1280)
    cases = [
        ({"model": "yolov5n6.yaml", "imgsz": 1248}, "detector.imgsz: must be a multiple of 64 "
         "(the largest stride of yolov5n6.yaml), got 1248"),
        ({"model": "/data/ckpt/best.pt"}, "detector.model: /data/ckpt/best.pt is outside "
         "pretrained/, the folder dvc.yaml tracks as train_detector's dep; move it there (e.g. "
         "pretrained/best.pt) so a changed checkpoint re-trains"),
        ({"model": "pretrained/yolov5mu.pt"}, "detector.model: checkpoint not found: "
         "pretrained/yolov5mu.pt (nothing is downloaded at run time: put the file there; "
         "pretrained/README.md says where to get one)"),
    ]
    for detector, message in cases:
        with pytest.raises(UserError) as caught:
            load_with(**detector)
        assert str(caught.value) == message
    (tmp_path / "pretrained").mkdir()
    (tmp_path / "pretrained" / "x.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=r"^detector.model: pretrained/x.pt is not a readable"):
        load_with(model="pretrained/x.pt")
    check_detector_model("yolov5n.yaml", 320)  # the demo's


def _dvc(root: Path, *args: str) -> str:
    dvc = str(Path(sys.executable).with_name("dvc"))
    done = subprocess.run([dvc, *args], cwd=root, capture_output=True, text=True, check=True)
    return done.stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_changed_checkpoint_reruns_train_detector_and_same_bytes_do_not(tmp_path):
    """Real DVC, in a temp repo, with the train_detector stage's deps as dvc.yaml declares them
    (the command replaced by a copy of the checkpoint, so it runs in a second)."""
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["train_detector"]
    assert "pretrained" in stage["deps"]
    (tmp_path / "pretrained").mkdir()
    (tmp_path / "pretrained" / "README.md").write_text("checkpoints\n")
    ckpt = tmp_path / "pretrained" / "yolov5mu.pt"
    ckpt.write_bytes(b"weights v1")
    deps = [d for d in stage["deps"] if d == "pretrained"]
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"train_detector": {
        "cmd": "cp pretrained/yolov5mu.pt model.bin",
        "deps": deps, "outs": ["model.bin"]}}}))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    _dvc(tmp_path, "init", "-q")
    _dvc(tmp_path, "repro", "-q")
    assert (tmp_path / "model.bin").read_bytes() == b"weights v1"

    ckpt.write_bytes(b"weights v1")  # same bytes, new mtime
    assert _dvc(tmp_path, "status").strip() == "Data and pipelines are up to date."
    ckpt.write_bytes(b"weights v2")
    assert "modified:           pretrained" in _dvc(tmp_path, "status")
    _dvc(tmp_path, "repro", "-q")
    assert (tmp_path / "model.bin").read_bytes() == b"weights v2"


def test_ddp_without_cloudpickle_is_one_line():
    """ultralytics' DDP launcher needs cloudpickle and would try to pip-install it."""
    from detection.devices import check_ddp_ready

    check_ddp_ready("0")  # one GPU: no DDP, nothing needed
    try:
        import cloudpickle  # noqa: F401
    except ImportError:
        with pytest.raises(UserError) as caught:
            check_ddp_ready("0,1")
        assert str(caught.value) == (
            "detector.device: training on GPUs 0,1 uses ultralytics' DDP, which needs the "
            "cloudpickle package: pip install 'cloudpickle>=3.1.1'")
    else:
        check_ddp_ready("0,1")


# What each DDP worker runs of ultralytics' launch file before it trains: the trainer rebuilt
# from the cloudpickled state (our callbacks included), then the training set scanned, as every
# rank does. The rest (init_process_group, the CUDA device) needs GPUs.
WORKER_PROBE = """
    from ultralytics.data import dataset
    from ultralytics.utils import RANK
    trainer.get_dataloader(trainer.data["train"], batch_size=2, rank=-1, mode="train")
    print("probe", RANK, dataset.save_dataset_cache_file.__name__)
"""


@pytest.mark.parametrize("rank", [0, 1])
def test_ddp_workers_get_our_callbacks_and_write_no_label_cache(tmp_path, monkeypatch, rank):
    """ultralytics' own launch file (generate_ddp_file), run as DDP rank `rank` on the CPU."""
    from ultralytics import YOLO
    from ultralytics.data import dataset
    from ultralytics.models.yolo.detect import DetectionTrainer
    from ultralytics.utils.dist import generate_ddp_file

    from detection.callbacks import add_callbacks

    monkeypatch.setattr(dataset, "save_dataset_cache_file", dataset.save_dataset_cache_file)
    draw_dataset(tmp_path / "data", n_train=4, n_val=2)
    run_dir, record = tmp_path / "run", {"train_args": {"seed": 0}}
    args = _train_args(tmp_path / "data" / "data.yaml", run_dir, DetectorConfig(**QUICK),
                       seed=0, gpu_count=0, checkpoint=False)
    model = YOLO("yolov5n.yaml")
    add_callbacks(model, tmp_path / "live", run_dir / "record.json", record)
    trainer = DetectionTrainer(overrides=args, _callbacks=model.callbacks)
    trainer.model = trainer.get_model(cfg="yolov5n.yaml", verbose=False)
    launch = Path(generate_ddp_file(trainer))
    source = launch.read_text()
    assert source.count("    trainer.train()\n") == 1
    launch.write_text(source.replace("    trainer.train()\n", WORKER_PROBE))
    (run_dir / "record.json").unlink()  # the launcher deletes the run dir before it starts

    env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
           "PYTHONPATH": str(REPO)}
    worker = subprocess.run([sys.executable, str(launch)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    launch.unlink()
    launch.with_suffix(".pt").unlink()
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert not list((tmp_path / "data").rglob("*.cache"))  # the dataset stays DVC's output
    assert f"probe {rank} _skip_label_cache_file" in worker.stdout
    # rank 0 re-writes the run record (on_pretrain_routine_start: rank 0 only); rank 1 nothing
    written = (run_dir / "record.json").is_file()
    assert written == (rank == 0)
    if written:
        import json

        assert json.loads((run_dir / "record.json").read_text()) == record
