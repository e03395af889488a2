"""Seeding and device choice, the same way for translators and the detector."""

from __future__ import annotations

import logging
import os
import random
import shutil
import subprocess
from typing import TYPE_CHECKING

import numpy as np

from common.config import ParamError
from common.errors import UserError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


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


# The oldest Linux driver each CUDA major runs on (minor version compatibility): NVIDIA, "CUDA
# Compatibility", Table 1 (docs.nvidia.com/deploy/cuda-compatibility/minor-version-
# compatibility.html). torch's wheels bundle their CUDA runtime, so only the driver matters.
MIN_DRIVER = {13: 580, 12: 525, 11: 450}
README_HINT = 'README: "GPU driver and torch build"'


def no_gpu_notice(asked: str, *, nvidia_smi: bool, driver: str | None, torch_version: str,
                  torch_cuda: str | None, visible_devices: str | None = None) -> str | None:
    """Why torch sees no CUDA GPU while `asked` (a normalised device param) wants one, in one
    line, or None when nothing needs saying (cpu). Pure: the caller probes the machine.

    nvidia_smi: the NVIDIA tool is on PATH; driver: the version it reported (None: absent or it
    failed); torch_cuda: torch.version.cuda (None: a CPU-only build); visible_devices:
    $CUDA_VISIBLE_DEVICES."""
    if asked == "cpu":
        return None
    fallback = ": running on the CPU" if asked == "auto" else ""
    what = f"device {asked}: torch {torch_version} sees no CUDA GPU"
    if not nvidia_smi:
        if asked == "auto":
            return "device auto: no NVIDIA GPU on this machine (no nvidia-smi): running on the CPU"
        return (f"{what} and this machine has no nvidia-smi: no NVIDIA driver installed (or no "
                f"NVIDIA GPU); {README_HINT}")
    if torch_cuda is None:
        return (f"{what}: it is a CPU-only build though nvidia-smi is here; install a CUDA build "
                f"of torch ({README_HINT}){fallback}")
    if visible_devices is not None and visible_devices.strip() in ("", "-1"):
        return f"{what}: CUDA_VISIBLE_DEVICES={visible_devices!r} hides every GPU{fallback}"
    major = int(torch_cuda.split(".")[0])
    needs = MIN_DRIVER.get(major)
    need_text = f" (>= {needs})" if needs else ""
    if driver is None:
        cause = "nvidia-smi fails: the NVIDIA driver is not loaded (run nvidia-smi to see why)"
    elif needs and _driver_major(driver) < needs:
        cause = (f"driver {driver} is older than CUDA {torch_cuda} needs{need_text}: update it, "
                 f"or install torch's CUDA 12 build ({README_HINT})")
    else:
        cause = (f"driver {driver} is new enough for CUDA {torch_cuda}{need_text}: check that "
                 "nvidia-smi lists a GPU and that CUDA_VISIBLE_DEVICES names it")
    return f"{what} (built for CUDA {torch_cuda}): {cause}{fallback}"


def _driver_major(driver: str) -> int:
    head = driver.strip().split(".")[0]
    return int(head) if head.isdigit() else 0


def _probe_driver() -> tuple[bool, str | None]:
    """(nvidia-smi on PATH, the driver version it reports or None if it fails)."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return False, None
    try:
        run = subprocess.run([tool, "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return True, None
    lines = run.stdout.split()
    return True, (lines[0] if run.returncode == 0 and lines else None)


_SAID: set[str] = set()  # notices printed by this process: each once


def cuda_gpu_count(asked: str) -> int:
    """torch's CUDA GPU count for a device param; when `asked` wants a GPU and torch sees none,
    says why, once per process, before the stage goes on (auto: on the CPU) or stops (an
    explicit GPU: gpu_indices' error follows). A machine without any NVIDIA driver running
    `auto` on the CPU is the expected case: an info line (the stages show it, run_stage); a GPU
    machine whose GPU torch cannot see is a warning, on stderr wherever it happens."""
    import torch

    count = torch.cuda.device_count()
    if count == 0 and asked != "cpu":
        nvidia_smi, driver = _probe_driver()
        notice = no_gpu_notice(asked, nvidia_smi=nvidia_smi, driver=driver,
                               torch_version=torch.__version__, torch_cuda=torch.version.cuda,
                               visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"))
        if notice and notice not in _SAID:
            _SAID.add(notice)
            expected = asked == "auto" and not nvidia_smi
            log.log(logging.INFO if expected else logging.WARNING, notice)
    return count


def resolve_device(name: str | torch.device, key: str = "device") -> torch.device:
    """`auto` is the first CUDA GPU when there is one, else the CPU; GPU indices ("1", "0,1")
    are the first one listed. Asking for CUDA GPUs torch does not see is a UserError naming `key`
    (the param or flag it came from)."""
    import torch

    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if cuda_gpu_count(name) else "cpu")
    if name[:1].isdigit():
        indices = gpu_indices(normalise_device(name, key), cuda_gpu_count(name), key)
        return torch.device("cuda", indices[0])
    if name.startswith("cuda") and not cuda_gpu_count(name):
        raise UserError(f"{key}: {name!r} was asked for but torch sees no CUDA GPU; "
                        "use auto or cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"{key}: {name!r} is not a device; use auto, cpu, cuda or a GPU index"
                        ) from None
