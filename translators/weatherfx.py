"""Physics-style baseline: albumentations' RandomFog / RandomRain plus an overcast colour grade.

No learning: `fit` only records which weather this instance serves (the `weather` field, or
else the weather the pipeline passes, else the name of the `out` directory, as in
outputs/translators/<weather>). Every frame gets its own albumentations seed drawn
from the global torch RNG (which the pipeline seeds), so a run is reproducible frame by frame.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from common.config import ParamError, build, check_int, check_range
from common.errors import UserError
from common.files import atomic_write_json
from common.weathers import WEATHERS
from translators.io import read_config


class UnknownWeatherError(UserError):
    """The weather to imitate is not one of fog, rain, overcast."""


@dataclass
class Grade:
    """The flat light of a cloudy day; each is a [min, max] factor range sampled per frame
    (1 = unchanged): brightness scales, contrast and saturation blend towards grey."""

    brightness: list[float] = field(default_factory=lambda: [0.8, 0.95])
    contrast: list[float] = field(default_factory=lambda: [0.6, 0.8])
    saturation: list[float] = field(default_factory=lambda: [0.4, 0.7])

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "saturation"):
            check_min_max(name, getattr(self, name), 0.0, 10.0)


def check_min_max(name: str, pair: list[float], low: float, high: float) -> None:
    """A [min, max] range param: two numbers, low <= min <= max <= high."""
    if len(pair) != 2 or not pair[0] <= pair[1]:
        raise ParamError(f"{name}: must be [min, max] with min <= max, got {pair!r}")
    for value in pair:
        check_range(name, value, low, high)


# Per-weather grades are subclasses (not factory arguments) so that a partial override in
# params.yaml keeps the other fields of *that weather's* defaults.
@dataclass
class FogGrade(Grade):
    # RandomFog's particles cluster at the centre and are sparse on wide frames (1242×375);
    # a brighter, flatter grade supplies the whitish airlight of fog over the whole frame.
    brightness: list[float] = field(default_factory=lambda: [1.15, 1.35])
    contrast: list[float] = field(default_factory=lambda: [0.4, 0.6])
    saturation: list[float] = field(default_factory=lambda: [0.3, 0.5])


@dataclass
class RainGrade(Grade):
    contrast: list[float] = field(default_factory=lambda: [0.7, 0.9])


@dataclass
class FogEffect:
    fog_coef_range: list[float] = field(default_factory=lambda: [0.5, 0.8])  # fog intensity
    alpha_coef: float = 0.08  # transparency of each fog particle
    grade: FogGrade = field(default_factory=FogGrade)

    def __post_init__(self) -> None:
        check_min_max("fog_coef_range", self.fog_coef_range, 0.0, 1.0)
        check_range("alpha_coef", self.alpha_coef, 0.0, 1.0)


@dataclass
class RainEffect:
    rain_type: Literal["drizzle", "heavy", "torrential", "default"] = "drizzle"  # drop count
    slant_range: list[float] = field(default_factory=lambda: [-10.0, 10.0])  # degrees
    drop_length: int | None = None  # pixels; None = frame height // 8
    drop_width: int = 1
    blur_value: int = 3  # rainy-view blur kernel
    brightness_coefficient: float = 0.8
    grade: RainGrade = field(default_factory=RainGrade)

    def __post_init__(self) -> None:
        check_min_max("slant_range", self.slant_range, -20.0, 20.0)  # albumentations' bounds
        if self.drop_length is not None:
            check_int("drop_length", self.drop_length, minimum=1)
        check_int("drop_width", self.drop_width, minimum=1)
        check_int("blur_value", self.blur_value, minimum=1)
        check_range("brightness_coefficient", self.brightness_coefficient, 0.0, 1.0,
                    low_open=True)


@dataclass
class OvercastEffect:
    grade: Grade = field(default_factory=Grade)


@dataclass
class WeatherEffectsConfig:
    weather: Literal["fog", "rain", "overcast"] | None = None  # None: the fit out dir's name
    fog: FogEffect = field(default_factory=FogEffect)
    rain: RainEffect = field(default_factory=RainEffect)
    overcast: OvercastEffect = field(default_factory=OvercastEffect)


def _albumentations():
    # albumentations asks PyPI for a newer version when imported; nothing may go online here.
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import albumentations

    return albumentations


def build_effect(weather: str, cfg: WeatherEffectsConfig):
    """The albumentations pipeline for one weather (every step always applied)."""
    A = _albumentations()
    if weather not in WEATHERS:
        raise UnknownWeatherError(f"weatherfx: weather {weather!r} is not one of {WEATHERS}")
    try:
        return A.Compose(_steps(A, weather, cfg), seed=0)
    except Exception as error:  # albumentations validates its arguments (pydantic)
        raise UserError(f"translators.weatherfx.{weather}: {error}") from error


def _grade(A, grade: Grade):
    return A.ColorJitter(
        brightness=tuple(grade.brightness),
        contrast=tuple(grade.contrast),
        saturation=tuple(grade.saturation),
        hue=(0.0, 0.0),
        p=1.0,
    )


def _steps(A, weather: str, cfg: WeatherEffectsConfig) -> list:
    if weather == "fog":
        fog = cfg.fog
        return [
            _grade(A, fog.grade),
            A.RandomFog(fog_coef_range=tuple(fog.fog_coef_range), alpha_coef=fog.alpha_coef, p=1.0),
        ]
    if weather == "rain":
        rain = cfg.rain
        return [
            _grade(A, rain.grade),
            A.RandomRain(
                slant_range=tuple(rain.slant_range),
                drop_length=rain.drop_length,
                drop_width=rain.drop_width,
                blur_value=rain.blur_value,
                brightness_coefficient=rain.brightness_coefficient,
                rain_type=rain.rain_type,
                p=1.0,
            ),
        ]
    return [_grade(A, cfg.overcast.grade)]


class WeatherEffects:
    name = "weatherfx"
    Config = WeatherEffectsConfig
    frames = "clone"
    trains_distributed = False

    def __init__(self) -> None:
        self.cfg = WeatherEffectsConfig()
        self.weather: str | None = None
        self.effect = None

    def fit(self, source: list[Path], target: list[Path], out: Path, cfg: Any = None, *,
            weather: str | None = None, device: torch.device | None = None,
            checkpoint_dir: Path | None = None) -> None:
        cfg = cfg if cfg is not None else WeatherEffectsConfig()
        weather = cfg.weather or weather or Path(out).name
        if weather not in WEATHERS:
            origin = ("translators.weatherfx.weather" if cfg.weather else
                      f"the name of the output directory {out}")
            raise UnknownWeatherError(
                f"weatherfx: weather {weather!r} (from {origin}) is not one of "
                f"{', '.join(WEATHERS)}; name the output directory after the weather or set "
                "translators.weatherfx.weather (python -m translators: --set weather=fog)"
            )
        build_effect(weather, cfg)  # bad parameters fail at fit, not at translate time
        atomic_write_json(
            out / "config.json",
            {"translator": self.name, "weather": weather, "config": asdict(cfg)},
        )

    def load(self, out: Path, device: torch.device | str = "cpu") -> None:
        saved = read_config(out)
        self.cfg = build(WeatherEffectsConfig, saved["config"], f"{out / 'config.json'}: config")
        self.weather = saved["weather"]
        self.effect = build_effect(self.weather, self.cfg)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Runs on the CPU (albumentations is OpenCV/NumPy); returns on the input's device."""
        if self.effect is None:
            raise RuntimeError("WeatherEffects: call load(out, device) first")
        frames = images.detach().clamp(0, 1).mul(255).round().to("cpu", torch.uint8)
        seeds = torch.randint(0, 2**31 - 1, (len(frames),))  # the pipeline seeds torch
        results = []
        for frame, seed in zip(frames.permute(0, 2, 3, 1).numpy(), seeds.tolist(), strict=True):
            self.effect.set_random_seed(seed)
            results.append(self.effect(image=np.ascontiguousarray(frame))["image"])
        out = torch.from_numpy(np.stack(results)).permute(0, 3, 1, 2).float().div(255.0)
        return out.to(images.device, images.dtype)
