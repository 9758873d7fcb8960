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
        if alone > LONE_SHARE * max(np.count_nonzero(nonzero[c]), 1):
            lone.append(c)
    return lone


def mask_lone_background(images: np.ndarray, voxel_ml: float) -> list[str]:
    """Mask, in place, the one sequence of ``images`` ``(4, x, y, z)`` whose background is not
    zero where the three others' is; returns the warning that says so (none when all agree, or
    when more than one disagrees)."""
    nonzero = images != 0
    lone = lone_sequences(nonzero)
    if len(lone) != 1:
        return []
    c = lone[0]
    others = np.any(np.delete(nonzero, c, axis=0), axis=0)
    outside = images[c][nonzero[c] & ~others]
    values, counts = np.unique(outside[:200_000], return_counts=True)
    if counts.max() < CONSTANT_SHARE * counts.sum():
        return []  # not a background left at a value: a skull, a wider field of view; the guard
    background = float(values[np.argmax(counts)])
    images[c][~others] = 0
    name = SEQUENCE_NAMES[MODALITIES[c]]
    return [
        f"{name}'s background is {background:.4g}, not 0, where the other three sequences "
        f"are 0 (left unmasked by its preprocessing?): masked with their brain "
        f"({np.count_nonzero(others) * voxel_ml:,.0f} mL)"
    ]


def brain_ml_each(images: np.ndarray, voxel_ml: float) -> list[float]:
    """Each sequence's own brain volume (its non-zero voxels), in mL."""
    return [round(float(np.count_nonzero(v)) * voxel_ml, 1) for v in images]
