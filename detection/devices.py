"""The detector's device param as ultralytics wants it: one GPU, several (DDP), or the CPU.

`detector.device` is checked for form when params load (common.runtime.normalise_device); here
it meets the machine: asking for GPUs torch does not see is one line, at train/predict time.
"""

from __future__ import annotations

from common.errors import UserError
from common.runtime import gpu_indices


def ultralytics_device(device: str, gpu_count: int) -> str:
    """Our (normalised) device param as ultralytics spells it on a machine with `gpu_count` CUDA
    GPUs: 'cpu', '0', or the indices '0,1,2,3' (DDP). UserError if the GPUs asked for are not
    there."""
    indices = gpu_indices(device, gpu_count, "detector.device")
    return ",".join(str(i) for i in indices) or "cpu"


def check_ddp_ready(device: str) -> None:
    """ultralytics' DDP launcher pickles the trainer with cloudpickle and would try to pip-install
    it (auto-install is off here): say so in one line before anything starts."""
    if "," not in device:
        return
    try:
        import cloudpickle  # noqa: F401
    except ImportError:
        raise UserError(f"detector.device: training on GPUs {device} uses ultralytics' DDP, "
                        "which needs the cloudpickle package: pip install 'cloudpickle>=3.1.1'"
                        ) from None


def amp_mode(amp: bool, device: str) -> bool | str:
    """amp=True in ultralytics runs `check_amp`, which downloads yolo26n.pt to compare outputs.
    bf16 skips that check (and needs no grad scaler); GPUs without bf16 train in fp32."""
    if not amp or device == "cpu":
        return False
    # (a multi-GPU machine has the same GPU model throughout in practice: GPU 0 decides)
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else False
