"""Neural style transfer (Gatys et al.) as a translator: the style is a real weather look.

`fit` picks the style frames (a seeded choice of BDD frames of the weather) and stores them
with the config; `load` builds the VGG19 trunk; `__call__` optimises each batch of content
frames starting from the frames themselves.

Speed: optimising a full 1242×375 frame through VGG19 is costly on a CPU, so `max_size` can
cap the longer side of the optimisation resolution. The *change* found there (stylised −
downscaled content) is upsampled and added to the full-resolution frame, so size, geometry
and fine detail of the frame are kept while the low-frequency weather look is transferred.
`max_size: null` (the default) optimises at full resolution, as the original study did.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from common.config import build
from common.files import atomic_write_json
from translators.io import (
    CONFIG_FILE,
    load_image,
    model_files,
    pick_references,
    read_config,
    save_references,
)
from translators.nst.config import DEFAULT_LR, NSTConfig
from translators.nst.style import LossWeights, style_grams, stylize
from translators.nst.vgg import VGGFeatures, check_weights


class NeuralStyleTransfer:
    name = "nst"
    Config = NSTConfig
    frames = "clone"
    trains_distributed = False

    def __init__(self) -> None:
        self.cfg = NSTConfig()
        self.style_images: list[torch.Tensor] = []
        self.vgg: VGGFeatures | None = None
        self.device = torch.device("cpu")
        self._grams: dict[int, dict[str, torch.Tensor]] = {}  # by optimisation width
        self.last_history: list[float] = []  # total loss per evaluation of the last batch

    def fit(self, source: list[Path], target: list[Path], out: Path, cfg: Any = None, *,
            weather: str | None = None, device: torch.device | None = None,
            checkpoint_dir: Path | None = None) -> None:
        cfg = cfg if cfg is not None else NSTConfig()
        check_weights(cfg.weights)  # fail at translator_train, not only at translate
        names = save_references(pick_references(target, cfg.n_style_images), out, stem="style")
        atomic_write_json(
            out / CONFIG_FILE, {"translator": self.name, "config": asdict(cfg), "styles": names}
        )

    def load(self, out: Path, device: torch.device | str = "cpu") -> None:
        saved = read_config(out)
        self.cfg = build(NSTConfig, saved["config"], f"{out / CONFIG_FILE}: config")
        self.device = torch.device(device)
        self.style_images = [load_image(path).to(self.device)
                             for path in model_files(out, saved.get("styles"), "styles")]
        layers = list(dict.fromkeys(self.cfg.content_layers + self.cfg.style_layers))
        self.vgg = VGGFeatures(layers, self.cfg.weights).to(self.device)
        self._grams = {}

    def _style_targets(self, width: int) -> dict[str, torch.Tensor]:
        """Style Gram matrices with each style frame resized to the optimisation width.

        Matching widths keeps the texture scale comparable (BDD and KITTI frames are both
        about 1250 px wide); the aspect ratio of the style frame is kept.
        """
        if width not in self._grams:
            resized = []
            for image in self.style_images:
                height = max(1, round(image.shape[-2] * width / image.shape[-1]))
                resized.append(_resize(image[None], height, width)[0])
            self._grams[width] = style_grams(self.vgg, resized, self.cfg.style_layers)
        return self._grams[width]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.vgg is None:
            raise RuntimeError("NeuralStyleTransfer: call load(out, device) first")
        # translate_files calls translators under inference_mode; NST needs autograd, and a
        # clone made outside inference mode is an ordinary tensor that autograd accepts.
        with torch.inference_mode(False), torch.enable_grad():
            full = images.to(self.device, torch.float32).clone(
                memory_format=torch.contiguous_format
            )
            return self._stylize_full(full).to(images.device, images.dtype)

    def _stylize_full(self, full: torch.Tensor) -> torch.Tensor:
        height, width = full.shape[-2:]
        scale = 1.0
        if self.cfg.max_size is not None:
            scale = min(1.0, self.cfg.max_size / max(height, width))
        small_size = (max(1, round(height * scale)), max(1, round(width * scale)))
        small = full if scale == 1.0 else _resize(full, *small_size)
        stylised, self.last_history = stylize(
            self.vgg,
            small,
            self._style_targets(small_size[1]),
            self.cfg.content_layers,
            LossWeights(self.cfg.content_weight, self.cfg.style_weight, self.cfg.tv_weight),
            self.cfg.optimizer,
            self.cfg.steps,
            self.cfg.lr if self.cfg.lr is not None else DEFAULT_LR[self.cfg.optimizer],
        )
        if scale == 1.0:
            return stylised
        # Upsample the change, not the image: keeps the frame's full-resolution detail.
        change = F.interpolate(
            stylised - small, size=(height, width), mode="bilinear", align_corners=False
        )
        return (full + change).clamp(0.0, 1.0)


def _resize(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return F.interpolate(
        images, size=(height, width), mode="bilinear", align_corners=False, antialias=True
    )
