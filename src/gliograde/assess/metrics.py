"""Discrimination figures of patients' (or slices') class probabilities ``[n, K]``, for every K,
with percentile bootstrap intervals over patients resampled within each class.

For every K: one-vs-rest AUC per class and their macro mean over the classes present, accuracy,
balanced accuracy (the mean recall over the classes present) and the K×K confusion matrix (rows
true, columns the answer of :func:`~gliograde.model.probability.answer_index`). For two classes
the figures a binary study reports are a named view of the positive class, class 1 (HGG for the
grade): sensitivity (its recall), specificity (class 0's recall) and F1; the AUC is that of
P(class 1), and the files keep their two-class keys (:meth:`Discrimination.to_dict`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from gliograde.model.probability import answer_index, class_auc, macro_auc

POSITIVE_VIEW = ("sensitivity", "specificity", "f1")
"""The two-class figures of the positive class (class 1)."""


@dataclass(frozen=True)
class Discrimination:
    """The figures of one set of patients at their answers."""

    auc: float | None  # macro one-vs-rest AUC over the classes present; two classes: P(class 1)'s
    auc_per_class: list[float | None]
    balanced_accuracy: float | None
    accuracy: float | None
    confusion: list[list[int]]  # [true][answer]
    n: int

    @property
    def k(self) -> int:
        return len(self.confusion)

    def recall(self, c: int) -> float | None:
        row = self.confusion[c]
        return row[c] / sum(row) if sum(row) else None

    @property
    def sensitivity(self) -> float | None:
        """Two classes: the recall of class 1."""
        return self.recall(1)

    @property
    def specificity(self) -> float | None:
        """Two classes: the recall of class 0."""
        return self.recall(0)

    @property
    def f1(self) -> float | None:
        """Two classes: the F1 score of class 1."""
        (_, fp), (fn, tp) = self.confusion
        return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None

    def figure(self, name: str) -> float | None:
        """A figure by its name in ``metrics.json`` (``auc``, ``sensitivity``, ...)."""
        return getattr(self, name)

    def to_dict(self) -> dict:
        """As ``metrics.json`` keeps it: for two classes the positive view and no per-class AUC;
        for more the per-class AUCs and how many the macro AUC averages."""
        out = asdict(self)
        if self.k == 2:
            del out["auc_per_class"]
            return out | {name: self.figure(name) for name in POSITIVE_VIEW}
        return out | {"auc_classes": sum(a is not None for a in self.auc_per_class)}


def discrimination(y: np.ndarray, probs: np.ndarray) -> Discrimination:
    """The figures of ``probs`` ``[n, K]`` against labels ``y`` (class indices).

    Raises:
        ValueError: a label that indexes no class.
    """
    y, probs = np.asarray(y).astype(int), np.asarray(probs, dtype=np.float64)
    k = probs.shape[-1]
    if len(y) and not 0 <= y.min() <= y.max() < k:
        raise ValueError(f"labels must index the {k} classes (0..{k - 1}); got {sorted(set(y))}")
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (y, answer_index(probs)), 1)
    recalls = [confusion[c, c] / confusion[c].sum() for c in range(k) if confusion[c].sum()]
    return Discrimination(
        auc=macro_auc(y, probs),
        auc_per_class=class_auc(y, probs),
        balanced_accuracy=float(np.mean(recalls)) if recalls else None,
        accuracy=float(np.trace(confusion) / len(y)) if len(y) else None,
        confusion=confusion.tolist(),
        n=len(y),
    )


def interval_names(k: int) -> tuple[str, ...]:
    """The figures given a bootstrap interval: the positive view's too, for two classes."""
    return ("auc", "balanced_accuracy", *(POSITIVE_VIEW if k == 2 else ()))


def bootstrap_intervals(
    y: np.ndarray, probs: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, list[float] | None]:
    """Percentile bootstrap intervals over patients resampled within each class present
    (``{}`` with fewer than two classes present)."""
    y, probs = np.asarray(y).astype(int), np.asarray(probs, dtype=np.float64)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)]
    if len(groups) < 2:
        return {}
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {name: [] for name in interval_names(probs.shape[-1])}
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(g, len(g)) for g in groups])
        figures = discrimination(y[idx], probs[idx])
        for name, values in samples.items():
            value = figures.figure(name)
            if value is not None:
                values.append(value)
    alpha = (1 - level) / 2
    return {
        k: [float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha))] if v else None
        for k, v in samples.items()
    }
