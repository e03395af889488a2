"""Read params.yaml once, validate it once, and hand out plain typed objects.

Each package owns the dataclass of its own params (detection.DetectorConfig,
evaluation.EvalConfig, a translator's Config, ...), which checks its own fields when built;
common.config builds any such dataclass from YAML. A new knob is therefore added in one place: its
dataclass field (with its check in that class's `__post_init__`). This module holds the sections
that belong to the graph itself and the checks that span sections (class-map targets must be
detector classes, ...). Any unknown key or bad value stops with one line that names the key and
what is allowed, before any stage runs.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from common.config import ParamError, build, check_int, check_range, read_yaml_file
from common.runtime import normalise_device
from common.weathers import WEATHERS
from data.sample.config import SampleConfig
from detection.config import PRETRAIN_CHECKPOINT, DetectorConfig, PretrainConfig
from evaluation.config import MAX_REPLICATES, EvalConfig, GapConfig
from translators import base as translators

# A scene, camera, variation or sequence name is one plain path component: it becomes part of
# the paths the readers open, so `../../etc` must not get that far.
PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_plain_names(name: str, values: list[str] | None) -> None:
    for i, value in enumerate(values or []):
        if not PLAIN_NAME.match(value) or ".." in value:
            raise ParamError(f"{name}[{i}]: {value!r} is not allowed; a plain name such as "
                             "Camera_0 or Scene01 (letters, digits, _ . -; no path)")


@dataclass
class RealPaths:
    """Where the real downloads are (used when data.source is `real`)."""

    kitti_root: str = "/data/kitti"
    kitti_format: Literal["object", "tracking"] = "object"
    kitti_tracking_sequences: list[str] | None = None
    vkitti2_root: str = "/data/vkitti2"
    vkitti2_textgt_root: str | None = None
    bdd100k_images: str = "/data/bdd100k/images/100k"
    bdd100k_labels_train: str = "/data/bdd100k/labels/det_20/det_train.json"
    bdd100k_labels_val: str = "/data/bdd100k/labels/det_20/det_val.json"

    def __post_init__(self) -> None:
        check_plain_names("kitti_tracking_sequences", self.kitti_tracking_sequences)


@dataclass
class VKitti2Selection:
    scenes: list[str] | None = None
    variations: list[str] = field(default_factory=lambda: ["clone", "fog", "rain", "overcast"])
    cameras: list[str] = field(default_factory=lambda: ["Camera_0"])
    stride: int = 1
    occupancy_threshold: float = 0.75

    def __post_init__(self) -> None:
        for name in ("scenes", "variations", "cameras"):
            check_plain_names(name, getattr(self, name))
        if not self.variations or not self.cameras:
            raise ParamError("variations and cameras: need at least one each")
        check_int("stride", self.stride, minimum=1)
        # an occupancy ratio is a share of the box: 0 = nothing occluded, 1 = every box
        check_range("occupancy_threshold", self.occupancy_threshold, 0.0, 1.0)


@dataclass
class DataParams:
    source: Literal["sample", "real"] = "sample"
    sample: SampleConfig = field(default_factory=SampleConfig)
    real: RealPaths = field(default_factory=RealPaths)
    vkitti2: VKitti2Selection = field(default_factory=VKitti2Selection)
    # follow symlinks in a dataset tree that resolve outside its root (data/roots.py)
    allow_symlinks_outside_root: bool = False


@dataclass
class ClassParams:
    names: list[str] = field(default_factory=lambda: ["car", "truck"])
    kitti: dict[str, str] = field(
        default_factory=lambda: {"Car": "car", "Van": "car", "Truck": "truck"}
    )
    vkitti2: dict[str, str] = field(
        default_factory=lambda: {"Car": "car", "Van": "car", "Truck": "truck"}
    )
    bdd100k: dict[str, str] = field(default_factory=lambda: {"car": "car", "truck": "truck"})

    def __post_init__(self) -> None:
        if not self.names or len(set(self.names)) != len(self.names):
            raise ParamError(f"names: needs one or more different class names, got {self.names!r}")
        for dataset in ("kitti", "vkitti2", "bdd100k"):
            for source, target in getattr(self, dataset).items():
                if target not in self.names:
                    raise ParamError(f"{dataset}.{source}: {target!r} is not a detector class; "
                                     f"classes.names are {', '.join(self.names)}")


@dataclass
class DatasetParams:
    # kitti_vkitti2: the study (KITTI + vKITTI2 + its translated weather). bdd100k: the target
    # domain's own labelled train frames instead, the in-domain upper bound ("oracle")
    train_on: Literal["kitti_vkitti2", "bdd100k"] = "kitti_vkitti2"
    val_fraction: float = 0.2  # held-out share of the real training frames (KITTI, or BDD100K
    # train), ultralytics' validation set for picking the best epoch; BDD100K val stays unseen
    # KITTI's share of the kitti_vkitti2 training frames (KITTI subsampled to it, seeded); null =
    # every KITTI train frame. 0.142857 (1/7) is the original study's mix (presets/)
    kitti_share: float | None = None

    def __post_init__(self) -> None:
        check_range("val_fraction", self.val_fraction, 0.0, 1.0, low_open=True, high_open=True)
        if self.kitti_share is not None:
            check_range("kitti_share", self.kitti_share, 0.0, 1.0, low_open=True,
                        high_open=True)


# The study sets these itself in every experiment (the grid's axes, and the oracle's train frames).
STUDY_GRID_KEYS = ("seed", "translator", "dataset.train_on")


@dataclass
class StudyParams:
    """`study:` in params.yaml: the grid `python -m pipeline.study` runs as DVC experiments."""

    translators: list[str] = field(
        default_factory=lambda: ["none", "cyclegan", "cut", "fda"])  # first = baseline
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # training seeds (`seed`)
    oracle: bool = True  # + dataset.train_on=bdd100k (translator none) per seed: in-domain
    # + translator ideal per seed: the perfect appearance translator (sample world only); its
    # Δ is the headroom, and each translator's share of it is reported
    ideal: bool = True
    bootstrap: int = 2000  # replicates of the seeds-then-images bootstrap
    ci: float = 0.95  # confidence level of every interval
    # extra `dvc exp run -S key=value` for every experiment, e.g. {detector.epochs: 20};
    # checked at load against the params they would produce
    set: dict[str, bool | int | float | str | None] = field(default_factory=dict)
    # ... and for the oracle's experiments only, e.g. {data.sample.bdd_train_frames_per_weather:
    # 70} so that it trains on as many frames as the others; its BDD100K val frames must stay
    # those of the others (the study pairs runs on identical val frames and labels)
    oracle_set: dict[str, bool | int | float | str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        allowed = [name for name in translators.names() if name != "ideal"]  # study.ideal
        for i, name in enumerate(self.translators):
            if name not in allowed:
                raise ParamError(f"translators[{i}]: {name!r} is not allowed; "
                                 f"choose from {', '.join(allowed)}")
        if len(self.translators) < 2 or len(set(self.translators)) != len(self.translators):
            raise ParamError("translators: needs at least two different translators (the "
                             f"first is the baseline), got {self.translators!r}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ParamError(f"seeds: needs one or more different seeds, got {self.seeds!r}")
        for i, seed in enumerate(self.seeds):
            check_int(f"seeds[{i}]", seed, minimum=0)
        check_int("bootstrap", self.bootstrap, minimum=100, maximum=MAX_REPLICATES)
        check_range("ci", self.ci, 0.0, 1.0, low_open=True, high_open=True)


@dataclass
class TranslatorsParams:
    """`translators:` in params.yaml: the device, and one section per registered translator
    (each built as that translator's own Config; see `build_translators`)."""

    # auto | cpu | cuda | GPU indices ("0,1", 0 or [0, 1]), normalised to a string
    # (common.runtime.normalise_device); several GPUs: translator_train runs torchrun
    device: str = "auto"
    configs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Params:
    seed: int = 0
    data: DataParams = field(default_factory=DataParams)
    classes: ClassParams = field(default_factory=ClassParams)
    translator: str = "cut"  # the study's best share of the headroom (README)
    weathers: list[Literal["fog", "rain", "overcast"]] = field(
        default_factory=lambda: list(WEATHERS))
    translators: TranslatorsParams = field(default_factory=TranslatorsParams)
    dataset: DatasetParams = field(default_factory=DatasetParams)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)  # the sample world's
    # stand-in for COCO weights (stage pretrain_detector)
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    gap: GapConfig = field(default_factory=GapConfig)  # stage gap: the domain gap, label-free
    study: StudyParams = field(default_factory=StudyParams)

    def __post_init__(self) -> None:
        # the checks that span sections; each section has checked its own fields already
        check_int("seed", self.seed, minimum=0)
        if self.translator not in translators.names():
            raise ParamError(f"translator: {self.translator!r} is not allowed; "
                             f"choose one of {', '.join(translators.names())}")
        if self.data.source == "real" and self.translator == "ideal":
            raise ParamError("translator: `ideal` needs the sample world's renders (the clone "
                             "frames drawn again in the real look); with data.source: real there "
                             "are none")
        self._check_pretrain()
        if not self.weathers or len(set(self.weathers)) != len(self.weathers):
            raise ParamError(f"weathers: each of fog, rain, overcast at most once, and at least "
                             f"one; got {self.weathers!r}")
        for name in self.evaluation.classes:
            if name not in self.classes.names:
                raise ParamError(f"evaluation.classes: {name!r} is not a detector class; "
                                 f"classes.names are {', '.join(self.classes.names)}")

    def _check_pretrain(self) -> None:
        """Pretraining needs the sample world's pretraining frames; the checkpoint needs it."""
        if self.pretrain.epochs and self.data.source == "real":
            raise ParamError("pretrain.epochs: pretraining trains on the sample world's own "
                             "pretraining frames; with data.source: real set pretrain.epochs: 0 "
                             "and fine-tune a COCO checkpoint under pretrained/ "
                             "(presets/original_study.yaml does)")
        if self.pretrain.epochs and not self.data.sample.pretrain_frames:
            raise ParamError("pretrain.epochs: there is nothing to pretrain on; set "
                             "data.sample.pretrain_frames (or pretrain.epochs: 0)")
        if Path(self.detector.model) == Path(PRETRAIN_CHECKPOINT) and not self.pretrain.epochs:
            raise ParamError(f"detector.model: {PRETRAIN_CHECKPOINT} is written only when "
                             f"pretrain.epochs > 0; set that, or detector.model to an "
                             f"architecture yaml (from scratch) or a checkpoint under pretrained/")

    def translator_config(self) -> Any:
        """The params dataclass of the chosen translator."""
        return self.translators.configs[self.translator]


