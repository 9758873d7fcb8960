"""Batched augmentation on whatever device the batch is on (no CPU worker needed on a GPU).

Applied to training batches only: random flips, a small rotation and scaling, and a random
intensity scale and shift per channel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def augment_batch(
    x: torch.Tensor,
    max_degrees: float = 10.0,
    max_scale: float = 0.1,
    intensity: float = 0.1,
    generator: torch.Generator | None = None,
    sequences: int | None = None,
) -> torch.Tensor:
    """Augment a batch ``[B, C, H, W]``; each sample gets its own random draw.

    ``sequences``: channels come in groups of this many sequences (2.5D: a slice's neighbours,
    each with the four), and a sequence's intensity change is the same in every group; None:
    each channel its own.
    """
    b = x.shape[0]
    dev = x.device

    def uniform(*shape):
        return torch.rand(*shape, generator=generator, device="cpu").to(dev) * 2 - 1

    angle = uniform(b) * math.radians(max_degrees)
    scale = 1.0 + uniform(b) * max_scale
    flip_x = torch.where(uniform(b) > 0, -1.0, 1.0).to(dev)
    flip_y = torch.where(uniform(b) > 0, -1.0, 1.0).to(dev)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    zero = torch.zeros_like(cos)
    # Rotation/scale times a flip: [[cos*fx, -sin*fy, 0], [sin*fx, cos*fy, 0]] per sample.
    theta = torch.stack(
        [
            torch.stack([cos * flip_x, -sin * flip_y, zero], dim=1),
            torch.stack([sin * flip_x, cos * flip_y, zero], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    groups = 1 if sequences is None else x.shape[1] // sequences
    per_group = x.shape[1] // groups
    gain = (1.0 + uniform(b, per_group, 1, 1) * intensity).repeat(1, groups, 1, 1)
    shift = (uniform(b, per_group, 1, 1) * intensity).repeat(1, groups, 1, 1)
    brain = (out != 0).to(out.dtype)  # keep the background at 0
    return out * gain + shift * brain


def augment_volumes(x: torch.Tensor, **options) -> torch.Tensor:
    """Augment a batch of volumes ``[B, 4, Z, X, Y]``: :func:`augment_batch`'s draw for each
    volume, the same on each of its axial planes (a rotation about the z axis, in-plane flips and
    scale), and the same intensity change throughout. ``options``: :func:`augment_batch`'s."""
    b, c, z, h, w = x.shape
    planes = x.permute(0, 2, 1, 3, 4).reshape(b, z * c, h, w)  # each plane's 4 sequences
    out = augment_batch(planes, **{**options, "sequences": c})
    return out.reshape(b, z, c, h, w).permute(0, 2, 1, 3, 4)
