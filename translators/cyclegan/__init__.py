"""CycleGAN (Zhu et al. 2017): unpaired sim -> real translation, the project's default."""

from translators.cyclegan.config import CycleGANConfig

__all__ = ["CycleGAN", "CycleGANConfig"]


def __getattr__(name: str):
    # the translator (torch) on first use only: params.yaml's checks import the config module,
    # which runs this file first, in every stage
    if name == "CycleGAN":
        from translators.cyclegan.translator import CycleGAN

        return CycleGAN
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
