"""Read params.yaml once, validate it once, and hand out plain typed objects.

Each package owns the dataclass of its own params (detection.DetectorConfig,
evaluation.EvalConfig, a translator's Config, ...). This module only knows how to build any such
dataclass from a YAML mapping, so a new knob is added in one place: its dataclass field.
Any unknown key or bad value stops with one line that names the key and what is allowed.
"""

from __future__ import annotations

import copy
import dataclasses
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

import translators
from data.sample import SampleConfig
from detection import DetectorConfig
from evaluation import EvalConfig, EvalInputError
from evaluation.core import MAX_REPLICATES, check_config
from evaluation.gap import GapConfig

WEATHERS = ("fog", "rain", "overcast")
# vKITTI2 variation name -> the BDD100K `weather` attribute value of the matching real frames.
BDD_WEATHER = {"fog": "foggy", "rain": "rainy", "overcast": "overcast"}


class ParamError(ValueError):
    """A bad params.yaml; the message names the key."""


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


@dataclass
class VKitti2Selection:
    scenes: list[str] | None = None
    variations: list[str] = field(default_factory=lambda: ["clone", "fog", "rain", "overcast"])
    cameras: list[str] = field(default_factory=lambda: ["Camera_0"])
    stride: int = 1
    occupancy_threshold: float = 0.75


@dataclass
class DataParams:
    source: Literal["sample", "real"] = "sample"
    sample: SampleConfig = field(default_factory=SampleConfig)
    real: RealPaths = field(default_factory=RealPaths)
    vkitti2: VKitti2Selection = field(default_factory=VKitti2Selection)


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


@dataclass
class DatasetParams:
    # kitti_vkitti2: the study (KITTI + vKITTI2 + its translated weather). bdd100k: the target
    # domain's own labelled train frames instead, the in-domain upper bound ("oracle")
    train_on: Literal["kitti_vkitti2", "bdd100k"] = "kitti_vkitti2"
    val_fraction: float = 0.2  # held-out share of the real training frames (KITTI, or BDD100K
    # train), ultralytics' validation set for picking the best epoch; BDD100K val stays unseen

    def __post_init__(self) -> None:
        if not 0.0 < self.val_fraction < 1.0:
            raise ParamError(f"dataset.val_fraction: must be between 0 and 1 (exclusive), "
                             f"got {self.val_fraction!r}")


# The study sets these itself in every experiment (the grid's axes, and the oracle's train frames).
STUDY_GRID_KEYS = ("seed", "translator", "dataset.train_on")


