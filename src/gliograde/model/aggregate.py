"""How a patient's slice outputs become one P(HGG) (or, for a target of K classes, K class
probabilities): a weighted mean over its slices.

The weights say which slices speak for the patient. With a segmentation, its tumour slices
(those with at least ``min_tumor_pixels`` of tumour) weigh 1 and the others 0, as in the
reference study. Without one, every brain slice weighs its predicted probability of showing
tumour (the model's second head). Training's checkpoint selection, evaluation, ``predict`` and
``explain`` all aggregate through these functions.
"""

from __future__ import annotations

import numpy as np


def seg_weights(tumor_pixels: np.ndarray, min_tumor: int) -> np.ndarray:
    """1 for slices with at least ``min_tumor`` tumour pixels, else 0 (every slice when none)."""
    tumor = np.asarray(tumor_pixels) >= min_tumor
    return (tumor if tumor.any() else np.ones_like(tumor)).astype(np.float64)


def noseg_weights(p_tumor: np.ndarray) -> np.ndarray:
    """Each slice's predicted probability of showing tumour (the seg-free weights)."""
    return np.asarray(p_tumor, dtype=np.float64)


def patient_mean(p: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean over the last axis (slices); a plain mean where the weights sum to ~0.

    Args:
        p: ``[..., slices]`` slice probabilities (one row per model, say).
        weights: the same shape, or ``[slices]``.
    """
    p = np.asarray(p, dtype=np.float64)
    w = np.broadcast_to(np.asarray(weights, dtype=np.float64), p.shape)
    total = w.sum(axis=-1)
    weighted = (p * w).sum(axis=-1) / np.maximum(total, 1e-12)
    return np.where(total > 1e-6, weighted, p.mean(axis=-1))


def slice_mean(scores: np.ndarray, weights: np.ndarray, multi: bool) -> np.ndarray:
    """:func:`patient_mean` over the slice axis of scores
    ``[..., n]`` (two classes) or ``[..., n, K]`` (``multi``), weights ``[..., n]``."""
    if not multi:
        return patient_mean(scores, weights)
    return patient_mean(np.moveaxis(scores, -1, -2), np.asarray(weights)[..., None, :])


def class_scores(p_class: np.ndarray) -> np.ndarray:
    """Slice outputs ``[..., K]`` as the rule scores them: P(class 1) for two classes, the
    probabilities as they are for more."""
    return p_class[..., 1] if p_class.shape[-1] == 2 else p_class
