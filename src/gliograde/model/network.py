"""The network: a backbone (a ResNet18 on 4-channel slices by default, see
:mod:`gliograde.model.backbones`) and K classes (2 by default), with a tumour head.

The default ResNet18 is MONAI's ``ResNet`` in torchvision's resnet18 layout, written in PyTorch
alone (:mod:`gliograde.model.resnet`, checked against MONAI's by the tests): ``train`` and
``predict`` build this one module. A second head (features→1) says whether a slice shows
tumour: it lets ``predict`` weight slices by tumour likelihood when a new patient has no
segmentation.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from gliograde.model.backbones import Backbone, feature_size
from gliograde.model.resnet import IN_CHANNELS, NUM_CLASSES, ResNet18
from gliograde.model.volumetric import DenseNet, ResNet3D


class GradeNet(nn.Module):
    """A backbone with a class head (``fc``, one logit per class of the target: LGG, HGG for the
    grade) and a tumour head (1 logit).

    ``forward`` returns the class logits ``[B, K]`` (what Grad-CAM and exports see);
    :meth:`forward_heads` returns both heads. Its state dict is the one every run holds, whether
    trained before or after MONAI's ``ResNet`` gave way to :class:`ResNet18` (the same names).
    """

    def __init__(
        self,
        in_channels: int = IN_CHANNELS,
        plain: bool | None = None,
        num_classes: int = NUM_CLASSES,
        backbone: str = "resnet18",
        context: int = 0,
        grid: int = 0,
    ):
        """``backbone``, ``context`` and ``grid``: see :class:`~gliograde.model.backbones.Backbone`.
        ``in_channels`` and ``plain``: ignored (the backbone says its channels); accepted
        because MONAI Bundles exported before name them in their ``inference.json``."""
        super().__init__()
        self.spec = Backbone(backbone, context, grid)
        self.backbone: ResNet18 | DenseNet | ResNet3D = self.spec.build(num_classes)
        self.tumor_head = nn.Linear(feature_size(self.backbone), 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled features ``[B, F]`` both heads read (F: 512 for a ResNet18, 1024 for
        the DenseNet121)."""
        return self.backbone.features(x)

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


def build_model(
    pretrained: Path | None = None, num_classes: int = NUM_CLASSES, spec: Backbone | None = None
) -> GradeNet:
    """A new :class:`GradeNet` with the backbone ``spec`` (default: ``resnet18``), optionally
    with pretrained weights from a local file (all but the class head, whose size is the
    target's): torchvision's ImageNet resnet18 for the ResNet18 backbones and densenet121 for
    ``densenet121``, MedicalNet's resnet_10 for ``resnet10-3d``.

    Raises:
        UsageError: ``pretrained`` for ``densenet121-3d``, which has no local loader.
    """
    spec = spec or Backbone()
    if pretrained is not None:
        spec.check_pretrained()
    model = GradeNet(
        num_classes=num_classes, backbone=spec.name, context=spec.context, grid=spec.grid
    )
    if pretrained is not None:
        from gliograde.model import pretrained as files

        load = files.load_torchvision_weights
        if spec.is_3d:
            load = files.load_medicalnet_weights
        elif spec.name == "densenet121":
            load = files.load_torchvision_densenet
        load(model, Path(pretrained))
    return model
