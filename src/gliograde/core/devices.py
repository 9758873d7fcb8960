"""The device a command runs on: ``--device auto|cpu|gpu``, the same for every command."""

from __future__ import annotations

from gliograde.core.errors import GliogradeError, UsageError

DEVICE_CHOICES = ("auto", "cpu", "gpu")


def resolve_device(choice: str) -> str:
    """``auto`` → ``gpu`` when PyTorch sees a CUDA GPU, else ``cpu``; refuses a missing GPU."""
    import torch

    if choice not in DEVICE_CHOICES:
        raise UsageError(f"--device {choice}: choose auto, cpu or gpu")
    if choice == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    if choice == "gpu" and not torch.cuda.is_available():
        raise GliogradeError("--device gpu: no CUDA GPU is visible to PyTorch; use --device cpu")
    return choice


def torch_device(choice: str) -> str:
    """The PyTorch device name for ``--device``: ``cuda`` or ``cpu``."""
    return "cuda" if resolve_device(choice) == "gpu" else "cpu"


def native_bf16(device: str) -> bool:
    """Whether ``device`` (``cuda`` or ``cpu``) computes bfloat16 in hardware.

    GPUs: compute capability 8.0 or later (Ampere on). ``torch.cuda.is_bf16_supported()`` also
    says yes for older GPUs (T4, V100), where bfloat16 is emulated, slow, and not supported by
    cuDNN's convolutions. CPUs: AVX-512 BF16 or AMX.
    """
    import torch

    if str(device).startswith("cuda") or device == "gpu":
        return torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
