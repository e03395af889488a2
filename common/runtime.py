"""Seeding and device choice, the same way for translators and the detector."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import numpy as np

from common.config import ParamError
from common.errors import UserError

if TYPE_CHECKING:
    import torch


def seed_everything(seed: int) -> None:
    """Python's, numpy's and torch's global generators (what training code draws from)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def normalise_device(device: object, key: str = "device") -> str:
    """A device param (`detector.device`, `translators.device`): auto, cpu, cuda, or GPU indices
    as ultralytics spells them ("0", "0,1"), from the text "0,1", a YAML int 0 or a YAML list
    [0, 1]. ParamError naming `key` otherwise."""
    if device in ("auto", "cpu", "cuda"):
        return str(device)
    if isinstance(device, int) and not isinstance(device, bool):
        items: list[object] = [device]
    elif isinstance(device, list):
        items = device
    elif isinstance(device, str):
        items = [int(x) if x.strip().isdigit() else x for x in device.split(",")]
    else:
        items = [device]
    indices = [x for x in items if isinstance(x, int) and not isinstance(x, bool) and x >= 0]
    if not items or len(indices) != len(items) or len(set(indices)) != len(indices):
        raise ParamError(f"{key}: must be auto, cpu, cuda or distinct GPU indices such as 0,1; "
                         f"got {device!r}")
    return ",".join(str(x) for x in indices)


def gpu_indices(device: str, gpu_count: int, key: str) -> list[int]:
    """The GPUs a normalised device param asks for on a machine with `gpu_count` CUDA GPUs: none
    for cpu (and for auto without a GPU), [0] for auto and cuda, else the listed indices.
    UserError naming `key` if torch does not see them all."""
    if device == "cpu" or (device == "auto" and gpu_count == 0):
        return []
    if device in ("auto", "cuda"):
        device = "0"
    indices = [int(x) for x in device.split(",")]
    if max(indices) >= gpu_count:
        seen = f"{gpu_count} CUDA GPU" + ("" if gpu_count == 1 else "s")
        hint = "use auto or cpu" if gpu_count == 0 else f"indices 0..{gpu_count - 1} exist"
        raise UserError(f"{key}: {device!r} asks for GPU {max(indices)} but torch sees {seen}; "
                        f"{hint}")
    return indices


def resolve_device(name: str | torch.device, key: str = "device") -> torch.device:
    """`auto` is the first CUDA GPU when there is one, else the CPU; GPU indices ("1", "0,1")
    are the first one listed. Asking for CUDA GPUs torch does not see is a UserError naming `key`
    (the param or flag it came from)."""
    import torch

    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name[:1].isdigit():
        indices = gpu_indices(normalise_device(name, key), torch.cuda.device_count(), key)
        return torch.device("cuda", indices[0])
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"{key}: {name!r} was asked for but torch sees no CUDA GPU; "
                        "use auto or cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"{key}: {name!r} is not a device; use auto, cpu, cuda or a GPU index"
                        ) from None
