"""The `ideal` arm: the translate stage writes the sample world's real-look renders of the clone
frames, with exactly the clone frames' boxes; on the real datasets it is refused at params load."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from common.config import ParamError
from data import read_manifest
from data.sample import ideal_frame_path
from data.vkitti2 import variation_frames
from pipeline import ingest, translate
from pipeline.params import check_study_arms, load_params
from translators.io import read_rgb

REPO = Path(__file__).resolve().parents[1]
TINY = {"kitti_frames": 4, "vkitti2_scenes": 2, "vkitti2_frames_per_scene": 3,
        "bdd_train_frames_per_weather": 1, "bdd_val_frames_per_weather": 1, "width": 192,
        "seed": 3}


def _params(tmp_path: Path, **changes) -> dict:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"]["sample"] = TINY
    raw["pretrain"]["epochs"] = 0  # no detector here: no pretraining frames needed
    raw["detector"]["model"] = "yolov5n.yaml"
    raw.update(changes)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    return raw


def test_ideal_frames_carry_exactly_the_clone_frames_boxes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _params(tmp_path, translator="ideal")
    ingest.main([])
    clone = variation_frames(read_manifest(Path("outputs/ingest/vkitti2")), "clone")
    world = Path("outputs/ingest/sample_world")
    for weather in ("fog", "rain"):
        translate.main([weather])
        out = read_manifest(Path("outputs/translate") / weather / "manifest")
        assert len(out.images) == len(clone.images) == 6
        # the same boxes, field for field; only the image id names the weather
        renamed = clone.objects.assign(image_id=clone.objects["image_id"].str.replace(
            "/clone/", f"/{weather}/", regex=False))
        cols = [c for c in clone.objects.columns]
        assert out.objects[cols].reset_index(drop=True).equals(
            renamed[cols].reset_index(drop=True))
        assert len(out.objects) > 0
        for image_id, path in zip(out.images["image_id"], out.images["path"], strict=True):
            scene, variation, camera, frame = image_id.split("/")
            assert variation == weather
            render = ideal_frame_path(world / "ideal", weather, scene, camera, int(frame))
            assert Path(path).read_bytes() == render.read_bytes()  # the world's render itself
            sim = next(p for i, p in zip(clone.images["image_id"], clone.images["path"],
                                         strict=True) if i == f"{scene}/clone/{camera}/{frame}")
            a, b = read_rgb(Path(path)).astype(int), read_rgb(Path(sim)).astype(int)
            assert a.shape == b.shape and np.abs(a - b).mean() > 10  # another look
        geometry = yaml.safe_load((Path("outputs/translate") / weather / "geometry.json")
                                  .read_text())
        assert geometry["translator"] == "ideal" and geometry["edge_similarity_mean"] > 0.5


def test_a_missing_ideal_render_names_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _params(tmp_path, translator="ideal")
    ingest.main([])
    shutil.rmtree("outputs/ingest/sample_world/ideal/fog/Scene02")
    with pytest.raises(FileNotFoundError, match="ideal/fog/Scene02/Camera_0/rgb_00000.jpg "
                                                "not found: the `ideal` translator needs"):
        translate.main(["fog"])
    assert not Path("outputs/translate/fog").exists()  # nothing half-written


def test_ideal_on_the_real_datasets_is_one_line_at_load(tmp_path):
    raw = _params(tmp_path, translator="ideal")
    raw["data"]["source"] = "real"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ParamError) as error:
        load_params(tmp_path / "params.yaml")
    assert str(error.value) == ("translator: `ideal` needs the sample world's renders (the clone "
                                "frames drawn again in the real look); with data.source: real "
                                "there are none")
    # the study's ideal arm: refused by the study (the stages do not run it)
    raw["translator"] = "none"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    params = load_params(tmp_path / "params.yaml")
    assert params.study.ideal
    with pytest.raises(ParamError, match="^study.ideal: the ideal arm needs .* set study.ideal: "
                                         "false$"):
        check_study_arms(params)
    params.study.ideal = False
    check_study_arms(params)
