"""ImageNet weights of torchvision's resnet18, from a local file, with the stem adapted to 4
channels."""

from __future__ import annotations

from pathlib import Path

import torch

from gliograde.core.errors import GliogradeError
from gliograde.model.resnet import IN_CHANNELS


def adapt_stem(weight: torch.Tensor, in_channels: int = IN_CHANNELS) -> torch.Tensor:
    """Turn an RGB stem ``[64, 3, k, k]`` into ``[64, in_channels, k, k]``.

    Each new channel gets the mean RGB filter, scaled by 3/in_channels so that the response to
    an input of equal channels keeps its size.
    """
    mean = weight.mean(dim=1, keepdim=True)
    return mean.repeat(1, in_channels, 1, 1) * (weight.shape[1] / in_channels)


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