@dataclass
class StudyParams:
    """`study:` in params.yaml: the grid `python -m pipeline.study` runs as DVC experiments."""

    translators: list[str] = field(
        default_factory=lambda: ["none", "cyclegan", "fda", "weatherfx"])  # first = baseline
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # training seeds (`seed`)
    oracle: bool = True  # + dataset.train_on=bdd100k (translator none) per seed: in-domain
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
        allowed = translators.names()
        for i, name in enumerate(self.translators):
            if name not in allowed:
                raise ParamError(f"study.translators[{i}]: {name!r} is not allowed; "
                                 f"choose from {', '.join(allowed)}")
        if len(self.translators) < 2 or len(set(self.translators)) != len(self.translators):
            raise ParamError("study.translators: needs at least two different translators (the "
                             f"first is the baseline), got {self.translators!r}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ParamError(f"study.seeds: needs one or more different seeds, got {self.seeds!r}")
        for i, seed in enumerate(self.seeds):
            if seed < 0:
                raise ParamError(f"study.seeds[{i}]: must be >= 0, got {seed}")
        if not 100 <= self.bootstrap <= MAX_REPLICATES:
            raise ParamError(f"study.bootstrap: must be between 100 and {MAX_REPLICATES} "
                             f"replicates, got {self.bootstrap}")
        if not 0.0 < self.ci < 1.0:
            raise ParamError(f"study.ci: must be between 0 and 1 (exclusive), got {self.ci!r}")


@dataclass
class Params:
    seed: int = 0
    data: DataParams = field(default_factory=DataParams)
    classes: ClassParams = field(default_factory=ClassParams)
    translator: str = "cyclegan"
    weathers: list[Literal["fog", "rain", "overcast"]] = field(
        default_factory=lambda: list(WEATHERS))
    translators: TranslatorsParams = field(default_factory=lambda: TranslatorsParams())
    dataset: DatasetParams = field(default_factory=DatasetParams)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    gap: GapConfig = field(default_factory=GapConfig)  # stage gap: the domain gap, label-free
    study: StudyParams = field(default_factory=StudyParams)

    def translator_config(self) -> Any:
        """The params dataclass of the chosen translator."""
        return self.translators.configs[self.translator]


@dataclass
class TranslatorsParams:
    """`translators:` in params.yaml: the device, and one section per registered translator."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    configs: dict[str, Any] = field(default_factory=dict)


def load_params(path: Path = Path("params.yaml")) -> Params:
    if not path.exists():
        raise ParamError(f"{path} not found; run from the repository root")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ParamError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ParamError(f"{path} must be a mapping of keys to values")
    params = params_from_raw(raw)
    _check_study_set(raw, params.study.set, "study.set")
    _check_study_set(raw, {**params.study.set, **params.study.oracle_set}, "study.oracle_set")
    return params


def params_from_raw(raw: dict) -> Params:
    """Validate a params.yaml mapping (as parsed) into Params."""
    raw = dict(raw)
    translators_raw = raw.pop("translators", {}) or {}
    if not isinstance(translators_raw, dict):
        raise ParamError("translators: must be a mapping")
    translators_raw = dict(translators_raw)
    device = _coerce(get_type_hints(TranslatorsParams)["device"],
                     translators_raw.pop("device", "auto"), "translators.device")
    if isinstance(raw.get("detector"), dict) and "seed" in raw["detector"]:
        raise ParamError("detector.seed: unknown key; the top-level `seed` seeds the whole graph")
    params = build(Params, raw, "")
    if params.translator not in translators.names():
        raise ParamError(
            f"translator: {params.translator!r} is not allowed; "
            f"choose one of {', '.join(translators.names())}"
        )
    if len(set(params.weathers)) != len(params.weathers):
        raise ParamError("weathers: each weather may appear once")
    params.translators = TranslatorsParams(device, _translator_configs(translators_raw))
    # the detector's seed is the global seed, so one knob reproduces the whole graph
    params.detector.seed = params.seed
    for name in params.evaluation.classes:
        if name not in params.classes.names:
            raise ParamError(
                f"evaluation.classes: {name!r} is not a detector class; "
                f"classes.names are {', '.join(params.classes.names)}"
            )
    try:  # ranges (iou, edges, report_score, ...): at load, not first in the evaluate stage
        check_config(params.evaluation)
    except EvalInputError as err:
        raise ParamError(str(err)) from None
    return params


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
        except ValueError as err:  # ParamError, or a package's own check (e.g. detector.epochs)
            raise ParamError(f"{where}: {err}") from None


def without_study(raw: dict) -> dict:
    return {key: value for key, value in raw.items() if key != "study"}


def with_study_set(raw: dict, overrides: dict[str, Any]) -> Params:
    """What every experiment of the study shares: params.yaml (its `study` aside) + study.set."""
    return params_from_raw(with_overrides(without_study(raw), overrides))


def _translator_configs(raw: dict[str, Any]) -> dict[str, Any]:
    configs = {}
    for name in translators.names():
        configs[name] = build(translators.config_class(name), raw.pop(name, {}) or {},
                              f"translators.{name}")
    if raw:
        key = next(iter(raw))
        raise ParamError(
            f"translators.{key}: unknown key; allowed: device, {', '.join(translators.names())}"
        )
    return configs


def build(cls: type, raw: Any, key: str) -> Any:
    """Build dataclass `cls` from a mapping, checking every key and value against its fields."""
    where = key or "params.yaml"
    if not isinstance(raw, dict):
        raise ParamError(f"{where}: expected a mapping, got {raw!r}")
    hints = get_type_hints(cls)
    allowed = [f.name for f in dataclasses.fields(cls) if f.init]
    kwargs = {}
    for name, value in raw.items():
        sub = f"{key}.{name}" if key else str(name)
        if name not in allowed:
            raise ParamError(f"{sub}: unknown key; allowed: {', '.join(allowed)}")
        kwargs[name] = _coerce(hints[name], value, sub)
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key)
    if origin is Literal:
        if value not in get_args(tp):
            allowed = ", ".join(str(a) for a in get_args(tp))
            raise ParamError(f"{key}: {value!r} is not allowed; choose one of {allowed}")
        return value
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, key)
            except ParamError as err:
                errors.append(str(err))
        raise ParamError(errors[0] if len(errors) == 1 else f"{key}: {value!r} is not allowed")
    if origin is list:
        if not isinstance(value, list):
            raise ParamError(f"{key}: expected a list, got {value!r}")
        (item,) = get_args(tp) or (Any,)
        return [_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ParamError(f"{key}: expected a list, got {value!r}")
        args = get_args(tp)
        item = args[0] if args else Any
        return tuple(_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamError(f"{key}: expected a mapping, got {value!r}")
        _, item = get_args(tp) or (str, Any)
        return {str(k): _coerce(item, v, f"{key}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ParamError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamError(f"{key}: expected a whole number, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ParamError(f"{key}: expected text, got {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, str):
            raise ParamError(f"{key}: expected a path, got {value!r}")
        return Path(value)
    raise ParamError(f"{key}: unsupported parameter type {tp!r} (a bug in the dataclass)")
