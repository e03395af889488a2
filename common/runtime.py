"""Seeding and device choice, the same way for translators and the detector."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import numpy as np

from common.errors import UserError

if TYPE_CHECKING:
    import torch


def seed_everything(seed: int) -> None:
    """Python's, numpy's and torch's global generators (what training code draws from)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str | torch.device, key: str = "device") -> torch.device:
    """`auto` is the first CUDA GPU when there is one, else the CPU; asking for CUDA without one is
    a UserError naming `key` (the param or flag it came from)."""
    import torch

    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"{key}: {name!r} was asked for but torch sees no CUDA GPU; "
                        "use auto or cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"{key}: {name!r} is not a device; use auto, cpu or cuda") from None
