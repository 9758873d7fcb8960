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
