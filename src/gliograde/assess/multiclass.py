"""Figures for targets of K classes (WHO grade 2/3/4, say), from probabilities ``[n, K]``.

The building blocks of multi-class evaluation: discrimination (one-vs-rest AUC per class and
their macro mean, balanced accuracy, the K×K confusion matrix), percentile bootstrap intervals
over patients resampled within each class, and calibration (one temperature on the log
probabilities, ECE on the top class). With K = 2 each reduces to its binary counterpart in
:mod:`gliograde.assess.metrics` and :mod:`gliograde.assess.calibration` (tested).
"""

from __future__ import annotations

import numpy as np

from gliograde.infer.patient import EPS, with_temperature


def multiclass_metrics(y: np.ndarray, probs: np.ndarray) -> dict:
    """One-vs-rest AUC per class and macro AUC, accuracy, balanced accuracy (mean recall over
    the classes present) and the confusion matrix (rows true, columns predicted = argmax).

    An AUC is None for a class absent (or alone) in ``y``; the macro AUC averages the others,
    and ``auc_classes`` says how many it averaged.
    """
    from gliograde.assess.metrics import roc_auc

    y, probs = np.asarray(y).astype(int), np.asarray(probs, dtype=np.float64)
    k = probs.shape[1]
    if len(y) and not 0 <= y.min() <= y.max() < k:
        raise ValueError(f"labels must index the {k} classes (0..{k - 1}); got {sorted(set(y))}")
    pred = probs.argmax(axis=1)  # ties go to the lower class (at K = 2, 0.5 gives class 0)
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (y, pred), 1)
    per_class = [roc_auc((y == c).astype(int), probs[:, c]) for c in range(k)]
    found = [a for a in per_class if a is not None]
    recalls = [confusion[c, c] / confusion[c].sum() for c in range(k) if confusion[c].sum()]
    return {
        "auc_per_class": per_class,
        "auc": float(np.mean(found)) if found else None,
        "auc_classes": len(found),
        "balanced_accuracy": float(np.mean(recalls)) if recalls else None,
        "accuracy": float(np.mean(pred == y)) if len(y) else None,
        "confusion": confusion.tolist(),
        "n": len(y),
    }


def multiclass_intervals(
    y: np.ndarray, probs: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, list[float] | None]:
    """Percentile bootstrap intervals of the macro AUC and balanced accuracy, patients
    resampled within each class present."""
    y, probs = np.asarray(y).astype(int), np.asarray(probs, dtype=np.float64)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)]
    if len(groups) < 2:
        return {}
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {"auc": [], "balanced_accuracy": []}
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(g, len(g)) for g in groups])
        m = multiclass_metrics(y[idx], probs[idx])
        for name, values in samples.items():
            if m[name] is not None:
                values.append(m[name])
    alpha = (1 - level) / 2
    return {
        k: [float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha))] if v else None
        for k, v in samples.items()
    }


def multiclass_nll(probs: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(np.asarray(probs, dtype=np.float64)[np.arange(len(y)), y], EPS, 1.0)
    return float(-np.mean(np.log(p)))


def fit_multiclass_temperature(probs: np.ndarray, y: np.ndarray) -> float:
    """The temperature (in [e^-4, e^4]) that minimises the NLL of ``y`` (1.0 if undefined)."""
    from scipy.optimize import minimize_scalar

    y = np.asarray(y).astype(int)
    if len(y) == 0 or len(np.unique(y)) < 2:
        return 1.0
    result = minimize_scalar(
        lambda log_t: multiclass_nll(with_temperature(probs, np.exp(log_t)), y),
        bounds=(-4.0, 4.0),
        method="bounded",
    )
    return float(np.exp(result.x))


def top_class_ece(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """ECE of the top-class probability: Σ_b (n_b / n) · |accuracy_b − confidence_b| over
    ``bins`` equal-width bins of the confidence."""
    probs, y = np.asarray(probs, dtype=np.float64), np.asarray(y).astype(int)
    if len(y) == 0:
        return 0.0
    confidence, correct = probs.max(axis=1), (probs.argmax(axis=1) == y).astype(float)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(which):
        m = which == b
        total += m.sum() / len(y) * abs(correct[m].mean() - confidence[m].mean())
    return float(total)
