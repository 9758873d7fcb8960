"""The networks a run can be trained with (``train --backbone NAME``).

=================  =========================================================================
``resnet18``       the reference study's: a ResNet18 on one axial slice, ``[4, H, W]``
                   (:mod:`gliograde.model.resnet`, MONAI's ResNet layer for layer)
``densenet121``    MONAI's ``DenseNet121`` (2D) on one slice, ``[4, H, W]``
``resnet18-2.5d``  the ResNet18 on a slice and its ``k`` neighbours above and below, stacked
                   as channels ``[4·(2k+1), H, W]`` (``train --context k``, default 1)
``resnet10-3d``    MONAI's ``resnet10`` (3D, MedicalNet's layout) on the patient's brain as
                   one volume ``[4, G, G, G]`` (``train --grid G``, default 96;
                   :mod:`gliograde.store.volumes`)
``densenet121-3d`` MONAI's ``DenseNet121`` (3D) on the same volume
=================  =========================================================================

A backbone has ``features(x)`` (pooled features ``[B, F]``), ``fc`` (the class head,
``F → K``) and ``stages`` (its four resolution stages by the names Grad-CAM is asked for,
``layer1`` to ``layer4``, strides 4 to 32). Which backbone a weights file holds is read from its
keys and shapes (:func:`backbone_of`; a 3D network's grid from the file's metadata), so every
command that loads weights (predict, explain,
export, the bundle, the node) builds the right network from the file alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gliograde.core.errors import GliogradeError, UsageError
from gliograde.model.resnet import IN_CHANNELS, ResNet18
from gliograde.model.volumetric import DENSENET_STAGES, RESNET3D_STAGES, DenseNet, ResNet3D

BACKBONES = ("resnet18", "densenet121", "resnet18-2.5d", "resnet10-3d", "densenet121-3d")
STAGE_STRIDES = {"layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32}
DEFAULT_GRID = 96
"""A 3D network's default grid (``--grid``); what that is in millimetres for BraTS 2020:
docs/how-to/compare-backbones.md, "3D: the volume store"."""
MIN_GRID = 32
"""The smallest grid: the deepest stage (stride 32) must keep a voxel."""
MAX_GRID = 256


@dataclass(frozen=True)
class Backbone:
    """A backbone by name, and how many neighbours each side a 2.5D one stacks."""

    name: str = "resnet18"
    context: int = 0  # 2.5D: neighbours above and below (k)
    grid: int = 0  # 3D: the volume's side G (its input is [4, G, G, G]); 0 for 2D

    def __post_init__(self):
        if self.name not in BACKBONES:
            raise UsageError(f"--backbone {self.name}: choose one of {', '.join(BACKBONES)}")
        if self.is_3d and not MIN_GRID <= self.grid <= MAX_GRID:
            raise UsageError(f"--grid {self.grid}: a 3D backbone needs {MIN_GRID} to {MAX_GRID}")
        if not self.is_3d and self.grid:
            raise UsageError(f"--grid goes with a 3D backbone, not {self.name}")
        if self.is_2_5d and self.context < 1:
            raise UsageError(f"--context {self.context}: a 2.5D backbone needs 1 or more")
        if not self.is_2_5d and self.context:
            raise UsageError(f"--context goes with a 2.5D backbone, not {self.name}")

    @classmethod
    def named(cls, name: str, context: int | None = None, grid: int | None = None) -> Backbone:
        """The backbone ``name``; ``context`` None: 1 for a 2.5D one (3 slices), else 0;
        ``grid`` None: :data:`DEFAULT_GRID` for a 3D one, else 0."""
        if context is None:
            context = 1 if name.endswith("-2.5d") else 0
        if grid is None:
            grid = DEFAULT_GRID if name.endswith("-3d") else 0
        return cls(name, context, grid)

    @property
    def is_2_5d(self) -> bool:
        return self.name.endswith("-2.5d")

    @property
    def is_3d(self) -> bool:
        """Whether it reads the patient's brain as one volume, not slice by slice."""
        return self.name.endswith("-3d")

    @property
    def memory_format(self) -> torch.memory_format:
        """Channels-last for its convolutions' dimension (about 1.4× faster in 2D)."""
        return torch.channels_last_3d if self.is_3d else torch.channels_last

    def check_pretrained(self) -> None:
        """Refuse pretrained weights (``--pretrained``) for a backbone with no local loader:
        torchvision's ImageNet resnet18 and densenet121 load into the 2D networks, MedicalNet's
        resnet_10 into ``resnet10-3d``.

        Raises:
            UsageError: ``densenet121-3d``, for which no pretrained weights are offered.
        """
        if self.name == "densenet121-3d":
            raise UsageError(
                "--pretrained: local weights load into the 2D networks (torchvision's ImageNet "
                "resnet18 or densenet121) and resnet10-3d (MedicalNet's resnet_10), not "
                "densenet121-3d; train it from scratch (leave --pretrained out)"
            )

    @property
    def in_channels(self) -> int:
        """The network's input channels: the four sequences of each slice it sees."""
        return IN_CHANNELS * (2 * self.context + 1)

    def build(self, num_classes: int) -> ResNet18 | DenseNet | ResNet3D:
        """The backbone, newly initialised (on the current default device)."""
        if self.name.startswith("densenet121"):
            return DenseNet(self.in_channels, num_classes, spatial_dims=3 if self.is_3d else 2)
        if self.name == "resnet10-3d":
            return ResNet3D(self.in_channels, num_classes)
        return ResNet18(self.in_channels, num_classes)

    def stage(self, layer: str) -> str:
        """The module path under the backbone of a stage (``layer4``: the deepest)."""
        if layer not in STAGE_STRIDES:
            raise UsageError(f"--layer {layer}: choose layer1 to layer4 (or auto)")
        if self.name.startswith("densenet121"):
            return DENSENET_STAGES[layer]
        return RESNET3D_STAGES[layer] if self.is_3d else layer

    @property
    def folds_batch_norms(self) -> bool:
        """Whether inference folds each batch-norm into the convolution before it: the 2D
        ResNets'. DenseNet's batch-norms come before their convolutions; the 3D ResNet's are
        left as MONAI built them (one forward pass a patient: little to gain)."""
        return self.name in ("resnet18", "resnet18-2.5d")

    def channel_names(self, sequences: tuple[str, ...]) -> list[str]:
        """The input's channels in order: the sequences, each of the slice itself
        (``flair``), or for 2.5D of the slice ``d`` below or above (``flair@-1``)."""
        offsets = range(-self.context, self.context + 1)
        return [s if d == 0 else f"{s}@{d:+d}" for d in offsets for s in sequences]

    def input_shape(self, size: int) -> tuple[int, ...]:
        """One input's shape: ``[C, size, size]`` for a slice of ``size``² pixels (C: 4, or
        4·(2k+1) for 2.5D), ``[4, G, G, G]`` for a 3D network's volume."""
        if self.is_3d:
            return (self.in_channels, self.grid, self.grid, self.grid)
        return (self.in_channels, size, size)

    @property
    def label(self) -> str:
        if self.is_3d:
            return f"{self.name} ({self.grid}³)"
        return f"{self.name} (k={self.context})" if self.is_2_5d else self.name


