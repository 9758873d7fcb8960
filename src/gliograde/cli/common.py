"""What the commands share: choices as ``Enum``s, the arguments and options several commands
take, and the one way to write to stderr (:func:`gliograde.core.console.say`)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from gliograde.core.console import say

__all__ = ["Device", "DeviceOption", "PrecisionOption", "RunArgument", "WorkersOption", "say"]


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    gpu = "gpu"  # the older name of cuda, still accepted


class Slices(str, Enum):
    brain = "brain"
    tumor = "tumor"
    all = "all"


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


class Balance(str, Enum):
    weights = "weights"
    sampler = "sampler"


class Backbone(str, Enum):  # gliograde.model.backbones.BACKBONES (a test keeps them alike)
    resnet18 = "resnet18"
    densenet121 = "densenet121"
    resnet18_2_5d = "resnet18-2.5d"
    resnet10_3d = "resnet10-3d"
    densenet121_3d = "densenet121-3d"


class CompareMode(str, Enum):
    auto = "auto"
    seg = "seg"
    noseg = "noseg"


class Select(str, Enum):
    inner = "inner"
    last = "last"


class CamMethod(str, Enum):
    gradcam = "gradcam"
    gradcampp = "gradcampp"


class Layer(str, Enum):
    auto = "auto"
    layer1 = "layer1"
    layer2 = "layer2"
    layer3 = "layer3"
    layer4 = "layer4"


class ExportFormat(str, Enum):
    safetensors = "safetensors"
    torchscript = "torchscript"
    onnx = "onnx"
    monai_bundle = "monai-bundle"


class DemoTarget(str, Enum):
    grade = "grade"
    idh = "idh"
    who = "who"


RunArgument = Annotated[Path, typer.Argument(help="Run folder made by `gliograde train`.")]
DeviceOption = Annotated[
    Device,
    typer.Option(
        help="Where the models run: auto (cuda when PyTorch sees a GPU), cpu or cuda (gpu: cuda)."
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(help="Worker processes (default: automatic; 0: none, all in this process)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout and nothing else.")]
PrecisionOption = Annotated[
    Precision | None,
    typer.Option(
        help="Grading precision: auto (bf16 where the CPU or GPU computes it natively), fp32 or bf16 (default: $GLIOGRADE_PRECISION, else auto).",
        show_default=False,
    ),
]


def grading_precision(option: Precision | None = None) -> str:
    """The precision a command grades in: ``--precision``, else ``GLIOGRADE_PRECISION`` (read
    here, once per command: below the command line it is an argument), else ``auto``.

    Raises:
        UsageError: ``GLIOGRADE_PRECISION`` is not auto, fp32 or bf16.
    """
    from gliograde.core.environment import precision_setting

    return option.value if option is not None else precision_setting()
