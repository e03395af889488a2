"""Physics-style baseline: albumentations' RandomFog / RandomRain plus an overcast colour grade.

No learning: `fit` only records which weather this instance serves (the `weather` field, or
else the weather the pipeline passes, else the name of the `out` directory, as in
outputs/translators/<weather>). Every frame gets its own albumentations seed drawn
from the global torch RNG (which the pipeline seeds), so a run is reproducible frame by frame.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.config import build
from common.errors import UserError
from common.files import atomic_write_json
from common.weathers import WEATHERS
from translators.configs import Grade, WeatherEffectsConfig
from translators.io import read_config


class UnknownWeatherError(UserError):
    """The weather to imitate is not one of fog, rain, overcast."""


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
