"""One source per default: each knob means what its dataclass field says (DetectorConfig,
EvalConfig, GapConfig, SampleConfig, a translator's Config, pipeline/params.py's sections), and
params.yaml holds that default unless the key is listed below with the reason it differs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from pipeline.params import load_params, params_from_raw

REPO = Path(__file__).resolve().parents[1]

DEMO_DETECTOR = "demo-sized: the sample world's 320-px frames, trained in minutes on 2 CPU cores"
DEMO_CYCLEGAN = ("demo-sized CycleGAN (the defaults are the paper's): trains in minutes on 2 "
                 "CPU cores")
DEMO_CUT = ("demo-sized CUT (the defaults are the paper's nets, 256 patches per layer): trains "
            "in minutes on 2 CPU cores")
DEMO_NST = "demo-sized style transfer (the defaults are the study's layers and step count)"
DEMO_WORLD = "the sample world's size: data.sample is set by the study's owner"
STUDY = "the study's own grid settings: set by the study's owner"

# dotted params.yaml key -> why its value is not the dataclass default
STUDY_CPU = "the sample world's study within ~2 h on 2 CPU cores"
DELIBERATE_OVERRIDES = {
    "detector.epochs": DEMO_DETECTOR,
    "detector.imgsz": DEMO_DETECTOR,
    "detector.nbs": "one optimiser step per batch: the tiny sample set learns faster",
    "detector.rect": "320x97 frames train at 320x128, not 320x320: ~1.5x faster CPU epochs",
    "detector.freeze": "fine-tune the pretrained start's neck and head only: the study's power",
    **{f"translators.cyclegan.{key}": DEMO_CYCLEGAN for key in (
        "ngf", "ndf", "n_blocks", "preprocess", "crop_size", "batch_size", "n_epochs",
        "n_epochs_decay", "lr", "num_workers", "sample_every", "score_every", "score_frames")},
    **{f"translators.cut.{key}": DEMO_CUT for key in (
        "ngf", "ndf", "n_blocks", "preprocess", "crop_size", "batch_size", "n_epochs",
        "n_epochs_decay", "lr", "num_workers", "sample_every", "num_patches", "score_every",
        "score_frames")},
    **{f"translators.nst.{key}": DEMO_NST for key in ("steps", "max_size", "style_layers")},
    **{f"data.sample.{key}": DEMO_WORLD for key in (
        "kitti_frames", "vkitti2_scenes", "vkitti2_frames_per_scene",
        "bdd_val_frames_per_weather", "pretrain_frames")},
    # the sample world's detectors start from its own pretrained weights (the real recipe: COCO)
    "detector.model": "fine-tune stage pretrain_detector's weights, the sample world's COCO",
    "pretrain.epochs": "the sample world pretrains; the default 0 suits the real datasets",
    "study.oracle_set": STUDY,
    # the full grid (+ fda, + the oracle) is for GPUs; 12 runs are ~2 h on a 2-core CPU
    "study.translators": STUDY_CPU,
    "study.oracle": STUDY_CPU,
}


def flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dataclasses as dotted keys, down to the values params.yaml spells (lists, mappings such
    as classes.kitti or study.set stay whole)."""
    if dataclasses.is_dataclass(value):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        if prefix == "translators.":  # TranslatorsParams: device + one Config per translator
            fields = {"device": fields["device"], **fields["configs"]}
        out: dict[str, Any] = {}
        for name, field_value in fields.items():
            out |= flat(field_value, f"{prefix}{name}.")
        return out
    return {prefix.removesuffix("."): value}


def differences(params: Any, defaults: Any) -> dict[str, tuple[Any, Any]]:
    ours, theirs = flat(params), flat(defaults)
    return {key: (theirs[key], ours[key]) for key in ours if ours[key] != theirs[key]}


def test_params_yaml_differs_from_the_defaults_only_where_listed():
    drift = differences(load_params(REPO / "params.yaml"), params_from_raw({}))
    unlisted = {key: change for key, change in drift.items() if key not in DELIBERATE_OVERRIDES}
    assert unlisted == {}, "params.yaml differs from the dataclass default (default, value)"
    stale = [key for key in DELIBERATE_OVERRIDES if key not in drift]
    assert stale == [], "listed as overrides but equal to the default: drop them from the list"


def test_a_changed_value_shows_as_drift():
    params = load_params(REPO / "params.yaml")
    params.evaluation.iou = 0.75
    params.translators.configs["fda"].beta = 0.5
    drift = differences(params, params_from_raw({}))
    assert drift["evaluation.iou"] == (0.5, 0.75) and drift["translators.fda.beta"] == (0.01, 0.5)
    assert set(drift) - set(DELIBERATE_OVERRIDES) == {"evaluation.iou", "translators.fda.beta"}
