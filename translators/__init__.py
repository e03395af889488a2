"""Image-to-image translators from synthetic to real bad-weather looks, chosen by name."""

from translators.base import Translator, config_class, get, names

__all__ = ["Translator", "config_class", "get", "names"]
