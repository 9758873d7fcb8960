"""MONAI's ResNet18, the reference :class:`gliograde.model.resnet.ResNet18` must stay equal to,
and the network ``train`` built from it until the two became one (issue 34, step 6)."""

from __future__ import annotations

import torch
from torch import nn

from gliograde.model.network import GradeNet
from gliograde.model.resnet import FEATURES


def monai_resnet18(in_channels: int = 4, num_classes: int = 2) -> nn.Module:
    """MONAI's ``ResNet`` in torchvision's resnet18 layout, as ``train`` built it before."""
    from monai.networks.nets import ResNet

    return ResNet(
        block="basic",
        layers=[2, 2, 2, 2],
        block_inplanes=[64, 128, 256, 512],
        spatial_dims=2,
        n_input_channels=in_channels,
        conv1_t_size=7,
        conv1_t_stride=2,  # MONAI's default is 1; torchvision's resnet18 has 2
        num_classes=num_classes,
        bias_downsample=False,  # torchvision's downsample convolutions have no bias
    )


class MonaiGradeNet(GradeNet):
    """:class:`GradeNet` on MONAI's ResNet: what ``train`` trained and saved before.

    Built in the old order (backbone, then tumour head), so that a seed gives the old starting
    weights; its features come from MONAI's own ``forward`` (the input of ``fc``), not from a
    copy of it.
    """

    def __init__(self, in_channels: int = 4, num_classes: int = 2):
        nn.Module.__init__(self)
        self.backbone = monai_resnet18(in_channels, num_classes)
        self.tumor_head = nn.Linear(FEATURES, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        seen = []
        hook = self.backbone.fc.register_forward_hook(lambda m, args, out: seen.append(args[0]))
        try:
            self.backbone(x)
        finally:
            hook.remove()
        return seen[0]


def randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Weights and batch-norm statistics far from a fresh network's (so that a wrong layer,
    order or folding shows in the outputs); returns ``model``."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) * 1.5 + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=gen) * 0.05)
    return model
