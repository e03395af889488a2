"""The `cyclegan` translator: fit trains (resumably), load + __call__ run G_A at any size."""

from __future__ import annotations

from torch import nn

from translators.cyclegan.config import CycleGANConfig
from translators.cyclegan.model import WEIGHTS, CycleGANModel
from translators.cyclegan.networks import build_discriminator, build_generator
from translators.generator import GeneratorTranslator


class CycleGAN(GeneratorTranslator):
    name = "cyclegan"
    Config = CycleGANConfig
    model_class = CycleGANModel
    weights = WEIGHTS  # G_A, the sim -> real generator
    build_generator = staticmethod(build_generator)

    @staticmethod
    def networks(cfg: CycleGANConfig) -> dict[str, nn.Module]:
        """The nets for `python -m translators summary` (each is built twice in training)."""
        return {"generator (G_A, G_B)": build_generator(cfg),
                "discriminator (D_A, D_B)": build_discriminator(cfg)}
