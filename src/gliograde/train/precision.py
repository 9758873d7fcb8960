"""The precision a training runs in (``train --precision``), and the one a resumed run keeps."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from gliograde.core.devices import native_bf16, resolve_device
from gliograde.run.config import TrainConfig

if TYPE_CHECKING:
    from lightning.fabric.plugins.precision.precision import _PRECISION_INPUT

LIGHTNING_PRECISION: dict[str, _PRECISION_INPUT] = {
    "fp32": "32-true",
    "bf16": "bf16-mixed",
    "fp16": "16-mixed",
}


def resolve_precision(choice: str, accelerator: str, volumes: bool = False) -> str:
    """What ``--precision`` means on ``accelerator``: ``fp32``, ``bf16`` or ``fp16``.

    ``auto`` is bf16 autocast where the device computes bfloat16 natively (CPUs with AVX-512
    BF16 or AMX, GPUs from Ampere on), float16 with a gradient scaler on GPUs without it (V100,
    T4), float32 on other CPUs: the same test ``predict`` uses for its precision.

    A 3D network (``volumes``) trains in float32 on a CPU: in bfloat16 there, DenseNet121-3D's
    training diverged to NaN within two epochs, and one step on 32³ volumes already gave NaN
    gradients in four of its convolutions (PyTorch 2.13's CPU kernels, 2026-12-08).
    """
    if choice != "auto":
        return choice
    if volumes and accelerator == "cpu":
        return "fp32"
    if native_bf16(accelerator):
        return "bf16"
    return "fp16" if accelerator == "cuda" else "fp32"


def recorded_precision(old: TrainConfig, accelerator: str) -> str:
    """The precision a run was trained in. Runs from before it was recorded trained in float32
    on a CPU and in what ``auto`` means today on a GPU."""
    if old.precision != "auto":
        return old.precision
    return "fp32" if accelerator == "cpu" else resolve_precision("auto", accelerator)


def with_resolved_precision(config: TrainConfig, out: Path) -> TrainConfig:
    """``config`` with ``precision`` resolved for its device, as ``config.json`` records it.

    ``--resume`` with ``auto`` continues in the run's own precision (the check of the resumed
    options then refuses only a precision asked for explicitly).
    """
    from gliograde.run import Run

    accelerator = resolve_device(config.device)
    if config.resume and config.precision == "auto" and (out / "config.json").is_file():
        chosen = recorded_precision(Run.open(out).train_config, accelerator)
    else:
        chosen = resolve_precision(config.precision, accelerator, config.spec.is_3d)
    return replace(config, precision=chosen)
