"""CUT and FastCUT (Park et al. 2020): one-sided sim -> real translation by patch contrast."""

from translators.cut.config import CUTConfig

__all__ = ["CUT", "CUTConfig"]


def __getattr__(name: str):
    # the translator (torch) on first use only, as in translators/cyclegan/__init__.py
    if name == "CUT":
        from translators.cut.translator import CUT

        return CUT
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
