"""params.yaml is validated once: every bad key or value is one clear error naming the key."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import translators
from common.config import parse_yaml
from pipeline.params import ParamError, load_params

REPO = Path(__file__).resolve().parents[1]


def write_params(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    edit(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_repository_params_load_into_typed_objects():
    params = load_params(REPO / "params.yaml")
    assert params.translator in {"none", "cyclegan", "cut", "nst", "fda", "weatherfx"}
    assert params.weathers == ["fog", "rain", "overcast"]
    assert not hasattr(params.detector, "seed")  # the top-level seed is passed to training
    assert isinstance(params.detector.epochs, int)
    assert params.evaluation.occlusion_edges == [5, 10]
    assert params.classes.kitti["Van"] == "car"
    # every translator's section is validated into its own dataclass
    assert type(params.translator_config()).__name__.endswith("Config")


def test_loading_params_does_not_import_ultralytics_or_torch():
    """Every stage loads params; only train_detector and predict inspect the model
    (detection.model_source.check_detector_model), so ingest never imports ultralytics; and
    every translator's params are checked from its torch-free config module, so the stages
    that run no network (ingest, build_dataset, evaluate) never import torch (~4 CPU-s)."""
    code = ("import sys; from pipeline.params import load_params; load_params(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ultralytics', 'torch')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_each_translators_config_is_the_one_params_checks():
    """translators/base.py names each translator's params dataclass (torch-free) apart from the
    translator: both must be the same class."""
    for name in translators.names():
        assert translators.get(name).Config is translators.config_class(name), name


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p.update(translator="pix2pix"), "translator: 'pix2pix' is not allowed"),
        (lambda p: p["detector"].update(epocs=3), "detector.epocs: unknown key"),
        (lambda p: p["detector"].update(epochs="ten"), "detector.epochs: expected a whole number"),
        (lambda p: p["detector"].update(device="tpu"), "detector.device: must be auto, cpu, cuda"),
        (lambda p: p["data"].update(source="web"), "data.source: 'web' is not allowed"),
        (lambda p: p.update(weathers=["fog", "snow"]), "weathers[1]: 'snow' is not allowed"),
        (lambda p: p["translators"]["cyclegan"].update(ngf=1.5),
         "translators.cyclegan.ngf: expected a whole number"),
        (lambda p: p["translators"].update(pix2pix={}), "translators.pix2pix: unknown key"),
        (lambda p: p["translators"].update(device="gpu"),
         "translators.device: must be auto, cpu, cuda or distinct GPU indices such as 0,1; "
         "got 'gpu'"),
        (lambda p: p["evaluation"].update(classes=["car", "bus"]),
         "evaluation.classes: 'bus' is not a detector class"),
        (lambda p: p["evaluation"].update(report_score=1.5),
         "evaluation.report_score: must be in [0, 1], got 1.5"),
        (lambda p: p["evaluation"].update(occlusion_edges=[10, 5]),
         "evaluation.occlusion_edges: must be strictly increasing, got [10, 5]"),
        (lambda p: p["detector"].update(seed=3), "detector.seed: unknown key"),
        (lambda p: p["dataset"].update(train_on="bdd"),
         "dataset.train_on: 'bdd' is not allowed; choose one of kitti_vkitti2, bdd100k"),
        (lambda p: p["dataset"].update(val_fraction=1.0),
         "dataset.val_fraction: must be in (0, 1), got 1.0"),
        # each section checks its own ranges when built: all of these fail at load, before any
        # stage runs (they used to fail in a stage, or never)
        (lambda p: p["translators"]["fda"].update(beta=0.7),
         "translators.fda.beta: must be in [0, 0.5], got 0.7"),
        (lambda p: p["translators"]["fda"].update(beta=-0.1),
         "translators.fda.beta: must be in [0, 0.5], got -0.1"),
        (lambda p: p["data"]["vkitti2"].update(stride=0),
         "data.vkitti2.stride: must be a whole number >= 1, got 0"),
        (lambda p: p["data"]["vkitti2"].update(cameras=["../../etc"]),
         "data.vkitti2.cameras[0]: '../../etc' is not allowed; a plain name"),
        (lambda p: p["data"]["vkitti2"].update(scenes=["Scene01/../../x"]),
         "data.vkitti2.scenes[0]: 'Scene01/../../x' is not allowed"),
        (lambda p: p["data"]["vkitti2"].update(occupancy_threshold=2),
         "data.vkitti2.occupancy_threshold: must be in [0, 1], got 2.0"),
        (lambda p: p["translators"]["nst"].update(steps=-1),
         "translators.nst.steps: must be a whole number >= 1, got -1"),
        (lambda p: p["translators"]["cyclegan"].update(beta1=1.0),
         "translators.cyclegan.beta1: must be in [0, 1), got 1.0"),
        (lambda p: p["translators"]["cut"].update(mode="fast"),
         "translators.cut.mode: 'fast' is not allowed; choose one of cut, fastcut"),
        (lambda p: p["translators"]["cut"].update(nce_temperature=0),
         "translators.cut.nce_temperature: must be in (0, inf], got 0.0"),
        (lambda p: p["translators"]["weatherfx"].update(fog={"alpha_coef": 3}),
         "translators.weatherfx.fog.alpha_coef: must be in [0, 1], got 3.0"),
        (lambda p: p["translators"]["weatherfx"].update(rain={"grade": {"contrast": [0.9, 0.1]}}),
         "translators.weatherfx.rain.grade.contrast: must be [min, max] with min <= max"),
        (lambda p: p["data"]["sample"].update(kitti_frames=0),
         "data.sample.kitti_frames: must be a whole number in [1, 100000], got 0"),
        (lambda p: p["data"]["sample"].update(width=10**9),
         "data.sample.width: must be a whole number in [64, 4096], got 1000000000"),
        (lambda p: p["classes"]["kitti"].update(Truck="truk"),
         "classes.kitti.Truck: 'truk' is not a detector class; classes.names are car, truck"),
        (lambda p: p["detector"].update(model="x.onnx"), "detector.model: must be an architecture"),
        (lambda p: p["study"].update(bootstrap=10**6),
         "study.bootstrap: must be a whole number in [100, 20000], got 1000000"),
        (lambda p: p.update(seed=-3), "seed: must be a whole number >= 0, got -3"),
        (lambda p: p.update(weathers=[]), "weathers: each of fog, rain, overcast at most once"),
        (lambda p: p["dataset"].update(kitti_val_fraction=0.2),
         "dataset.kitti_val_fraction: unknown key; allowed: train_on, val_fraction"),
        (lambda p: p.update(colour="red"), "colour: unknown key"),
        (lambda p: p["pretrain"].update(model="pretrained/x.pt"),
         "pretrain.model: must be an architecture yaml such as yolov5n.yaml"),
        (lambda p: p["pretrain"].update(epochs=-1),
         "pretrain.epochs: must be a whole number in [0, 10000], got -1"),
        (lambda p: p["data"]["sample"].update(pretrain_frames=-1),
         "data.sample.pretrain_frames: must be a whole number in [0, 100000], got -1"),
        (lambda p: p["data"].update(source="real"),
         "pretrain.epochs: pretraining trains on the sample world's own pretraining frames; "
         "with data.source: real set pretrain.epochs: 0"),
        (lambda p: p["data"]["sample"].update(pretrain_frames=0),
         "pretrain.epochs: there is nothing to pretrain on; set data.sample.pretrain_frames"),
        (lambda p: p["pretrain"].update(epochs=0),
         "detector.model: outputs/pretrain/model.pt is written only when pretrain.epochs > 0"),
    ],
)
def test_bad_params_name_the_key(tmp_path, edit, message):
    with pytest.raises(ParamError) as err:
        load_params(write_params(tmp_path, edit))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("section", ["translators", "gap"])
@pytest.mark.parametrize(("device", "normalised"), [([0, 1], "0,1"), ("0,1", "0,1"), (0, "0"),
                                                    ("cuda", "cuda")])
def test_device_params_take_gpu_indices_as_the_detector_does(tmp_path, section, device,
                                                             normalised):
    path = write_params(tmp_path, lambda p: p[section].update(device=device))
    assert getattr(load_params(path), section).device == normalised


@pytest.mark.parametrize("section", ["translators", "gap"])
@pytest.mark.parametrize("device", [-1, "a", [0, 0]])
def test_bad_device_params_are_one_line_naming_the_key(tmp_path, section, device):
    with pytest.raises(ParamError) as err:
        load_params(write_params(tmp_path, lambda p: p[section].update(device=device)))
    assert str(err.value) == (f"{section}.device: must be auto, cpu, cuda or distinct GPU "
                              f"indices such as 0,1; got {device!r}")


def test_the_sample_worlds_own_seed_is_checked_at_load(tmp_path):
    assert load_params(REPO / "params.yaml").data.sample.seed == 0
    message = r"data\.sample\.seed: must be a whole number >= 0, got -1"
    with pytest.raises(ParamError, match=message):
        load_params(write_params(tmp_path, lambda p: p["data"]["sample"].update(seed=-1)))


def test_missing_params_file_is_a_clear_error(tmp_path):
    with pytest.raises(ParamError, match="not found"):
        load_params(tmp_path / "params.yaml")


def test_yaml_1_2_floats_are_numbers(tmp_path):
    """PyYAML (YAML 1.1) reads `1e-4` as text; params.yaml reads it as DVC's `-S` writes it."""
    text = (REPO / "params.yaml").read_text().replace("    lr: 0.001", "    lr: 1e-3")
    assert "lr: 1e-3" in text
    (tmp_path / "params.yaml").write_text(text)
    assert load_params(tmp_path / "params.yaml").translators.configs["cyclegan"].lr == 0.001
    assert parse_yaml("a: 1e-4\nb: 1.5E3\nc: .5e1\nd: 10\ne: 1e\n", "x") == {
        "a": 1e-4, "b": 1500.0, "c": 5.0, "d": 10, "e": "1e"}


