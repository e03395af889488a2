"""params.yaml is validated once: every bad key or value is one clear error naming the key."""

from pathlib import Path

import pytest
import yaml

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
    assert params.translator in {"none", "cyclegan", "nst", "fda", "weatherfx"}
    assert params.weathers == ["fog", "rain", "overcast"]
    assert params.detector.seed == params.seed
    assert isinstance(params.detector.epochs, int)
    assert params.evaluation.occlusion_edges == [5, 10]
    assert params.classes.kitti["Van"] == "car"
    # every translator's section is validated into its own dataclass
    assert type(params.translator_config()).__name__.endswith("Config")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p.update(translator="pix2pix"), "translator: 'pix2pix' is not allowed"),
        (lambda p: p["detector"].update(epocs=3), "detector.epocs: unknown key"),
        (lambda p: p["detector"].update(epochs="ten"), "detector.epochs: expected a whole number"),
        (lambda p: p["detector"].update(device="tpu"), "detector.device: 'tpu' is not allowed"),
        (lambda p: p["data"].update(source="web"), "data.source: 'web' is not allowed"),
        (lambda p: p.update(weathers=["fog", "snow"]), "weathers[1]: 'snow' is not allowed"),
        (lambda p: p["translators"]["cyclegan"].update(ngf=1.5),
         "translators.cyclegan.ngf: expected a whole number"),
        (lambda p: p["translators"].update(pix2pix={}), "translators.pix2pix: unknown key"),
        (lambda p: p["translators"].update(device="gpu"), "translators.device: 'gpu'"),
        (lambda p: p["evaluation"].update(classes=["car", "bus"]),
         "evaluation.classes: 'bus' is not a detector class"),
        (lambda p: p["evaluation"].update(report_score=1.5),
         "evaluation.report_score must be in [0, 1], got 1.5"),
        (lambda p: p["evaluation"].update(occlusion_edges=[10, 5]),
         "evaluation.occlusion_edges must be strictly increasing"),
        (lambda p: p["detector"].update(seed=3), "detector.seed: unknown key"),
        (lambda p: p["dataset"].update(train_on="bdd"),
         "dataset.train_on: 'bdd' is not allowed; choose one of kitti_vkitti2, bdd100k"),
        (lambda p: p["dataset"].update(val_fraction=1.0),
         "dataset.val_fraction: must be between 0 and 1 (exclusive), got 1.0"),
        (lambda p: p["dataset"].update(kitti_val_fraction=0.2),
         "dataset.kitti_val_fraction: unknown key; allowed: train_on, val_fraction"),
        (lambda p: p.update(colour="red"), "colour: unknown key"),
    ],
)
def test_bad_params_name_the_key(tmp_path, edit, message):
    with pytest.raises(ParamError) as err:
        load_params(write_params(tmp_path, edit))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_the_sample_worlds_own_seed_is_checked_at_load(tmp_path):
    assert load_params(REPO / "params.yaml").data.sample.seed == 0
    with pytest.raises(ValueError, match=r"data\.sample\.seed must be an integer >= 0, got -1"):
        load_params(write_params(tmp_path, lambda p: p["data"]["sample"].update(seed=-1)))


def test_missing_params_file_is_a_clear_error(tmp_path):
    with pytest.raises(ParamError, match="not found"):
        load_params(tmp_path / "params.yaml")
