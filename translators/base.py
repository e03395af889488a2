"""The translator interface and the registry: the one place that lists every translator.

A translator turns clean synthetic frames into one weather look learned from (or imitating)
real BDD100K frames of that weather. Labels are reused unchanged, so a translator must keep
image size and geometry.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from common.errors import UserError

if TYPE_CHECKING:  # every stage loads params.yaml through here: torch costs ~4 CPU-s a process
    import torch

# name -> "module:Class". Imported lazily so that choosing `none` never imports torchvision's VGG.
_REGISTRY: dict[str, str] = {
    "none": "translators.none:NoTranslator",
    "cyclegan": "translators.cyclegan.translator:CycleGAN",
    "cut": "translators.cut.translator:CUT",
    "nst": "translators.nst.translator:NeuralStyleTransfer",
    "fda": "translators.fda:FourierDomainAdaptation",
    "weatherfx": "translators.weatherfx:WeatherEffects",
    "ideal": "translators.ideal:IdealTranslator",
}
# name -> "module:Class" of its params dataclass (its `Config`), in a module without torch:
# params.yaml checks every translator's section, in stages that never run one.
_CONFIGS: dict[str, str] = {
    "none": "translators.configs:NoTranslatorConfig",
    "cyclegan": "translators.cyclegan.config:CycleGANConfig",
    "cut": "translators.cut.config:CUTConfig",
    "nst": "translators.nst.config:NSTConfig",
    "fda": "translators.configs:FDAConfig",
    "weatherfx": "translators.configs:WeatherEffectsConfig",
    "ideal": "translators.configs:IdealTranslatorConfig",
}
FRAMES = ("clone", "rendered", "ideal")


class Scorer(Protocol):
    """How close translated frames come to the target look (lower is closer): what a GAN
    translator's training loop picks its best epoch by. The pipeline builds one from
    evaluation (evaluation/target_score.py), which translators may not import."""

    name: str  # what is measured, e.g. "kid": logged as DVCLive's score/<name>
    # what the score depends on (extractor, settings, target frames): a checkpoint scored with
    # another description is not resumed
    description: str

    def __call__(self, frames: list[np.ndarray]) -> float:
        """Score H×W×3 uint8 RGB frames (translated at full size, as the translate stage
        writes them)."""


class Translator(Protocol):
    name: str
    Config: type  # dataclass of this translator's params (`translators.<name>` in params.yaml)
    # Which frames the translate stage writes for weather W (one of FRAMES):
    #   "clone"    - this translator's output on the vKITTI2 clone frames (every learned one);
    #   "rendered" - vKITTI2's own rendered variation W, untouched (the baseline `none`);
    #   "ideal"    - the sample world's renders of the clone frames in W's real look (`ideal`:
    #                a perfect appearance translator, the headroom's measure; sample world only).
    frames: str
    # True if `fit` trains on several GPUs when started under torchrun (one process per GPU,
    # DDP): translator_train then launches it so for a list of GPUs; the others use the first.
    trains_distributed: bool

    def fit(self, source: list[Path], target: list[Path], out: Path, cfg: Any, *,
            weather: str | None = None, device: torch.device | None = None,
            checkpoint_dir: Path | None = None) -> None:
        """Learn from source (sim) and target (real, `weather`) frames; save into `out`.

        `checkpoint_dir` outlives a killed run (unlike `out`, which the pipeline writes
        atomically): a translator that trains for long resumes from what it finds there.
        """

    def load(self, out: Path, device: torch.device) -> None:
        """Load what `fit` saved in `out`, ready to translate on `device`."""

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """B×3×H×W float in [0, 1] -> same shape, same range."""


def names() -> list[str]:
    return list(_REGISTRY)


def get(name: str) -> Translator:
    """A new translator instance chosen by name."""
    if name not in _REGISTRY:
        raise UserError(f"unknown translator {name!r}; choose one of: {', '.join(_REGISTRY)}")
    module_name, class_name = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)()


def config_class(name: str) -> type:
    """The params dataclass of a translator, without importing the translator (nor torch)."""
    if name not in _CONFIGS:
        raise UserError(f"unknown translator {name!r}; choose one of: {', '.join(_REGISTRY)}")
    module_name, class_name = _CONFIGS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)
