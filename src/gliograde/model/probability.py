"""The arithmetic of an answer: class probabilities ``[..., K]``, for every K (two included).

A slice's or a patient's answer is a vector of K class probabilities on the last axis: ``[K]``
for one, ``[n, K]`` for n, ``[models, n, K]`` for an ensemble's slices. Nothing here takes P(class
1) alone: a two-class answer is the vector ``[1 − p, p]``. Training's checkpoint selection,
evaluation, ``predict`` and ``explain`` all go through these functions.

* **Aggregation** (:func:`patient_mean`): a patient's probabilities are the weighted mean of its
  slices'. With a segmentation, its tumour slices (at least ``min_tumor`` pixels) weigh 1 and
  the others 0, as in the reference study (:func:`seg_weights`); without one, every brain slice
  weighs its predicted probability of showing tumour (:func:`noseg_weights`).
* **Calibration** (:func:`calibrate`): ``softmax(log p / T + β)``. For two classes β = [0, b]
  (Platt's logistic calibration: ``sigmoid(logit(p) / T + b)`` on P(class 1)); for more, β = 0
  (one temperature: a bias per class is too many parameters for a few dozen patients).
* **Uncertainty** (:func:`normalised_entropy`, :func:`weighted_spread`, :func:`spread`): the
  entropy in bits over log2 K, and spreads that are the mean over the K classes of each class's
  standard deviation (for two classes, the standard deviation of P(class 1)).
* **The answer** (:func:`answer_index`): the most probable class; **a tie goes to the higher
  class index**, so that a two-class answer is class 1 when P(class 1) ≥ 0.5 (HGG at exactly
  0.5 for the grade: the cautious call).
* **AUC** (:func:`roc_auc`, :func:`class_auc`): by ranks, ties counting half; checkpoint
  selection and evaluation use the same one.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-7


def class_probabilities(p_class: np.ndarray) -> np.ndarray:
    """A network's softmax outputs ``[..., K]`` as the answer's arithmetic takes them: float64.

    With two classes the network's P(class 1) decides, and P(class 0) is ``1 − P(class 1)`` in
    float64 (a float32 softmax sums to 1 only within about 1e-7).
    """
    p = np.asarray(p_class, dtype=np.float64)
    if p.shape[-1] == 2:
        return np.stack([1.0 - p[..., 1], p[..., 1]], axis=-1)
    return p


def seg_weights(tumor_pixels: np.ndarray, min_tumor: float) -> np.ndarray:
    """1 for slices with at least ``min_tumor`` tumour pixels, else 0 (every slice when none)."""
    tumor = np.asarray(tumor_pixels) >= min_tumor
    return (tumor if tumor.any() else np.ones_like(tumor)).astype(np.float64)


def noseg_weights(p_tumor: np.ndarray) -> np.ndarray:
    """Each slice's predicted probability of showing tumour (the seg-free weights)."""
    return np.asarray(p_tumor, dtype=np.float64)


def patient_mean(probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted mean over the slice axis; a plain mean where the weights sum to ~0.

    Args:
        probs: slices' probabilities ``[..., n, K]`` (a row of slices per model, say).
        weights: ``[..., n]``, or ``[n]`` for all rows.

    Returns:
        ``[..., K]``.
    """
    p = np.moveaxis(np.asarray(probs, dtype=np.float64), -1, -2)  # [..., K, n]
    w = np.broadcast_to(np.asarray(weights, dtype=np.float64)[..., None, :], p.shape)
    total = w.sum(axis=-1)
    weighted = (p * w).sum(axis=-1) / np.maximum(total, 1e-12)
    return np.where(total > 1e-6, weighted, p.mean(axis=-1))


def calibrate(probs: np.ndarray, temperature: float = 1.0, bias: float = 0.0) -> np.ndarray:
    """``softmax(log p / temperature + β)`` over the last axis, β = [0, bias] for two classes
    and 0 for more (see the module). T > 1 softens the probabilities, T < 1 sharpens them."""
    p = np.asarray(probs, dtype=np.float64)
    z = np.log(np.clip(p, EPS, 1.0)) / temperature + bias_vector(p.shape[-1], bias)
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def bias_vector(k: int, bias: float) -> np.ndarray:
    """β of :func:`calibrate`: ``[0, bias]`` for two classes; zeros for more (no bias fitted)."""
    beta = np.zeros(k)
    if k == 2:
        beta[1] = bias
    return beta


def normalised_entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy of each answer in bits over log2 K: 0 when certain, 1 when every class is as
    likely (for K = 2, the binary entropy of P(class 1))."""
    p = np.clip(np.asarray(probs, dtype=np.float64), EPS, 1.0)
    return -(p * np.log2(p)).sum(axis=-1) / np.log2(p.shape[-1])


def answer_index(probs: np.ndarray) -> np.ndarray:
    """The answers as class indices: the most probable class, a tie to the higher index."""
    p = np.asarray(probs, dtype=np.float64)
    k = p.shape[-1]
    return k - 1 - np.argmax(p[..., ::-1], axis=-1)


def shown_probability(probs: np.ndarray, answer: int) -> float:
    """The probability an answer ``[K]`` is shown with: P(class 1) for two classes (the score a
    ROC curve reads: P(HGG) for the grade), P(answer) for more."""
    p = np.asarray(probs, dtype=np.float64)
    return float(p[1] if p.shape[-1] == 2 else p[answer])


def weighted_spread(probs: np.ndarray, weights: np.ndarray) -> float:
    """Weighted standard deviation (population form) over the slices of ``probs`` ``[n, K]``,
    averaged over the K classes; 0 for fewer than two slices or no weight."""
    p = np.asarray(probs, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if len(p) < 2 or w.sum() <= 1e-12:
        return 0.0
    mean = (w[:, None] * p).sum(axis=0) / w.sum()
    return float(np.mean(np.sqrt((w[:, None] * (p - mean) ** 2).sum(axis=0) / w.sum())))


def spread(probs: np.ndarray) -> float:
    """Standard deviation over the first axis of ``probs`` ``[m, K]``, averaged over the K
    classes (the spread between models, or between test-time flips)."""
    return float(np.asarray(probs, dtype=np.float64).std(axis=0).mean())


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC of ``score`` for the ``positive`` cases (ties count half), or None when either
    side is empty.

    By ranks (the Mann-Whitney U), which is the area under the ROC curve exactly; without
    scikit-learn's input checks, which cost more than the sum itself in a bootstrap's thousands
    of calls.
    """
    from scipy.stats import rankdata

    positive = np.asarray(positive).astype(bool)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(np.asarray(score, dtype=np.float64))  # ties: their mean rank
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def class_auc(y: np.ndarray, probs: np.ndarray) -> list[float | None]:
    """Each class's one-vs-rest AUC (None for a class absent, or alone, in ``y``). With two
    classes both are the AUC of P(class 1): it is computed once, so that they are equal to the
    last bit."""
    y = np.asarray(y).astype(int)
    p = np.asarray(probs, dtype=np.float64)
    if p.shape[-1] == 2:
        auc = roc_auc(y == 1, p[:, 1])
        return [auc, auc]
    return [roc_auc(y == c, p[:, c]) for c in range(p.shape[-1])]


def macro_auc(y: np.ndarray, probs: np.ndarray) -> float | None:
    """The mean one-vs-rest AUC over the classes it is defined for (for two classes, the AUC of
    P(class 1)); None when it is defined for none."""
    found = [a for a in class_auc(y, probs) if a is not None]
    return float(np.mean(found)) if found else None
