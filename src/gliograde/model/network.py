"""The network: a ResNet18 for 4-channel slices and K classes (2 by default), built from MONAI.

The layout is torchvision's resnet18 (7×7 stride-2 stem with padding 3 and no bias, max-pool,
four stages of two basic blocks, global average pool, fc 512→K), so torchvision ImageNet
weights load into it by name. A second head (512→1) says whether a slice shows tumour: it lets
``predict`` weight slices by tumour likelihood when a new patient has no segmentation.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from gliograde.model.plain import FEATURES, IN_CHANNELS, NUM_CLASSES, PlainResNet18


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


class GradeNet(nn.Module):
    """ResNet18 with a class head (``fc``, one logit per class of the target: LGG, HGG for the
    grade) and a tumour head (1 logit).

    ``forward`` returns the class logits ``[B, K]`` (what Grad-CAM and exports see);
    :meth:`forward_heads` returns both heads. ``plain=True`` builds the same network without
    MONAI (:class:`PlainResNet18`), which ``predict`` uses to start faster.
    """

    def __init__(
        self, in_channels: int = IN_CHANNELS, plain: bool = False, num_classes: int = NUM_CLASSES
    ):
        super().__init__()
        if plain:
            self.backbone = PlainResNet18(in_channels, num_classes)
        else:
            self.backbone = resnet18_backbone(in_channels, num_classes)
        self.tumor_head = nn.Linear(FEATURES, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        b = self.backbone
        x = b.maxpool(b.act(b.bn1(b.conv1(x))))
        x = b.layer4(b.layer3(b.layer2(b.layer1(x))))
        return torch.flatten(b.avgpool(x), 1)

    def forward_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Class logits ``[B, K]`` and tumour logit ``[B]``.

        The two heads run in float32 even under bfloat16 autocast: trained with them in
        bfloat16, the demo's out-of-fold patient AUC fell by 0.03 to 0.045 on two seeds; with
        them in float32 (two 512-wide linear layers, a negligible share of the work) it did not
        (``scripts/compare_training_precision.py``, docs/results/benchmarks.md).
        """
        f = self.features(x)
        if torch.is_autocast_enabled(f.device.type):
            with torch.autocast(f.device.type, enabled=False):
                return self.heads(f.float())
        return self.heads(f)

    def heads(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.backbone.fc(f), self.tumor_head(f)[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_heads(x)[0]


def build_model(pretrained: Path | None = None, num_classes: int = NUM_CLASSES) -> GradeNet:
    """A new :class:`GradeNet`, optionally with torchvision ImageNet weights from a local file
    (all but the class head, whose size is the target's)."""
    model = GradeNet(num_classes=num_classes)
    if pretrained is not None:
        from gliograde.model.pretrained import load_torchvision_weights

        load_torchvision_weights(model, Path(pretrained))
    return model
