"""The networks a run can be trained with (``train --backbone NAME``).

=================  =========================================================================
``resnet18``       the reference study's: a ResNet18 on one axial slice, ``[4, H, W]``
                   (:mod:`gliograde.model.resnet`, MONAI's ResNet layer for layer)
``densenet121``    MONAI's ``DenseNet121`` (2D) on one slice, ``[4, H, W]``
``resnet18-2.5d``  the ResNet18 on a slice and its ``k`` neighbours above and below, stacked
                   as channels ``[4·(2k+1), H, W]`` (``train --context k``, default 1)
=================  =========================================================================

A backbone has ``features(x)`` (pooled features ``[B, F]``), ``fc`` (the class head,
``F → K``) and ``stages`` (its four resolution stages by the names Grad-CAM is asked for,
``layer1`` to ``layer4``, strides 4 to 32). Which backbone a weights file holds is read from its
keys and shapes (:func:`backbone_of`), so every command that loads weights (predict, explain,
export, the bundle, the node) builds the right network from the file alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gliograde.core.errors import GliogradeError, UsageError
from gliograde.model.resnet import IN_CHANNELS, ResNet18

BACKBONES = ("resnet18", "densenet121", "resnet18-2.5d")
STAGE_STRIDES = {"layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32}
DENSENET_STAGES = {"layer1": "denseblock1", "layer2": "denseblock2", "layer3": "denseblock3",
                   "layer4": "norm5"}  # fmt: skip
"""DenseNet's modules at the ResNet stages' strides; the deepest, its last block's
batch-normalised output (what the heads pool)."""


@dataclass(frozen=True)
class Backbone:
    """A backbone by name, and how many neighbours each side a 2.5D one stacks."""

    name: str = "resnet18"
    context: int = 0  # 2.5D: neighbours above and below (k)

    def __post_init__(self):
        if self.name not in BACKBONES:
            raise UsageError(f"--backbone {self.name}: choose one of {', '.join(BACKBONES)}")
        if self.is_2_5d and self.context < 1:
            raise UsageError(f"--context {self.context}: a 2.5D backbone needs 1 or more")
        if not self.is_2_5d and self.context:
            raise UsageError(f"--context goes with a 2.5D backbone, not {self.name}")

    @classmethod
    def named(cls, name: str, context: int | None = None) -> Backbone:
        """The backbone ``name``; ``context`` None: 1 for a 2.5D one (3 slices), else 0."""
        if context is None:
            context = 1 if name.endswith("-2.5d") else 0
        return cls(name, context)

    @property
    def is_2_5d(self) -> bool:
        return self.name.endswith("-2.5d")

    def check_pretrained(self) -> None:
        """Refuse ImageNet weights (``--pretrained``) for a backbone with no local loader.

        Raises:
            UsageError: not a ResNet18 backbone.
        """
        if not self.name.startswith("resnet18"):
            raise UsageError(
                f"--pretrained: ImageNet weights load into resnet18 backbones only, not "
                f"{self.name}; train it from scratch (leave --pretrained out)"
            )

    @property
    def in_channels(self) -> int:
        """The network's input channels: the four sequences of each slice it sees."""
        return IN_CHANNELS * (2 * self.context + 1)

    def build(self, num_classes: int) -> ResNet18 | DenseNet2D:
        """The backbone, newly initialised (on the current default device)."""
        if self.name == "densenet121":
            return DenseNet2D(self.in_channels, num_classes)
        return ResNet18(self.in_channels, num_classes)

    def stage(self, layer: str) -> str:
        """The module path under the backbone of a stage (``layer4``: the deepest)."""
        if layer not in STAGE_STRIDES:
            raise UsageError(f"--layer {layer}: choose layer1 to layer4 (or auto)")
        return f"body.{DENSENET_STAGES[layer]}" if self.name == "densenet121" else layer

    @property
    def folds_batch_norms(self) -> bool:
        """Whether each batch-norm follows a convolution (ResNet), so that inference can fold
        it in; DenseNet's batch-norms come before their convolutions."""
        return self.name != "densenet121"

    def channel_names(self, sequences: tuple[str, ...]) -> list[str]:
        """The input's channels in order: the sequences, each of the slice itself
        (``flair``), or for 2.5D of the slice ``d`` below or above (``flair@-1``)."""
        offsets = range(-self.context, self.context + 1)
        return [s if d == 0 else f"{s}@{d:+d}" for d in offsets for s in sequences]

    @property
    def label(self) -> str:
        return f"{self.name} (k={self.context})" if self.is_2_5d else self.name


class DenseNet2D(nn.Module):
    """MONAI's ``DenseNet121`` (2D) split as gliograde's heads need it: ``body`` (MONAI's
    ``features``, ending in its last batch-norm), then ReLU and global average pooling as in
    MONAI's class layers (``features``), and the class head ``fc`` (1024 → K)."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        from monai.networks.nets import DenseNet121

        net = DenseNet121(spatial_dims=2, in_channels=in_channels, out_channels=num_classes)
        out = net.class_layers.get_submodule("out")
        if not isinstance(out, nn.Linear):
            raise TypeError(f"MONAI's DenseNet121 ends in a {type(out).__name__}, not a Linear")
        self.body: nn.Module = net.features
        self.fc = out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.body(x))
        return torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def feature_size(backbone: nn.Module) -> int:
    """The width of the pooled features the heads read."""
    fc = backbone.get_submodule("fc")
    if not isinstance(fc, nn.Linear):
        raise TypeError(f"the backbone's fc is a {type(fc).__name__}, not a Linear layer")
    return fc.in_features


def backbone_of(state: dict[str, torch.Tensor], source: object = "weights") -> Backbone:
    """The backbone a saved GradeNet state dict holds (runs made before ``--backbone`` hold a
    ``resnet18``); ``source`` (its file) names it in an error.

    Raises:
        GliogradeError: a stem whose channels are not four per slice.
    """
    dense = "backbone.body.conv0.weight" in state
    stem = state.get("backbone.body.conv0.weight" if dense else "backbone.conv1.weight")
    channels = IN_CHANNELS if stem is None else int(stem.shape[1])
    if channels % IN_CHANNELS or (channels // IN_CHANNELS) % 2 == 0:
        raise GliogradeError(
            f"{source}: the network's first convolution takes {channels} channels; gliograde's "
            "take 4 per slice (FLAIR, T1ce, T1, T2), for one slice or a slice and as many "
            "neighbours above as below"
        )
    context = (channels // IN_CHANNELS - 1) // 2
    if dense and context:
        raise GliogradeError(f"{source}: DenseNet weights taking {channels} channels: not a run's")
    if dense:
        return Backbone("densenet121")
    return Backbone("resnet18-2.5d" if context else "resnet18", context)
