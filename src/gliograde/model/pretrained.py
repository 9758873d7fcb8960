"""Pretrained weights from a local file, never downloaded, with the stem adapted to 4 channels:
torchvision's resnet18 (ImageNet) for the 2D ResNets, torchvision's densenet121 (ImageNet) for
``densenet121``, MedicalNet's resnet_10 (Chen et al., *Med3D*, 2019) for ``resnet10-3d``."""

from __future__ import annotations

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
    backbone = model.get_submodule("backbone")
    stem = backbone.get_submodule("conv1")
    if not isinstance(stem, torch.nn.Conv2d):
        raise TypeError(f"the backbone's stem is a {type(stem).__name__}, not a Conv2d")
    state["conv1.weight"] = adapt_stem(state["conv1.weight"], stem.in_channels)
    own = backbone.state_dict()
    wrong = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    missing = [k for k in own if k not in state and not k.startswith("fc.")]
    if wrong or missing:
        raise GliogradeError(
            f"{path}: does not match resnet18 ({len(wrong)} unexpected, {len(missing)} missing "
            f"keys, e.g. {(wrong + missing)[0]})"
        )
    backbone.load_state_dict(state, strict=False)


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
    stem = body.get_submodule("conv1")
    if not isinstance(stem, torch.nn.Conv3d):
        raise TypeError(f"the backbone's stem is a {type(stem).__name__}, not a Conv3d")
    state["conv1.weight"] = adapt_stem(state["conv1.weight"], stem.in_channels)
    own = body.state_dict()
    wrong = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    missing = [k for k in own if k not in state]
    if wrong or missing:
        raise GliogradeError(
            f"{path}: does not match MedicalNet's resnet_10 ({len(wrong)} unexpected, "
            f"{len(missing)} missing keys, e.g. {(wrong + missing)[0]})"
        )
    body.load_state_dict(state)


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
    stem = body.get_submodule("conv0")
    if not isinstance(stem, torch.nn.Conv2d):
        raise TypeError(f"the backbone's stem is a {type(stem).__name__}, not a Conv2d")
    state["conv0.weight"] = adapt_stem(state["conv0.weight"], stem.in_channels)
    own = body.state_dict()
    wrong = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    # torchvision's ImageNet file predates the batch-norms' step counters: not needed
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    if wrong or missing:
        raise GliogradeError(
            f"{path}: does not match densenet121 ({len(wrong)} unexpected, {len(missing)} "
            f"missing keys, e.g. {(wrong + missing)[0]})"
        )
    body.load_state_dict(state, strict=False)
