"""The params of the translators that are one module each (`translators.<name>` in
params.yaml): here, without torch, because every stage checks every translator's section when it
loads params.yaml (translators/base.py's _CONFIGS), including stages that never run one. The
package translators keep theirs in their own config.py (cyclegan, cut, nst).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from common.config import ParamError, check_int, check_range

# --- none: the baseline -----------------------------------------------------------------------

@dataclass
class NoTranslatorConfig:
    """No params: the baseline has nothing to tune."""


# --- ideal: the sample world's renders -------------------------------------------------------

@dataclass
class IdealTranslatorConfig:
    """No params: the renders are part of the sample world (its own seed decides them)."""


# --- fda -------------------------------------------------------------------------------------

@dataclass
class FDAConfig:
    beta: float = 0.01  # half-width of the swapped window / min(H, W); the paper's 0.01
    n_references: int = 100  # target frames kept by fit (a seeded subset), one drawn per image

    def __post_init__(self) -> None:
        # beta is the window's half-width over the shorter side: at 0.5 the window is the whole
        # spectrum (the reference image itself); 0 swaps nothing (the identity, a sanity check)
        check_range("beta", self.beta, 0.0, 0.5)
        check_int("n_references", self.n_references, minimum=1)


# --- weatherfx -------------------------------------------------------------------------------

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
