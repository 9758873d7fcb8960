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
        """The number of classes."""
        return len(self.confusion)

    def recall(self, c: int) -> float | None:
        """The share of class ``c``'s patients answered ``c`` (None without any)."""
        row = self.confusion[c]
        return row[c] / sum(row) if sum(row) else None

    def two_classes(self, name: str) -> None:
        """Raises ValueError: ``name`` is a figure of two classes, and these are not two."""
        if self.k != 2:
            raise ValueError(f"{name} is a two-class figure; these figures are of {self.k}")

    @property
    def sensitivity(self) -> float | None:
        """Two classes: the recall of class 1."""
        self.two_classes("sensitivity")
        return self.recall(1)

    @property
    def specificity(self) -> float | None:
        """Two classes: the recall of class 0."""
        self.two_classes("specificity")
        return self.recall(0)

    @property
    def f1(self) -> float | None:
        """Two classes: the F1 score of class 1."""
        self.two_classes("f1")
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
    weights = resample_weights(groups, len(y), n_boot, np.random.default_rng(seed))
    samples = resampled_figures(y, probs, weights)
    alpha = (1 - level) / 2
    return {
        name: [float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha))] if len(v) else None
        for name, v in samples.items()
    }


def resample_weights(groups: list, n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """How many times each of ``n`` patients is drawn in each of ``n_boot`` resamples
    ``[n_boot, n]``: each group's patients drawn with replacement, as many as the group has."""
    weights = np.zeros((n_boot, n))
    for row in weights:
        for g in groups:
            row += np.bincount(rng.choice(g, len(g)), minlength=n)
    return weights


def resampled_figures(y: np.ndarray, probs: np.ndarray, weights: np.ndarray) -> dict:
    """The figures of :func:`interval_names` in each resample (rows of ``weights``), as
    :func:`discrimination` gives them for the resampled patients; a figure a resample leaves
    undefined is left out."""
    k = probs.shape[-1]
    aucs = [weighted_auc(y == c, probs[:, c], weights) for c in ([1] if k == 2 else range(k))]
    found = [a for a in aucs if a is not None]
    cells = np.zeros((len(y), k * k))
    cells[np.arange(len(y)), y * k + answer_index(probs)] = 1
    confusion = (weights @ cells).reshape(-1, k, k)  # [resample][true][answer]
    counts, hits = confusion.sum(axis=2), np.diagonal(confusion, axis1=1, axis2=2)
    present = counts[0] > 0  # resampling keeps each class's size
    recalls = hits[:, present] / counts[:, present]
    out = {
        "auc": np.mean(found, axis=0) if found else np.array([]),
        "balanced_accuracy": recalls.mean(axis=1),
    }
    if k == 2:
        tp, fp, fn = confusion[:, 1, 1], confusion[:, 0, 1], confusion[:, 1, 0]
        f1 = tp + fp + fn > 0
        out |= {
            "sensitivity": hits[:, 1] / counts[:, 1] if present[1] else np.array([]),
            "specificity": hits[:, 0] / counts[:, 0] if present[0] else np.array([]),
            "f1": 2 * tp[f1] / (2 * tp[f1] + fp[f1] + fn[f1]),
        }
    return out


def weighted_auc(positive: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray | None:
    """The ROC AUC of ``score`` for the ``positive`` cases in each resample (rows of ``weights``:
    how many times each case is drawn), or None when either side is empty.

    The sum over (positive, negative) pairs of 1 when the positive scores higher and ½ at a tie,
    weighted by how often each is drawn: the Mann-Whitney U that
    :func:`~gliograde.model.probability.roc_auc` counts by ranks. Every partial sum is a multiple
    of ½, exact in float64, so the two agree to the last bit.
    """
    pos, neg = np.flatnonzero(positive), np.flatnonzero(~positive)
    if not len(pos) or not len(neg):
        return None
    s_pos, s_neg = score[pos, None], score[None, neg]
    pairs = (s_pos > s_neg) + 0.5 * (s_pos == s_neg)
    w_pos, w_neg = weights[:, pos], weights[:, neg]
    return ((w_pos @ pairs) * w_neg).sum(axis=1) / (w_pos.sum(axis=1) * w_neg.sum(axis=1))