def test_a_key_given_twice_is_an_error_naming_both_lines(tmp_path):
    text = (REPO / "params.yaml").read_text() + "seed: 7\n"
    (tmp_path / "params.yaml").write_text(text)
    first = 1 + text.splitlines().index(next(line for line in text.splitlines()
                                             if line.startswith("seed: 0")))
    last = len(text.splitlines())
    with pytest.raises(ParamError) as err:
        load_params(tmp_path / "params.yaml")
    assert str(err.value) == (f"{tmp_path / 'params.yaml'}: key 'seed' appears twice in one "
                              f"mapping (lines {first} and {last}); keep one")


def test_empty_and_non_utf8_params_files_are_clear_errors(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("# nothing here\n")
    with pytest.raises(ParamError, match="params.yaml is empty"):
        load_params(path)
    path.write_bytes("seed: 0  # caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ParamError) as err:
        load_params(path)
    assert str(err.value) == f"{path}: not UTF-8 text (byte 14); save it as UTF-8"


def test_dvc_yaml_must_declare_the_weathers_the_stages_run(tmp_path):
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    path = write_params(tmp_path, lambda p: p.update(weathers=["fog"]))
    with pytest.raises(ParamError) as err:
        load_params(path)
    assert str(err.value) == (f"weathers: fog, but {tmp_path / 'dvc.yaml'}'s metrics:/plots: list "
                              "outputs for fog, overcast, rain; make its per-weather entries "
                              "match `weathers`")
