"""VGG19 feature extractor for neural style transfer, truncated after the deepest used layer.

Layers are named the Keras way (`block2_conv2` = the ReLU output of the 2nd conv of block 2),
as in the original study. Weights come from the torchvision weights API (ImageNet), a local
state-dict file, or a seeded random init (for tests). Nothing is ever downloaded: torchvision
would download a missing ImageNet checkpoint, so we look in the torch hub cache first and
raise `VGGWeightsNotFoundError` with the exact file to put there.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from common.errors import MissingInputError, UserError
from translators.nst.config import VGG19_BLOCKS, layer_names

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CHECKPOINT_NAME = "vgg19-dcbb9e9d.pth"  # torchvision's VGG19_Weights.IMAGENET1K_V1 file
RANDOM_INIT_SEED = 0  # `random` weights are a fixed function, like a weight file


class VGGWeightsNotFoundError(MissingInputError):
    """The VGG19 weights file is not on disk (and we never download at run time)."""


def _relu_index(layer: str) -> int:
    """Index, in torchvision's `vgg19().features`, of the ReLU that ends `layer`."""
    index = 0
    for b, convs in enumerate(VGG19_BLOCKS):
        for c in range(len(convs)):
            if layer == f"block{b + 1}_conv{c + 1}":
                return index + 1
            index += 2  # conv, relu
        index += 1  # max-pool
    raise ValueError(f"unknown VGG19 layer {layer!r}; choose from: {', '.join(layer_names())}")


def _features(n_modules: int) -> nn.Sequential:
    """The first `n_modules` modules of torchvision's vgg19().features (same indices/keys)."""
    modules: list[nn.Module] = []
    in_channels = 3
    for convs in VGG19_BLOCKS:
        for out_channels in convs:
            modules += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU()]
            in_channels = out_channels
        modules.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*modules[:n_modules])


def imagenet_checkpoint_path() -> Path:
    """Where torchvision looks for (and would download) the ImageNet VGG19 weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / CHECKPOINT_NAME


def check_weights(weights: str) -> None:
    """Raise `VGGWeightsNotFoundError` now if `weights` names a file that is not on disk."""
    if weights == "imagenet" and not imagenet_checkpoint_path().is_file():
        _imagenet_state_dict()  # raises, with the full explanation
    elif weights not in ("imagenet", "random") and not Path(weights).is_file():
        _file_state_dict(Path(weights))  # raises


def _imagenet_state_dict() -> dict[str, torch.Tensor]:
    from torchvision.models import VGG19_Weights

    weights = VGG19_Weights.IMAGENET1K_V1
    path = imagenet_checkpoint_path()
    if not path.is_file():
        home = os.environ.get("TORCH_HOME")
        torch_home = f"TORCH_HOME={home}" if home else "TORCH_HOME is unset: ~/.cache/torch"
        raise VGGWeightsNotFoundError(
            f"VGG19 ImageNet weights not found at {path} and nothing is downloaded at run "
            f"time. Put the file {CHECKPOINT_NAME} (from {weights.url}) in {path.parent} "
            f"(= $TORCH_HOME/hub/checkpoints; {torch_home}), or set "
            "translators.nst.weights (python -m translators: --set weights=FILE) to a local "
            "VGG19 state-dict file."
        )
    # The file is in the hub cache, so torchvision loads it without any network access.
    return weights.get_state_dict(progress=False, check_hash=True)


def _file_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise VGGWeightsNotFoundError(
            f"VGG19 state-dict file {path} (translators.nst.weights) does not exist"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise UserError(f"{path} is not a state dict (translators.nst.weights)")
    return state


def _random_init(features: nn.Sequential) -> None:
    """torchvision's VGG init (kaiming-normal fan_out, zero bias), with a fixed private seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        for module in features:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)


class VGGFeatures(nn.Module):
    """ImageNet-normalised VGG19 trunk returning the named layers' activations.

    Input: B×3×H×W float in [0, 1]. Output: {layer name: B×C×h×w}. Frozen, eval mode.
    """

    def __init__(self, layers: list[str], weights: str = "imagenet") -> None:
        super().__init__()
        if not layers:
            raise ValueError("VGGFeatures needs at least one layer")
        self.taps = {_relu_index(name): name for name in layers}
        self.trunk = _features(max(self.taps) + 1)  # truncated after the deepest used layer
        if weights == "random":
            _random_init(self.trunk)
        else:
            if weights == "imagenet":
                state = _imagenet_state_dict()
            else:
                state = _file_state_dict(Path(weights))
            self._load(state, source=weights)
        self.trunk.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def _load(self, state: dict[str, torch.Tensor], source: str) -> None:
        # Accept a full vgg19() state dict ("features.N.weight") or a features-only one.
        trunk_state = {
            key.removeprefix("features."): value
            for key, value in state.items()
            if key.startswith("features.") or key.split(".")[0].isdigit()
        }
        wanted = self.trunk.state_dict().keys()
        missing = [key for key in wanted if key not in trunk_state]
        if missing:
            raise UserError(f"VGG19 weights {source!r} lack {', '.join(missing[:4])} ...")
        self.trunk.load_state_dict({key: trunk_state[key] for key in wanted})

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (images - self.mean) / self.std
        out: dict[str, torch.Tensor] = {}
        for index, module in enumerate(self.trunk):
            x = module(x)
            if index in self.taps:
                out[self.taps[index]] = x
        return out