def load_params(path: Path = Path("params.yaml")) -> Params:
    if not path.exists():
        raise ParamError(f"{path} not found; run from the repository root")
    raw = read_yaml_file(path)
    if raw is None:
        raise ParamError(f"{path} is empty; it must hold the graph's params (see the README)")
    if not isinstance(raw, dict):
        raise ParamError(f"{path} must be a mapping of keys to values")
    params = params_from_raw(raw)
    check_declared_weathers(path.parent / "dvc.yaml", params.weathers)
    _check_study_set(raw, params.study.set, "study.set")
    _check_study_set(raw, {**params.study.set, **params.study.oracle_set}, "study.oracle_set")
    return params


def check_study_arms(params: Params) -> None:
    """What only the study runs: its ideal arm exists on the sample world alone."""
    if params.data.source == "real" and params.study.ideal:
        raise ParamError("study.ideal: the ideal arm needs the sample world's renders (the clone "
                         "frames drawn again in the real look); with data.source: real set "
                         "study.ideal: false")


# a per-weather output path in dvc.yaml's top-level metrics: / plots:
_PER_WEATHER = re.compile(r"outputs/(?:translate|translators)/([^/]+)/")


def check_declared_weathers(dvc_yaml: Path, weathers: list[str]) -> None:
    """dvc.yaml's top-level metrics and plots cannot loop over `${weathers}` as its stages do, so
    they list each weather by hand; they must name exactly the weathers the stages run, or
    `dvc metrics show` / `dvc plots show` would warn about files no stage writes (or miss some)."""
    if not dvc_yaml.is_file():
        return  # params.yaml used outside the graph (tests, a study's copy)
    graph = read_yaml_file(dvc_yaml) or {}
    names = []
    for entry in [*(graph.get("metrics") or []), *(graph.get("plots") or [])]:
        names += [next(iter(entry)) if isinstance(entry, dict) else entry]
        if isinstance(entry, dict) and isinstance(entry[names[-1]], dict):
            names += list((entry[names[-1]].get("y") or {}) if isinstance(
                entry[names[-1]].get("y"), dict) else [])
    declared = {m.group(1) for name in names if (m := _PER_WEATHER.search(str(name)))}
    if declared and declared != set(weathers):
        raise ParamError(f"weathers: {', '.join(weathers)}, but {dvc_yaml}'s metrics:/plots: "
                         f"list outputs for {', '.join(sorted(declared))}; make its per-weather "
                         "entries match `weathers`")


