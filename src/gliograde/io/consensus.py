"""The brain the sequences agree on: a sequence left unmasked by a preprocessing toolkit.

gliograde's brain is the voxels non-zero in any sequence (skull-stripped data has a background
of exactly 0). A toolkit may mask three sequences and leave the fourth's background at a small
constant (BrainLesion's pipeline left a TCGA patient's FLAIR at 0.0219): the union then covers
the whole grid, and the patient looks like a head with its skull on. Here such a sequence is
named and masked with the brain the other three agree on.

Masking, not refusing: the other three sequences are consistent, the sequence's own brain lies
inside theirs, and the change is said in a warning that ``check``, ``prepare`` and ``predict``
show. Where two or more sequences disagree there is no majority to trust, and nothing is
changed: the out-of-distribution guard then names the sequences whose brain is implausible.
"""

from __future__ import annotations

import functools

import numpy as np

from gliograde import MODALITIES, SEQUENCE_NAMES

LONE_SHARE = 0.2
"""A sequence is unmasked when more than this share of its non-zero voxels are zero in every
other sequence. On the four real BraTS 2020 subjects the share is 0 for every sequence (their
masks are identical); a background left at a constant gives well over half."""
CONSTANT_SHARE = 0.9
"""...and it is masked only when one value covers this share of those voxels: a background
left at a constant. Anything else there (a skull, a wider field of view) is real signal, left
for the out-of-distribution guard to refuse."""


def lone_sequences(nonzero: np.ndarray) -> list[int]:
    """The channels whose non-zero voxels lie mostly where every other channel is zero."""
    count = nonzero.sum(axis=0, dtype=np.uint8)
    lone = []
    for c in range(len(nonzero)):
        alone = np.count_nonzero(nonzero[c] & (count == 1))
        if alone > LONE_SHARE * max(int(np.count_nonzero(nonzero[c])), 1):
            lone.append(c)
    return lone


def none_can_be_lone(channels: list[np.ndarray], union: np.ndarray) -> bool:
    """Whether the voxel counts alone rule out a lone sequence (the usual case, decided in a
    few passes over the voxels instead of :func:`lone_sequences`' many).

    A channel's voxels that are zero in every other channel lie in the union of all channels
    outside the largest other channel's: there are at most ``union - max(others)`` of them.
    When that bound is within ``LONE_SHARE`` of the channel's own count, it is not lone.
    ``union``: :func:`nonzero_anywhere` of the channels.
    """
    own = [int(np.count_nonzero(v)) for v in channels]
    n_union = int(np.count_nonzero(union))
    for c, n in enumerate(own):
        most_alone = n_union - max(own[:c] + own[c + 1 :])
        if most_alone > LONE_SHARE * max(n, 1):
            return False
    return True


def nonzero_anywhere(channels: list[np.ndarray]) -> np.ndarray:
    """Voxels non-zero in any channel (for integers, one OR of the values: no boolean pass)."""
    if all(v.dtype.kind in "iu" for v in channels) and len({v.dtype for v in channels}) == 1:
        return functools.reduce(np.bitwise_or, channels) != 0
    return functools.reduce(np.logical_or, (v != 0 for v in channels))


def mask_lone_background(
    channels: list[np.ndarray], voxel_ml: float, union: np.ndarray | None = None
) -> list[str]:
    """Mask the one sequence of ``channels`` (four ``(x, y, z)`` volumes) whose background is
    not zero where the three others' is, replacing it in the list by a masked copy; returns the
    warning that says so (none when all agree, or when more than one disagrees). ``union``:
    :func:`nonzero_anywhere` of the channels, when the caller has it."""
    union = nonzero_anywhere(channels) if union is None else union
    if none_can_be_lone(channels, union):
        return []
    nonzero = np.stack([v != 0 for v in channels])
    lone = lone_sequences(nonzero)
    if len(lone) != 1:
        return []
    c = lone[0]
    others = np.any(np.delete(nonzero, c, axis=0), axis=0)
    outside = channels[c][nonzero[c] & ~others]
    values, counts = np.unique(outside[:200_000], return_counts=True)
    if counts.max() < CONSTANT_SHARE * counts.sum():
        return []  # not a background left at a value: a skull, a wider field of view; the guard
    background = float(values[np.argmax(counts)])
    channels[c] = np.where(others, channels[c], 0).astype(channels[c].dtype)
    name = SEQUENCE_NAMES[MODALITIES[c]]
    return [
        f"{name}'s background is {background:.4g}, not 0, where the other three sequences "
        f"are 0 (left unmasked by its preprocessing?): masked with their brain "
        f"({np.count_nonzero(others) * voxel_ml:,.0f} mL)"
    ]


def brain_ml_each(channels: list[np.ndarray], voxel_ml: float) -> list[float]:
    """Each sequence's own brain volume (its non-zero voxels), in mL."""
    return [round(float(np.count_nonzero(v)) * voxel_ml, 1) for v in channels]
