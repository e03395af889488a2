"""Gatys-style optimisation: losses and the per-batch optimiser loop.

Losses follow the Keras recipe the original study's layer names come from:
  content = Σ_layers Σ (F_x − F_c)²
  style   = Σ_layers (1/L) · Σ (g_x − g_s)² / (4 C²),  g = F Fᵀ / (h·w)   (Gatys' E_l)
  tv      = Σ ((x[i,j] − x[i+1,j])² + (x[i,j] − x[i,j+1])²)^1.25
  total   = content_weight · content + style_weight · style + tv_weight · tv
Units: that recipe ran caffe's VGG19 on 0..255 pixels; torchvision's VGG19 sees
ImageNet-normalised input, i.e. pixels / (255·std). Both the TV term (pixels × 255) and the
features (× FEATURE_SCALE = 255·mean std) are put back on the 0..255 scale so that the study's
weights keep roughly their meaning (exact for the TV term; for features it assumes a
ReLU network's near-linearity in input scale: a reported caffe-vs-torchvision VGG loss
comparison, abhiskk/fast-neural-style#1, implies a feature ratio of ~20-30, so treat the
balance as approximate and check the looks with the real weights). The Gram matrix is
normalised by the layer's positions, which equals Gatys' E_l for equal sizes and lets
style frames of another aspect ratio than the content (BDD 16:9 vs KITTI 3.3:1) compare.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from translators.nst.vgg import IMAGENET_STD, VGGFeatures

FEATURE_SCALE = 255.0 * sum(IMAGENET_STD) / 3


@dataclass
class LossWeights:
    content: float
    style: float
    tv: float


def gram(features: torch.Tensor) -> torch.Tensor:
    """B×C×h×w -> B×C×C, normalised by the number of positions h·w."""
    batch, channels, height, width = features.shape
    flat = features.reshape(batch, channels, height * width)
    return flat @ flat.transpose(1, 2) / (height * width)


def style_grams(vgg: VGGFeatures, style_images: list[torch.Tensor], layers: list[str]):
    """Mean Gram matrix per style layer over the style frames (each 3×H×W, any size)."""
    with torch.no_grad():
        per_image = [vgg(image[None]) for image in style_images]
        return {
            layer: torch.cat([gram(out[layer] * FEATURE_SCALE) for out in per_image]).mean(0)
            for layer in layers
        }


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Per image: Σ (a² + b²)^1.25 on the 0..255 pixel scale (the Keras recipe's TV loss)."""
    pixels = images * 255.0
    down = (pixels[:, :, :-1, :-1] - pixels[:, :, 1:, :-1]) ** 2
    right = (pixels[:, :, :-1, :-1] - pixels[:, :, :-1, 1:]) ** 2
    return ((down + right) ** 1.25).sum(dim=(1, 2, 3))


def losses(
    vgg: VGGFeatures,
    images: torch.Tensor,
    content_targets: dict[str, torch.Tensor],
    style_targets: dict[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Unweighted per-image content, style and tv losses (each a tensor of shape B)."""
    features = vgg(images)
    content = sum(
        ((features[layer] - target) * FEATURE_SCALE).pow(2).sum(dim=(1, 2, 3))
        for layer, target in content_targets.items()
    )
    style = sum(
        (gram(features[layer] * FEATURE_SCALE) - target).pow(2).sum(dim=(1, 2))
        / (4 * target.shape[-1] ** 2)
        for layer, target in style_targets.items()
    ) / len(style_targets)
    return {"content": content, "style": style, "tv": total_variation(images)}


def stylize(
    vgg: VGGFeatures,
    content_images: torch.Tensor,
    style_targets: dict[str, torch.Tensor],
    content_layers: list[str],
    weights: LossWeights,
    optimizer: str,
    steps: int,
    lr: float,
) -> tuple[torch.Tensor, list[float]]:
    """Optimise a batch of images, starting from the content images, for `steps` loss evaluations.

    Returns the images (clamped to [0, 1]) and the total loss of the batch at each evaluation.
    L-BFGS treats the batch as one problem (a shared line search); Adam is per-pixel anyway.
    """
    with torch.no_grad():
        content_out = vgg(content_images)
        content_targets = {layer: content_out[layer] for layer in content_layers}
    # contiguous: L-BFGS flattens the gradient with .view()
    images = content_images.clone(memory_format=torch.contiguous_format).requires_grad_(True)
    history: list[float] = []

    def closure() -> torch.Tensor:
        optim.zero_grad()
        parts = losses(vgg, images, content_targets, style_targets)
        total = (
            weights.content * parts["content"]
            + weights.style * parts["style"]
            + weights.tv * parts["tv"]
        ).sum()
        total.backward()
        history.append(total.item())
        return total

    if optimizer == "lbfgs":
        # One .step() runs up to `steps` iterations / evaluations; Wolfe line search keeps the
        # huge-valued loss stable.
        optim = torch.optim.LBFGS(
            [images], lr=lr, max_iter=steps, max_eval=steps, line_search_fn="strong_wolfe"
        )
        optim.step(closure)
    elif optimizer == "adam":
        optim = torch.optim.Adam([images], lr=lr)
        for _ in range(steps):
            optim.step(closure)
    else:
        raise ValueError(f"translators.nst.optimizer must be lbfgs or adam, got {optimizer!r}")
    return images.detach().clamp(0.0, 1.0), history
