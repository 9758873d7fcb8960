"""The network's ResNet18, written in PyTorch alone: the one module that ``train`` trains and
``predict`` runs.

It is MONAI's ``ResNet`` (``block="basic"``, ``layers=[2, 2, 2, 2]``, ``spatial_dims=2``, a 7×7
stride-2 stem, ``bias_downsample=False``) layer for layer: the same modules, parameter names and
order, the same initialisation (so a seed gives the same starting weights), the same outputs.
``tests/model/test_network.py`` checks all four against MONAI's own. It is not imported from
MONAI because importing MONAI takes 2.5 to 4 s (``import monai`` loads 400-odd modules, whatever
submodule is asked for), more than ``predict`` spends on a patient beside its forward passes.

The layout is torchvision's resnet18, so torchvision ImageNet weights load into it by name.
"""

from __future__ import annotations

import torch
from torch import nn

IN_CHANNELS = 4
NUM_CLASSES = 2
FEATURES = 512
WIDTHS = (64, 128, 256, 512)


class BasicBlock(nn.Module):
    """MONAI's ``ResNetBlock`` (2D, basic): two 3×3 convolutions and a shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int, downsample: nn.Module | None):
        """``downsample``: the shortcut's projection, built before the block as MONAI does."""
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))
        residual = x if self.downsample is None else self.downsample(x)
        return self.act(out + residual)


def stage(in_planes: int, planes: int, stride: int) -> nn.Sequential:
    """Two basic blocks; the first one projects the shortcut when the shape changes."""
    downsample = None
    if stride != 1 or in_planes != planes:
        downsample = nn.Sequential(
            nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
        )
    return nn.Sequential(
        BasicBlock(in_planes, planes, stride, downsample), BasicBlock(planes, planes, 1, None)
    )


class ResNet18(nn.Module):
    """ResNet18 for ``in_channels``-channel slices and ``num_classes`` outputs (``fc``).

    ``forward`` returns the class logits ``[B, K]``, as MONAI's ``ResNet`` does;
    :meth:`features` the pooled features ``[B, 512]`` before ``fc``. Built on the meta device
    (``load_models``, which then assigns a file's tensors), it skips MONAI's initialisation:
    there is nothing to set, and PyTorch's ``normal_`` on meta tensors imports SymPy (2 s).
    """

    def __init__(self, in_channels: int = IN_CHANNELS, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, WIDTHS[0], 7, 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(WIDTHS[0])
        self.act = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        self.layer1 = stage(WIDTHS[0], WIDTHS[0], 1)
        self.layer2 = stage(WIDTHS[0], WIDTHS[1], 2)
        self.layer3 = stage(WIDTHS[1], WIDTHS[2], 2)
        self.layer4 = stage(WIDTHS[2], WIDTHS[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(FEATURES, num_classes)
        if not self.fc.weight.is_meta:  # on the meta device there are no values to set
            self.reset_like_monai()

    def reset_like_monai(self) -> None:
        """MONAI's initialisation, in its order: convolutions He-normal (fan out), batch-norms
        the identity, linear biases 0 (``fc``'s weight keeps PyTorch's default)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.act(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))
