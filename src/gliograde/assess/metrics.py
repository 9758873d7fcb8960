"""Discrimination metrics at a threshold and by rank, with bootstrap intervals over patients."""

from __future__ import annotations

import numpy as np


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict:
    """AUC, balanced accuracy, sensitivity (HGG recall), specificity (LGG recall), F1, confusion.

    The confusion matrix is ``[[TN, FP], [FN, TP]]`` with HGG as the positive class. AUC is None
    when only one class is present.
    """
    y = np.asarray(y).astype(int)
    pred = (np.asarray(p) >= threshold).astype(int)
    tp = int(np.sum((pred == 1) & (y == 1)))
    tn = int(np.sum((pred == 0) & (y == 0)))
    fp = int(np.sum((pred == 1) & (y == 0)))
    fn = int(np.sum((pred == 0) & (y == 1)))
    sens = tp / (tp + fn) if tp + fn else None
    spec = tn / (tn + fp) if tn + fp else None
    bal = (sens + spec) / 2 if sens is not None and spec is not None else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    return {
        "auc": roc_auc(y, p),
        "balanced_accuracy": bal,
        "sensitivity": sens,
        "specificity": spec,
        "f1": f1,
        "accuracy": (tp + tn) / len(y) if len(y) else None,
        "confusion": [[tn, fp], [fn, tp]],
        "n": len(y),
    }


def roc_auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """ROC AUC (ties count half), or None with a single class.

    Computed by ranks (the Mann-Whitney U over positives and negatives), which is the area
    under the ROC curve exactly, ties included; without scikit-learn's input checks, which
    cost more than the sum itself in the bootstrap's thousands of calls.
    """
    from scipy.stats import rankdata

    y = np.asarray(y).astype(int)
    positive = y == 1
    n_pos = int(positive.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(np.asarray(p, dtype=np.float64))  # ties: their mean rank
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def bootstrap_intervals(
    y: np.ndarray, p: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, list[float] | None]:
    """Percentile bootstrap intervals over patients, resampled within each grade."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y == c) for c in (0, 1)]
    if min(len(g) for g in groups) == 0:
        return {}
    names = ("auc", "balanced_accuracy", "sensitivity", "specificity", "f1")
    samples = {k: [] for k in names}
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(g, len(g)) for g in groups])
        m = binary_metrics(y[idx], p[idx])
        for k in names:
            if m[k] is not None:
                samples[k].append(m[k])
    alpha = (1 - level) / 2
    return {
        k: [float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha))] if v else None
        for k, v in samples.items()
    }
