"""The networks on a whole volume ``[4, G, G, G]`` (``resnet10-3d``, ``densenet121-3d``), and
MONAI's DenseNet121 in either dimension, split as gliograde's heads need them.

Both are MONAI's (``monai.networks.nets``), never rewritten. Each has ``features(x)`` (pooled
features ``[B, F]``), ``fc`` (the class head) and its four stages under ``body`` at strides 4 to
32, like the 2D backbones (:mod:`gliograde.model.backbones`).

The 3D ResNet10 is built as MedicalNet's (Chen et al., 2019) and MONAI's ``resnet10`` with
MedicalNet weights are: a 7³ stem of stride 2, a max-pool, shortcut type B, no bias in the
shortcut's projection. So its module names and shapes are those of a MedicalNet checkpoint,
and the ``body`` could take one from a local file.
"""

from __future__ import annotations

import torch
from torch import nn

RESNET3D_STAGES = {f"layer{i}": f"body.layer{i}" for i in range(1, 5)}
DENSENET_STAGES = {"layer1": "body.denseblock1", "layer2": "body.denseblock2",
                   "layer3": "body.denseblock3", "layer4": "body.norm5"}  # fmt: skip
"""DenseNet's modules at the ResNet stages' strides; the deepest, its last block's
batch-normalised output (what the heads pool)."""


class DenseNet(nn.Module):
    """MONAI's ``DenseNet121`` (2D or 3D): ``body`` (MONAI's ``features``, ending in its last
    batch-norm), then ReLU and global average pooling as in MONAI's class layers
    (``features``), and the class head ``fc`` (1024 → K)."""

    def __init__(self, in_channels: int, num_classes: int, spatial_dims: int = 2):
        super().__init__()
        from monai.networks.nets import DenseNet121

        net = DenseNet121(
            spatial_dims=spatial_dims, in_channels=in_channels, out_channels=num_classes
        )
        out = net.class_layers.get_submodule("out")
        if not isinstance(out, nn.Linear):
            raise TypeError(f"MONAI's DenseNet121 ends in a {type(out).__name__}, not a Linear")
        self.body: nn.Module = net.features
        self.fc = out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x)).flatten(2).mean(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class ResNet3D(nn.Module):
    """MONAI's ``resnet10`` on a volume (MedicalNet's layout, see the module's docstring):
    ``body`` (the network up to its pooled features, 512 wide) and the class head ``fc``."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        from monai.networks.nets import resnet10

        self.body = resnet10(
            spatial_dims=3,
            n_input_channels=in_channels,
            conv1_t_stride=2,
            shortcut_type="B",
            bias_downsample=False,
            feed_forward=False,
            num_classes=num_classes,
        )
        self.fc = nn.Linear(512, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))
