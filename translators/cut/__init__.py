"""CUT and FastCUT (Park et al. 2020): one-sided sim -> real translation by patch contrast."""

from translators.cut.config import CUTConfig
from translators.cut.translator import CUT

__all__ = ["CUT", "CUTConfig"]
