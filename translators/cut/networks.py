"""CUT's own nets: the generator's encoder layers, the patch sampler, the projection heads H.

G is the project's ResNet generator (translators/cyclegan/networks.py); CUT reads features from
its first half. `ResnetGenerator.model` is one Sequential: 0 reflection pad, 1-3 c7s1 conv,
norm, ReLU, 4-6 and 7-9 the two stride-2 convs (each with norm, ReLU), 10.. the residual
blocks, then the decoder. The paper takes the input and layers at increasing depth (pixels,
the two downsamplings, the residual blocks); for our generator that is the outputs of modules
0 (the padded RGB input), 4 and 7 (the stride-2 convs, before their norm) and of the first and
the middle residual block: 5 layers for n_blocks >= 3, 4 or 5 for fewer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from translators.cyclegan.networks import ResnetGenerator

FIRST_BLOCK = 10  # index of the first residual block in ResnetGenerator.model


def nce_layers(ngf: int, n_blocks: int) -> dict[int, int]:
    """Encoder layer index -> its channels, in forward order."""
    blocks = sorted({FIRST_BLOCK, FIRST_BLOCK + n_blocks // 2})
    return {0: 3, 4: 2 * ngf, 7: 4 * ngf, **dict.fromkeys(blocks, 4 * ngf)}


def encode(generator: ResnetGenerator, x: torch.Tensor, layers: list[int],
           decode: bool = False) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """(features after each of `layers`, G(x) if `decode`): one pass, stopping after the last
    layer unless the output is wanted too."""
    features = []
    stop = len(generator.model) if decode else max(layers) + 1
    for index, module in enumerate(generator.model[:stop]):
        x = module(x)
        if index in layers:
            features.append(x)
    return features, x if decode else None


def sample_patch_ids(features: list[torch.Tensor], num_patches: int,
                     generator: torch.Generator) -> list[torch.Tensor]:
    """Per layer, `num_patches` distinct positions of its H×W grid (all of them if fewer), drawn
    from `generator`: the same ids serve every image of the batch and both the source's and the
    output's features, so position i of one is the positive of position i of the other."""
    ids = []
    for feature in features:
        positions = feature.shape[2] * feature.shape[3]
        order = torch.randperm(positions, generator=generator)
        ids.append(order[:min(num_patches, positions)].to(feature.device))
    return ids


def gather_patches(feature: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """B×C×H×W features at flat positions `ids` -> B×S×C."""
    return feature.permute(0, 2, 3, 1).flatten(1, 2)[:, ids]


class PatchProjector(nn.Module):
    """H: per layer a 2-layer MLP (Linear, ReLU, Linear) on each sampled patch's feature vector,
    L2-normalised, so that dot products of projections are cosine similarities."""

    def __init__(self, channels: list[int], dim: int = 256) -> None:
        super().__init__()
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(c, dim), nn.ReLU(), nn.Linear(dim, dim)) for c in channels)

    def forward(self, features: list[torch.Tensor],
                ids: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per layer, B×S×dim unit vectors of the patches at `ids`."""
        return [F.normalize(head(gather_patches(feature, index)), dim=-1)
                for head, feature, index in zip(self.heads, features, ids, strict=True)]
