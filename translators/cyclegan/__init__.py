"""CycleGAN (Zhu et al. 2017): unpaired sim -> real translation, the project's default."""

from translators.cyclegan.config import CycleGANConfig
from translators.cyclegan.translator import CycleGAN

__all__ = ["CycleGAN", "CycleGANConfig"]
