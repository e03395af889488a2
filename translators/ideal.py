"""The `ideal` arm: a perfect appearance translator, for the sample world only.

Its frames for weather W are the sample world's renders of each vKITTI2 clone frame in W's real
(BDD100K-style) look: the same scene, tracks and camera, so the same boxes, painted by the same
photographic painter and physical weather as the real frames (data/sample, `ideal/`). No learned
translator can do better on appearance, so Δ mAP50(ideal − none) is the headroom that
translation can win on this world, and `gap` on its frames calibrates the gap score. On the real
datasets no such frames exist: params load refuses `translator: ideal` with `data.source: real`.
"""

from __future__ import annotations

import torch

from translators.configs import IdealTranslatorConfig
from translators.none import NoTranslator


class IdealTranslator(NoTranslator):
    """Nothing to learn (fit records that, as the baseline's does); the translate stage copies
    the world's renders instead of calling the translator."""

    name = "ideal"
    Config = IdealTranslatorConfig
    frames = "ideal"
    note = "the sample world's real-look renders of the clone frames (same geometry)"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("ideal: its frames are the sample world's renders, not a function of "
                           "the clone frames (the translate stage copies them)")
