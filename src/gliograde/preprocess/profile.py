"""What a subject's volumes look like, in a few numbers: grid, spacing, obliquity, brain volume
and the shape of each sequence's intensities. ``prepare`` records them per subject and their range
over the store; ``predict`` compares a new patient with that range before grading
(:mod:`gliograde.infer.guard`)."""

from __future__ import annotations

import numpy as np


def obliquity_degrees(affine: np.ndarray) -> float:
    """The largest angle between a voxel axis and the world axis nearest to it."""
    axes = np.asarray(affine, dtype=np.float64)[:3, :3]
    norms = np.linalg.norm(axes, axis=0)
    cosines = np.abs(axes).max(axis=0) / np.maximum(norms, 1e-12)
    return float(np.degrees(np.arccos(np.clip(cosines.min(), -1.0, 1.0))))


def subject_profile(
    shape: tuple[int, ...],
    affine: np.ndarray,
    brain_voxels: int,
    stats: list[tuple],
    each_ml: list[float] | None = None,
) -> dict:
    """The numbers the guard compares, for one subject.

    Args:
        shape: the volume's ``(x, y, z)`` after reorientation to LPS.
        affine: its voxel-to-world matrix.
        brain_voxels: voxels non-zero in any sequence.
        stats: per sequence ``(low, high, mean, std)`` of the brain (clip percentiles, then
            mean and standard deviation after clipping): the clip bounds in standard deviations
            from the mean say how the intensities are spread (tails, a skull, another contrast).
        each_ml: each sequence's own brain volume (its non-zero voxels), so that an
            implausible brain can be blamed on the sequence that makes it.
    """
    spacing = np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)
    z_low = [(lo - mean) / max(std, 1e-6) for lo, _, mean, std in stats]
    z_high = [(hi - mean) / max(std, 1e-6) for _, hi, mean, std in stats]
    return {
        "shape": [int(s) for s in shape],
        "spacing_mm": [round(float(s), 4) for s in spacing],
        "obliquity_deg": round(obliquity_degrees(affine), 3),
        "brain_ml": round(float(brain_voxels * np.prod(spacing)) / 1000.0, 2),
        "z_low": [round(float(v), 4) for v in z_low],
        "z_high": [round(float(v), 4) for v in z_high],
    } | ({"brain_ml_each": list(each_ml)} if each_ml is not None else {})


def profile_range(profiles: list[dict]) -> dict:
    """Per number, the smallest and largest value over a store's subjects."""

    def span(values):
        values = np.asarray(values, dtype=np.float64)
        return [values.min(axis=0).tolist(), values.max(axis=0).tolist()]

    keys = ("shape", "spacing_mm", "obliquity_deg", "brain_ml", "z_low", "z_high")
    return {k: span([p[k] for p in profiles]) for k in keys}
