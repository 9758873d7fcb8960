"""The network: a ResNet18 for 4-channel slices and 2 classes, built from MONAI.

The layout is torchvision's resnet18 (7×7 stride-2 stem with padding 3 and no bias, max-pool,
four stages of two basic blocks, global average pool, fc 512→2), so torchvision ImageNet
weights load into it by name. A second head (512→1) says whether a slice shows tumour: it lets
``predict`` weight slices by tumour likelihood when a new patient has no segmentation.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from gliograde.errors import GliogradeError

IN_CHANNELS = 4
NUM_CLASSES = 2
FEATURES = 512


def resnet18_backbone(in_channels: int = IN_CHANNELS, num_classes: int = NUM_CLASSES) -> nn.Module:
    """MONAI's ResNet in torchvision's resnet18 layout (MONAI's default stem stride is 1: set 2)."""
    from monai.networks.nets import ResNet

    return ResNet(
        block="basic",
        layers=[2, 2, 2, 2],
        block_inplanes=[64, 128, 256, 512],
        spatial_dims=2,
        n_input_channels=in_channels,
        conv1_t_size=7,
        conv1_t_stride=2,
        num_classes=num_classes,
        bias_downsample=False,  # torchvision's downsample convolutions have no bias
    )


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

    Importing MONAI takes about 2 s, more than ``predict`` may spend in all (a test checks that
    both networks hold the same parameters and give the same logits).
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


class GradeNet(nn.Module):
    """ResNet18 with a grade head (``fc``, 2 logits: LGG, HGG) and a tumour head (1 logit).

    ``forward`` returns the grade logits ``[B, 2]`` (what Grad-CAM and exports see);
    :meth:`forward_heads` returns both heads. ``plain=True`` builds the same network without
    MONAI (:class:`PlainResNet18`), which ``predict`` uses to start faster.
    """

    def __init__(self, in_channels: int = IN_CHANNELS, plain: bool = False):
        super().__init__()
        if plain:
            self.backbone = PlainResNet18(in_channels, NUM_CLASSES)
        else:
            self.backbone = resnet18_backbone(in_channels, NUM_CLASSES)
        self.tumor_head = nn.Linear(FEATURES, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        b = self.backbone
        x = b.maxpool(b.act(b.bn1(b.conv1(x))))
        x = b.layer4(b.layer3(b.layer2(b.layer1(x))))
        return torch.flatten(b.avgpool(x), 1)

    def forward_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Grade logits ``[B, 2]`` and tumour logit ``[B]``."""
        f = self.features(x)
        return self.backbone.fc(f), self.tumor_head(f)[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.fc(self.features(x))


def build_model(pretrained: Path | None = None) -> GradeNet:
    """A new :class:`GradeNet`, optionally with torchvision ImageNet weights from a local file."""
    model = GradeNet()
    if pretrained is not None:
        load_torchvision_weights(model, Path(pretrained))
    return model


def adapt_stem(weight: torch.Tensor, in_channels: int = IN_CHANNELS) -> torch.Tensor:
    """Turn an RGB stem ``[64, 3, k, k]`` into ``[64, in_channels, k, k]``.

    Each new channel gets the mean RGB filter, scaled by 3/in_channels so that the response to
    an input of equal channels keeps its size.
    """
    mean = weight.mean(dim=1, keepdim=True)
    return mean.repeat(1, in_channels, 1, 1) * (weight.shape[1] / in_channels)


def load_torchvision_weights(model: GradeNet, path: Path) -> None:
    """Load a torchvision resnet18 state dict (ImageNet) into the backbone; fc is left new.

    Raises:
        GliogradeError: unreadable file, or keys/shapes that are not torchvision's resnet18.
    """
    from gliograde.safeio import load_state_dict

    state = load_state_dict(path)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    if "conv1.weight" not in state:
        raise GliogradeError(f"{path}: not a torchvision resnet18 state dict (no conv1.weight)")
    state["conv1.weight"] = adapt_stem(state["conv1.weight"], model.backbone.conv1.in_channels)
    own = model.backbone.state_dict()
    wrong = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    missing = [k for k in own if k not in state and not k.startswith("fc.")]
    if wrong or missing:
        raise GliogradeError(
            f"{path}: does not match resnet18 ({len(wrong)} unexpected, {len(missing)} missing "
            f"keys, e.g. {(wrong + missing)[0]})"
        )
    model.backbone.load_state_dict(state, strict=False)