def feature_size(backbone: nn.Module) -> int:
    """The width of the pooled features the heads read."""
    fc = backbone.get_submodule("fc")
    if not isinstance(fc, nn.Linear):
        raise TypeError(f"the backbone's fc is a {type(fc).__name__}, not a Linear layer")
    return fc.in_features


def backbone_of(
    state: dict[str, torch.Tensor], source: object = "weights", grid: int | None = None
) -> Backbone:
    """The backbone a saved GradeNet state dict holds (runs made before ``--backbone`` hold a
    ``resnet18``); ``source`` (its file) names it in an error; ``grid``: a 3D network's, from
    the file's metadata.

    Raises:
        GliogradeError: a stem whose channels are not four per slice, or a 3D network's weights
            without their grid.
    """
    dense = "backbone.body.conv0.weight" in state
    stem = state.get("backbone.body.conv0.weight" if dense else "backbone.conv1.weight")
    stem = state.get("backbone.body.conv1.weight", stem)
    if stem is not None and stem.dim() == 5:
        if not grid:
            raise GliogradeError(
                f"{source}: a 3D network's weights without the grid they were trained on (the "
                "file's metadata, which `gliograde train` writes); train the fold again"
            )
        return Backbone("densenet121-3d" if dense else "resnet10-3d", 0, grid)
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
