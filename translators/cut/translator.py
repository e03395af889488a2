"""The `cut` translator (CUT / FastCUT): fit trains (resumably), load + __call__ run G."""

from __future__ import annotations

from torch import nn

from translators.cut.config import CUTConfig
from translators.cut.model import WEIGHTS, CUTModel
from translators.cyclegan.networks import build_discriminator, build_resnet_generator
from translators.generator import GeneratorTranslator


class CUT(GeneratorTranslator):
    name = "cut"
    Config = CUTConfig
    model_class = CUTModel
    weights = WEIGHTS
    build_generator = staticmethod(build_resnet_generator)

    @staticmethod
    def networks(cfg: CUTConfig) -> dict[str, nn.Module]:
        """The nets for `python -m translators summary` (H, the small MLP heads, left out)."""
        return {"generator (G)": build_resnet_generator(cfg),
                "discriminator (D)": build_discriminator(cfg)}
