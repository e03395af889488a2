"""Neural style transfer translator (Gatys et al., VGG19 features)."""

from translators.nst.translator import NeuralStyleTransfer, NSTConfig
from translators.nst.vgg import VGGWeightsNotFoundError

__all__ = ["NSTConfig", "NeuralStyleTransfer", "VGGWeightsNotFoundError"]
