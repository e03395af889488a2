"""Stage pretrain_detector: the sample world's stand-in for COCO weights, trained once.

The world writes its pretraining frames apart from every dataset (the datasets are the same bytes
with or without them), in KITTI's layout. In a tiny repository with pretraining on, `dvc repro`
trains the checkpoint, the stages that fine-tune it accept it, and the pretraining depends on
neither the run's seed nor detector.epochs: every run of a study starts from the same weights.
(Fine-tuning a checkpoint itself: tests/test_detection_pretrained.py.)
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml
from tiny_repo import make_repo, run

from data import read_manifest
from data.kitti import read_kitti_detection
from data.sample import SampleConfig, write_sample_world
from detection.model_source import check_detector_model, inspect_model

WORLD = {"kitti_frames": 3, "vkitti2_scenes": 1, "vkitti2_frames_per_scene": 2,
         "bdd_train_frames_per_weather": 1, "bdd_val_frames_per_weather": 1, "width": 96}


def file_digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_pretraining_frames_leave_the_datasets_unchanged(tmp_path):
    without = write_sample_world(tmp_path / "without", SampleConfig(**WORLD))
    world = write_sample_world(tmp_path / "with", SampleConfig(**WORLD, pretrain_frames=4))
    for name in ("kitti", "vkitti2", "bdd100k", "ideal"):
        assert file_digests(tmp_path / "with" / name) == file_digests(tmp_path / "without" / name)
    assert not (tmp_path / "without" / "pretrain").exists()
    assert without.pretrain_root == tmp_path.resolve() / "without" / "pretrain"

    # KITTI's layout, read by the KITTI reader; its own frames, not KITTI's
    frames = read_kitti_detection(world.pretrain_root, {"Car": "car", "Van": "car",
                                                        "Truck": "truck"})
    assert len(frames.images) == 4
    kitti = set(file_digests(world.kitti_root / "training" / "image_2").values())
    pretrain = file_digests(world.pretrain_root / "training" / "image_2")
    assert len(pretrain) == 4 and not kitti & set(pretrain.values())


def set_params(root: Path, **dotted) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    for key, value in dotted.items():
        node, *path, last = [params, *key.split(".")]
        for part in path:
            node = node[part]
        node[last] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def stale(root: Path, stage: str) -> bool:
    return "up to date" not in run(root, "dvc", "status", stage)


def test_one_pretrained_checkpoint_for_every_seed_and_length(tmp_path, monkeypatch):
    root = make_repo(tmp_path / "repo")
    set_params(root, **{"translator": "none", "data.sample.pretrain_frames": 8,
                        "pretrain.epochs": 1, "detector.model": "outputs/pretrain/model.pt"})
    run(root, "git", "commit", "-qam", "pretraining on")
    run(root, "dvc", "repro", "pretrain_detector")

    assert len(read_manifest(root / "outputs/ingest/pretrain").images) == 8
    pretrain_args = yaml.safe_load(
        (root / "outputs/resume/pretrain/detector/args.yaml").read_text())
    assert (pretrain_args["model"], pretrain_args["epochs"], pretrain_args["seed"]) == (
        "yolov5n.yaml", 1, 0)
    monkeypatch.chdir(root)  # what train_detector and predict check first: a checkpoint they take
    check_detector_model("outputs/pretrain/model.pt", 128)
    assert inspect_model("outputs/pretrain/model.pt").names == ("car", "truck")

    # another training seed or length: the detector re-trains, the pretraining does not
    set_params(root, **{"seed": 1, "detector.epochs": 3})
    assert not stale(root, "pretrain_detector")
    # the oracle's world (more BDD100K train frames): ingest re-runs, the pretraining does not;
    # it depends on its frames' hashes, which cover every file it reads
    set_params(root, **{"data.sample.bdd_train_frames_per_weather": 5})
    run(root, "dvc", "repro", "ingest")
    assert not stale(root, "pretrain_detector")
    frames = root / "outputs/ingest/sample_world/pretrain"
    files = sorted(f for f in frames.rglob("*") if f.is_file())
    assert (root / "outputs/ingest/pretrain/frames.sha256").read_text().splitlines() == [
        f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.relative_to(frames).as_posix()}"
        for f in files] and len(files) >= 16  # 8 images and their label files
    set_params(root, **{"pretrain.seed": 1})
    assert stale(root, "pretrain_detector")
