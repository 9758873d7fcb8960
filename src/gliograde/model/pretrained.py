"""Pretrained weights from a local file, never downloaded, with the stem adapted to 4 channels:
torchvision's resnet18 (ImageNet) for the 2D ResNets, torchvision's densenet121 (ImageNet) for
``densenet121``, MedicalNet's resnet_10 (Chen et al., *Med3D*, 2019) for ``resnet10-3d``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from gliograde.core.errors import GliogradeError
from gliograde.model.resnet import IN_CHANNELS


def adapt_stem(weight: torch.Tensor, in_channels: int = IN_CHANNELS) -> torch.Tensor:
    """Turn a stem of C channels (RGB ``[64, 3, k, k]``, or MedicalNet's one-channel
    ``[64, 1, k, k, k]``) into one of ``in_channels``.

    Each new channel gets the mean filter, scaled by C/in_channels so that the response to an
    input of equal channels keeps its size.
    """
    mean = weight.mean(dim=1, keepdim=True)
    spatial = (1,) * (weight.dim() - 2)
    return mean.repeat(1, in_channels, *spatial) * (weight.shape[1] / in_channels)


def load_torchvision_weights(model: torch.nn.Module, path: Path) -> None:
    """Load a torchvision resnet18 state dict (ImageNet) into the backbone; fc is left new.

    Raises:
        GliogradeError: unreadable file, or keys/shapes that are not torchvision's resnet18.
    """
    from gliograde.model.weights import load_state_dict

    state = load_state_dict(path)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    if "conv1.weight" not in state:
        raise GliogradeError(f"{path}: not a torchvision resnet18 state dict (no conv1.weight)")
    part = model.get_submodule("backbone")
    load_part(part, state, Stem("conv1", torch.nn.Conv2d), f"{path}: does not match resnet18",
              optional=lambda k: k.startswith("fc."))  # fmt: skip


def load_medicalnet_weights(model: torch.nn.Module, path: Path) -> None:
    """Load a MedicalNet resnet_10 checkpoint (``{"state_dict": {"module.conv1.weight": …}}``)
    into a ``resnet10-3d`` backbone's body, as MONAI's ``resnet10(pretrained=…)`` loads it (its
    strided layers in place of MedicalNet's dilated ones); the segmentation head and any class
    head are left out, the class head stays new.

    Raises:
        GliogradeError: unreadable file, or keys/shapes that are not MedicalNet's resnet_10.
    """
    from gliograde.model.weights import load_state_dict

    state = {k.removeprefix("module."): v for k, v in load_state_dict(path).items()}
    state = {k: v for k, v in state.items() if not k.startswith(("conv_seg.", "fc."))}
    if "conv1.weight" not in state or state["conv1.weight"].dim() != 5:
        raise GliogradeError(f"{path}: not a MedicalNet 3D ResNet (no 3D conv1.weight)")
    body = model.get_submodule("backbone.body")
    load_part(body, state, Stem("conv1", torch.nn.Conv3d),
              f"{path}: does not match MedicalNet's resnet_10")  # fmt: skip


def load_torchvision_densenet(model: torch.nn.Module, path: Path) -> None:
    """Load a torchvision densenet121 state dict (ImageNet) into the ``densenet121`` backbone's
    body, renamed as MONAI names its layers (``denselayerN.norm1`` →
    ``denselayerN.layers.norm1``; the old ``norm.1`` form too); the classifier is left out,
    the class head stays new.

    Raises:
        GliogradeError: unreadable file, or keys/shapes that are not torchvision's densenet121.
    """
    import re

    from gliograde.model.weights import load_state_dict

    state = {}
    for key, value in load_state_dict(path).items():
        if key.startswith("classifier."):
            continue
        key = re.sub(r"(denselayer\d+\.(?:norm|relu|conv))\.([12])\.", r"\1\2.", key)
        key = re.sub(
            r"^(denseblock\d+\.denselayer\d+)\.", r"\1.layers.", key.removeprefix("features.")
        )
        state[key] = value
    if "conv0.weight" not in state:
        raise GliogradeError(f"{path}: not a torchvision densenet121 state dict (no conv0)")
    body = model.get_submodule("backbone.body")
    # torchvision's ImageNet file predates the batch-norms' step counters: not needed
    load_part(body, state, Stem("conv0", torch.nn.Conv2d), f"{path}: does not match densenet121",
              optional=lambda k: k.endswith("num_batches_tracked"))  # fmt: skip


@dataclass(frozen=True)
class Stem:
    """A network's first convolution: its name in the part loaded, and its kind."""

    name: str
    kind: type[torch.nn.Conv2d] | type[torch.nn.Conv3d]


def load_part(
    part: torch.nn.Module,
    state: dict[str, torch.Tensor],
    stem: Stem,
    mismatch: str,
    optional: Callable[[str], bool] = lambda key: False,
) -> None:
    """Load ``state`` into ``part`` (a backbone or its body), its stem adapted to the part's
    input channels (:func:`adapt_stem`); keys of ``part`` that ``optional`` accepts may be
    missing (they keep their values).

    Raises:
        GliogradeError: ``mismatch`` (the file and the network), with the keys that are
            unexpected or missing.
    """
    conv = part.get_submodule(stem.name)
    if not isinstance(conv, stem.kind) or not isinstance(conv, torch.nn.modules.conv._ConvNd):
        raise TypeError(
            f"the backbone's stem is a {type(conv).__name__}, not a {stem.kind.__name__}"
        )
    key = f"{stem.name}.weight"
    state[key] = adapt_stem(state[key], conv.in_channels)
    own = part.state_dict()
    wrong = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    missing = [k for k in own if k not in state and not optional(k)]
    if wrong or missing:
        raise GliogradeError(
            f"{mismatch} ({len(wrong)} unexpected, {len(missing)} missing keys, e.g. "
            f"{(wrong + missing)[0]})"
        )
    part.load_state_dict(state, strict=False)
