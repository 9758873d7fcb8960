"""The network in plain PyTorch, without MONAI: what ``predict`` runs (MONAI's import alone takes
about 2 s, more than ``predict`` may spend in all). Same layers, parameter names and order as
MONAI's ResNet, so that both hold the same parameters and give the same logits."""

from __future__ import annotations

import torch
from torch import nn

IN_CHANNELS = 4
NUM_CLASSES = 2
FEATURES = 512


class BasicBlock(nn.Module):
    """MONAI's ``ResNetBlock`` (2D, basic) in plain PyTorch: same layers, names and order."""

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))
        residual = x if self.downsample is None else self.downsample(x)
        return self.act(out + residual)


class PlainResNet18(nn.Module):
    """The network of :func:`resnet18_backbone` without importing MONAI, for inference.

    Importing MONAI takes about 2 s, more than ``predict`` may spend in all; both networks hold
    the same parameters and give the same logits.
    """

    def __init__(self, in_channels: int = IN_CHANNELS, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.act = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        widths, planes = [64, 128, 256, 512], 64
        for i, width in enumerate(widths, start=1):
            stride = 1 if i == 1 else 2
            layer = nn.Sequential(BasicBlock(planes, width, stride), BasicBlock(width, width, 1))
            setattr(self, f"layer{i}", layer)
            planes = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(FEATURES, num_classes)
