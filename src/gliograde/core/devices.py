"""The device a command runs on: ``--device auto|cpu|cuda``, the same for every command (and
PyTorch's own names). ``gpu``, the name older command lines used, still means ``cuda``."""

from __future__ import annotations

from gliograde.core.errors import GliogradeError, UsageError

DEVICE_CHOICES = ("auto", "cpu", "cuda")
ALIASES = {"gpu": "cuda"}
"""Older names still accepted, and what they mean."""


def device_choice(choice: str) -> str:
    """``choice`` in the one vocabulary (``gpu`` becomes ``cuda``).

    Raises:
        UsageError: ``choice`` is none of auto, cpu, cuda (or gpu).
    """
    named = ALIASES.get(choice, choice)
    if named not in DEVICE_CHOICES:
        raise UsageError(f"--device {choice}: choose auto, cpu or cuda")
    return named


def resolve_device(choice: str) -> str:
    """The PyTorch device for ``--device``: ``auto`` is ``cuda`` when PyTorch sees a CUDA GPU,
    else ``cpu``.

    Raises:
        UsageError: not a device choice; GliogradeError: ``cuda`` asked for and none visible.
    """
    import torch

    named = device_choice(choice)
    if named == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if named == "cuda" and not torch.cuda.is_available():
        raise GliogradeError(
            f"--device {choice}: no CUDA GPU is visible to PyTorch; use --device cpu"
        )
    return named


def native_bf16(device: str) -> bool:
    """Whether ``device`` (``cuda`` or ``cpu``) computes bfloat16 in hardware.

    GPUs: compute capability 8.0 or later (Ampere on). ``torch.cuda.is_bf16_supported()`` also
    says yes for older GPUs (T4, V100), where bfloat16 is emulated, slow, and not supported by
    cuDNN's convolutions. CPUs: AVX-512 BF16 or AMX.
    """
    import torch

    if str(device).startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
