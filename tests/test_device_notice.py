"""Device honesty: why torch sees no GPU, decided from the machine's facts (no GPU needed)."""

from __future__ import annotations

import logging

import pytest

from common import runtime
from common.runtime import no_gpu_notice

TORCH = "2.15.0+cu132"


def notice(asked: str = "auto", *, smi: bool = True, driver: str | None = "590.44.01",
           cuda: str | None = "13.2", visible: str | None = None) -> str | None:
    return no_gpu_notice(asked, nvidia_smi=smi, driver=driver, torch_version=TORCH,
                         torch_cuda=cuda, visible_devices=visible)


@pytest.mark.parametrize("asked", ["auto", "0", "0,1", "cuda"])
def test_cpu_only_machine(asked: str) -> None:
    if asked == "auto":
        assert notice(asked, smi=False, driver=None) == (
            "device auto: no NVIDIA GPU on this machine (no nvidia-smi): running on the CPU")
    else:
        assert notice(asked, smi=False, driver=None) == (
            f"device {asked}: torch {TORCH} sees no CUDA GPU and this machine has no nvidia-smi: "
            'no NVIDIA driver installed (or no NVIDIA GPU); README: "GPU driver and torch build"')


def test_asking_for_the_cpu_needs_no_notice() -> None:
    assert notice("cpu", smi=False, driver=None) is None
    assert notice("cpu") is None


def test_cpu_build_of_torch_beside_a_driver() -> None:
    assert notice("auto", cuda=None) == (
        f"device auto: torch {TORCH} sees no CUDA GPU: it is a CPU-only build though nvidia-smi "
        'is here; install a CUDA build of torch (README: "GPU driver and torch build"): running '
        "on the CPU")
    assert notice("0", cuda=None).endswith("(README: \"GPU driver and torch build\")")


def test_driver_older_than_the_build_needs() -> None:
    assert notice("auto", driver="550.54.15") == (
        f"device auto: torch {TORCH} sees no CUDA GPU (built for CUDA 13.2): driver 550.54.15 is "
        "older than CUDA 13.2 needs (>= 580): update it, or install torch's CUDA 12 build "
        '(README: "GPU driver and torch build"): running on the CPU')
    # the same driver is fine for a CUDA 12 build: then the cause is elsewhere
    assert "is new enough for CUDA 12.6 (>= 525)" in notice("0", driver="550.54.15", cuda="12.6")


def test_driver_not_loaded() -> None:
    assert notice("0,1", driver=None) == (
        f"device 0,1: torch {TORCH} sees no CUDA GPU (built for CUDA 13.2): nvidia-smi fails: the "
        "NVIDIA driver is not loaded (run nvidia-smi to see why)")


def test_hidden_gpus() -> None:
    assert notice("auto", visible="") == (
        f"device auto: torch {TORCH} sees no CUDA GPU: CUDA_VISIBLE_DEVICES='' hides every GPU: "
        "running on the CPU")
    assert "hides every GPU" in notice("cuda", visible="-1")


def test_said_once_per_process(monkeypatch, caplog) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(runtime, "_probe_driver", lambda: (False, None))
    monkeypatch.setattr(runtime, "_SAID", set())
    with caplog.at_level(logging.INFO, logger="common.runtime"):
        assert runtime.cuda_gpu_count("auto") == 0
        assert runtime.resolve_device("auto").type == "cpu"
        assert runtime.cuda_gpu_count("cpu") == 0
    # no driver at all: the CPU is expected, an info line (a stage shows it, run_stage)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, "device auto: no NVIDIA GPU on this machine (no nvidia-smi): running on "
                       "the CPU")]


def test_a_gpu_machine_torch_cannot_use_is_a_warning(monkeypatch, caplog) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.version, "cuda", "13.2")
    monkeypatch.setattr(runtime, "_probe_driver", lambda: (True, "550.54.15"))
    monkeypatch.setattr(runtime, "_SAID", set())
    assert runtime.resolve_device("auto").type == "cpu"
    runtime.cuda_gpu_count("auto")  # said once
    # a warning: on stderr in a stage (run_stage) and without any logging set up (Python's
    # last-resort handler)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "driver 550.54.15 is older than CUDA 13.2 needs (>= 580)" in caplog.records[0].message
