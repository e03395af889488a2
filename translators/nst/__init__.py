"""Neural style transfer translator (Gatys et al., VGG19 features)."""

from translators.nst.config import NSTConfig

__all__ = ["NSTConfig", "NeuralStyleTransfer", "VGGWeightsNotFoundError"]


def __getattr__(name: str):
    # the translator and VGG19 (torch) on first use only, as in translators/cyclegan/__init__.py
    if name == "NeuralStyleTransfer":
        from translators.nst.translator import NeuralStyleTransfer

        return NeuralStyleTransfer
    if name == "VGGWeightsNotFoundError":
        from translators.nst.vgg import VGGWeightsNotFoundError

        return VGGWeightsNotFoundError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