def params_from_raw(raw: dict) -> Params:
    """Validate a params.yaml mapping (as parsed) into Params."""
    raw = dict(raw)
    translators_raw = raw.pop("translators", None)
    return build(Params, {**raw, "translators": build_translators(translators_raw)})


def build_translators(raw: Any) -> TranslatorsParams:
    """`translators:`: its device, and each registered translator's section as its own Config
    (a section left out gets that translator's defaults)."""
    raw = dict(raw or {}) if isinstance(raw, dict) or raw is None else raw
    if not isinstance(raw, dict):
        raise ParamError(f"translators: expected a mapping, got {raw!r}")
    device = normalise_device(raw.pop("device", "auto"), "translators.device")
    configs = {name: build(translators.config_class(name), raw.pop(name, None) or {},
                           f"translators.{name}") for name in translators.names()}
    if raw:
        raise ParamError(f"translators.{next(iter(raw))}: unknown key; allowed: device, "
                         f"{', '.join(translators.names())}")
    return TranslatorsParams(device, configs)


def with_overrides(raw: dict, overrides: dict[str, Any]) -> dict:
    """A copy of a params.yaml mapping with dotted `key: value` overrides applied, as
    `dvc exp run -S ++key=value` applies them (a missing key is added)."""
    out = copy.deepcopy(raw)
    for key, value in overrides.items():
        parts = key.split(".")
        if not all(parts):
            raise ParamError(f"{key!r}: not a dotted parameter name")
        node = out
        for depth, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ParamError(f"{key}: {'.'.join(parts[:depth + 1])} is a value, not a section")
        node[parts[-1]] = value
    return out


def _check_study_set(raw: dict, overrides: dict[str, Any], where: str) -> None:
    """study.set / study.oracle_set must name params that exist, with values they accept:
    load what they would make."""
    for key in overrides:
        if key in STUDY_GRID_KEYS or key.split(".")[0] == "study":
            raise ParamError(f"{where}.{key}: the study sets {', '.join(STUDY_GRID_KEYS)} "
                             "itself (use study.translators, study.seeds, study.oracle)")
    if overrides:
        try:
            with_study_set(raw, overrides)
        except ParamError as err:
            raise ParamError(f"{where}: {err}") from None


def without_study(raw: dict) -> dict:
    return {key: value for key, value in raw.items() if key != "study"}


def with_study_set(raw: dict, overrides: dict[str, Any]) -> Params:
    """What every experiment of the study shares: params.yaml (its `study` aside) + study.set."""
    return params_from_raw(with_overrides(without_study(raw), overrides))
