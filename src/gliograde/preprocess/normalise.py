"""Intensity normalisation over the brain: robust z-score per modality, background 0.

Each modality is clipped to the brain's [0.5, 99.5] percentiles before the mean and standard
deviation are taken (a few hot voxels then cannot dominate); outside the brain is 0.
"""

from __future__ import annotations

import numpy as np

CLIP_PERCENTILES = (0.5, 99.5)


def brain_stats(volume: np.ndarray, brain: np.ndarray, clip=CLIP_PERCENTILES) -> tuple:
    """(low, high, mean, std): the brain's clip percentiles, then mean and std after clipping.

    Integer volumes (BraTS stores int16) take an exact histogram path, several times faster
    than sorting the brain's voxels, with the same answer as ``np.percentile`` (linear).
    """
    if volume.dtype.kind in "iu" and volume.size:
        return integer_brain_stats(volume, brain, clip)
    values = volume[brain].astype(np.float64)
    lo, hi = np.percentile(values, clip)
    values = np.clip(values, lo, hi)
    return float(lo), float(hi), float(values.mean()), float(values.std())


def integer_brain_stats(volume: np.ndarray, brain: np.ndarray, clip) -> tuple:
    vmin = int(volume.min())
    # order="K": NIfTI data is Fortran-ordered; a histogram does not care, a C ravel would copy.
    counts = np.bincount(np.subtract(volume, vmin, dtype=np.intp).ravel(order="K"))
    # Outside the brain every modality is 0 (that is how the brain is found): remove those.
    outside = volume.size - int(np.count_nonzero(brain))
    if outside:  # then zeros exist, so vmin <= 0 and bin -vmin holds them
        counts[-vmin] -= outside
    n = volume.size - outside
    values = np.arange(len(counts), dtype=np.float64) + vmin
    cumulative = np.cumsum(counts)

    def order_statistic(k: int) -> float:  # the k-th smallest brain value (0-based)
        return float(values[np.searchsorted(cumulative, k, side="right")])

    bounds = []
    for q in clip:
        pos = q / 100.0 * (n - 1)
        k = int(np.floor(pos))
        below, above = order_statistic(k), order_statistic(min(k + 1, n - 1))
        bounds.append(below + (pos - k) * (above - below))
    lo, hi = bounds
    clipped = np.clip(values, lo, hi)
    mean = float(np.dot(counts, clipped) / n)
    std = float(np.sqrt(np.dot(counts, (clipped - mean) ** 2) / n))
    return lo, hi, mean, std


def apply_zscore(volume: np.ndarray, brain: np.ndarray, stats: tuple) -> np.ndarray:
    """``(clip(volume, low, high) − mean) / std`` inside the brain, 0 outside; float32."""
    lo, hi, mean, std = stats
    out = np.clip(volume.astype(np.float32), lo, hi)
    out -= np.float32(mean)
    out /= np.float32(max(std, 1e-6))
    out[~brain] = 0.0
    return out


def brain_box_zyx(brain_zyx: np.ndarray, brain_per_z: np.ndarray) -> tuple[slice, ...]:
    """The smallest (z, y, x) box that holds the whole brain (one pass over the mask)."""
    plane = brain_zyx.any(axis=0)  # (y, x): brain anywhere along z

    def span(hits: np.ndarray) -> slice:
        return slice(int(hits[0]), int(hits[-1]) + 1) if len(hits) else slice(0, 0)

    rows, columns = np.flatnonzero(plane.any(axis=1)), np.flatnonzero(plane.any(axis=0))
    return span(np.flatnonzero(brain_per_z)), span(rows), span(columns)


def brain_mask(images: np.ndarray) -> np.ndarray:
    """Brain = voxels non-zero in any modality (BraTS volumes are skull-stripped, background 0)."""
    if images.dtype.kind in "iu":
        return np.bitwise_or.reduce(images, axis=0) != 0
    return np.any(images != 0, axis=0)
