"""build_dataset's training sets: the study's (KITTI + vKITTI2) and the in-domain oracle's
(BDD100K train frames), read from a tiny sample world with the real readers."""

from __future__ import annotations

import pytest

from data import IngestResult
from data.mix import bdd100k_parts, sim2real_parts, split_holdout, study_mix
from data.sample import SampleConfig, write_sample_world
from data.yolo import export_yolo, yolo_stem
from pipeline.ingest import read_all, sample_world_roots
from pipeline.params import Params

SMALL = SampleConfig(kitti_frames=10, vkitti2_scenes=1, vkitti2_frames_per_scene=2,
                     bdd_train_frames_per_weather=5, bdd_val_frames_per_weather=2, width=192,
                     seed=5)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> dict[str, IngestResult]:
    """The tiny world read as the ingest stage reads it (default class maps)."""
    world = write_sample_world(tmp_path_factory.mktemp("sample") / "world", SMALL)
    return read_all(Params(), sample_world_roots(world))


@pytest.fixture
def bdd(ingested) -> IngestResult:
    return ingested["bdd100k"]


def test_oracle_trains_on_bdd_train_frames_only_and_never_sees_val(bdd: IngestResult, tmp_path):
    train_parts, (val_name, val) = bdd100k_parts(bdd, val_fraction=0.2, seed=0)
    assert list(train_parts) == ["bdd100k"] and val_name == "bdd100k"
    train = train_parts["bdd100k"]
    train_ids = set(bdd.images.loc[bdd.images["split"] == "train", "image_id"])
    assert len(train_ids) == 20  # 5 per weather
    # 20 % held out (4 frames), the rest trains; together exactly the train split
    assert len(val.images) == 4 and len(train.images) == 16
    assert set(train.images["image_id"]) | set(val.images["image_id"]) == train_ids
    assert not set(train.images["image_id"]) & set(val.images["image_id"])
    # every box of those frames comes along: exported labels equal the manifest's boxes
    counts = export_yolo([train], ["car", "truck"], tmp_path, "train", file_prefix=["bdd100k__"])
    kept = train.objects[~train.objects["ignore"]]
    assert counts["objects_exported"] == len(kept) > 0
    row = kept.iloc[0]
    image = train.images.set_index("image_id").loc[row["image_id"]]
    w, h = image["width"], image["height"]
    label_file = tmp_path / "labels" / "train" / f"{yolo_stem('bdd100k__', row['image_id'])}.txt"
    cls = ["car", "truck"].index(row["class_name"])
    x1, y1, x2, y2 = row["x1"], row["y1"], row["x2"], row["y2"]
    expected = (f"{cls} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} "
                f"{(y2 - y1) / h:.6f}")
    assert expected in label_file.read_text().splitlines()


def test_holdout_is_seeded_and_the_study_keeps_its_parts(ingested: dict[str, IngestResult]):
    kitti = ingested["kitti"]
    a = split_holdout(kitti, 0.2, seed=0, name="KITTI")
    b = split_holdout(kitti, 0.2, seed=0, name="KITTI")
    c = split_holdout(kitti, 0.2, seed=1, name="KITTI")
    assert list(a[1].images["image_id"]) == list(b[1].images["image_id"])
    assert len(a[1].images) == 2 and len(a[0].images) == 8
    assert set(a[1].images["image_id"]) != set(c[1].images["image_id"])
    empty = IngestResult(kitti.images.iloc[:0], kitti.objects.iloc[:0], {})
    train_parts, (val_name, val) = sim2real_parts(kitti, empty, {"fog": empty}, 0.2, seed=0)
    assert list(train_parts) == ["kitti", "vkitti2_clone", "vkitti2_fog"] and val_name == "kitti"
    assert list(val.images["image_id"]) == list(a[1].images["image_id"])


def test_oracle_without_bdd_train_frames_is_a_clear_error(bdd: IngestResult):
    val_only = IngestResult(bdd.images[bdd.images["split"] == "val"], bdd.objects, {})
    with pytest.raises(ValueError, match="raise data.sample.bdd_train_frames_per_weather"):
        bdd100k_parts(val_only, 0.2, seed=0)
    with pytest.raises(ValueError, match="holds out all 20 BDD100K train frames"):
        bdd100k_parts(bdd, 0.99, seed=0)


def test_study_mix_makes_kitti_one_training_frame_in_seven(ingested: dict[str, IngestResult]):
    kitti, vkitti2 = ingested["kitti"], ingested["vkitti2"]
    # 6 vKITTI2 frames per part and 8 KITTI train frames: 12 sim frames want round(12/6) = 2 KITTI
    sim = {"vkitti2_clone": vkitti2.images.head(6), "vkitti2_fog": vkitti2.images.tail(6)}
    sim = {k: IngestResult(v, vkitti2.objects[vkitti2.objects["image_id"].isin(v["image_id"])],
                           {}) for k, v in sim.items()}
    parts, _ = sim2real_parts(kitti, sim["vkitti2_clone"], {"fog": sim["vkitti2_fog"]}, 0.2,
                              seed=0, kitti_share=1 / 7)
    sizes = {name: len(part.images) for name, part in parts.items()}
    assert sizes == {"kitti": 2, "vkitti2_clone": 6, "vkitti2_fog": 6}
    again, _ = sim2real_parts(kitti, sim["vkitti2_clone"], {"fog": sim["vkitti2_fog"]}, 0.2,
                              seed=0, kitti_share=1 / 7)
    assert list(again["kitti"].images["image_id"]) == list(parts["kitti"].images["image_id"])
    full, _ = sim2real_parts(kitti, sim["vkitti2_clone"], {"fog": sim["vkitti2_fog"]}, 0.2,
                             seed=0)
    assert len(full["kitti"].images) == 8  # no share: every KITTI train frame
    assert set(parts["kitti"].images["image_id"]) <= set(full["kitti"].images["image_id"])
    # every box of a kept frame comes along
    kept = parts["kitti"]
    assert set(kept.objects["image_id"]) <= set(kept.images["image_id"])
    assert len(kept.objects) == kitti.objects["image_id"].isin(kept.images["image_id"]).sum()


def test_study_mix_subsamples_vkitti2_when_kitti_is_short(ingested: dict[str, IngestResult]):
    kitti, vkitti2 = ingested["kitti"], ingested["vkitti2"]
    two = IngestResult(kitti.images.head(2), kitti.objects, {})
    # 2 KITTI frames at 1/2 want 2 sim frames: each of the two parts keeps round(n * 2 / n_sim)
    sim = {"vkitti2_clone": vkitti2, "vkitti2_fog": vkitti2}
    kitti_part, mixed = study_mix(two, sim, 0.5, seed=0)
    n = len(vkitti2.images)
    assert len(kitti_part.images) == 2
    assert [len(p.images) for p in mixed.values()] == [max(1, round(n * 2 / (2 * n)))] * 2


def test_kitti_share_is_checked_at_load():
    from common.config import ParamError, build
    from pipeline.params import DatasetParams

    assert build(DatasetParams, {"kitti_share": 0.142857}, "dataset").kitti_share == 0.142857
    with pytest.raises(ParamError, match=r"^dataset.kitti_share: must be in \(0, 1\), got 1.5$"):
        build(DatasetParams, {"kitti_share": 1.5}, "dataset")
