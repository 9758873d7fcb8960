"""Two models on the same patients: is one's AUC higher, and by how much?

Two tests of the same question, each on the patients both models graded:

* :func:`delong_test`, DeLong, DeLong and Clarke-Pearson (Biometrics 1988, 44:837-845): the
  two AUCs are Mann-Whitney statistics; their variances and their covariance come from each
  patient's *structural components* (for a positive patient, the share of negatives it
  outscores; for a negative, the share of positives that outscore it), and the difference
  over its standard error is compared with a normal distribution;
* :func:`paired_bootstrap`: patients resampled within each class, the *same* resample scored
  by both models, the percentile interval of the differences. Pairing is what makes it
  narrower than two separate intervals: the patients hard for one model are mostly hard for
  the other.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from gliograde.assess.metrics import resample_weights, weighted_auc


@dataclass(frozen=True)
class DeLong:
    """DeLong's test of two correlated AUCs: ``auc_a - auc_b``, its standard error, z, and
    the two-sided p-value."""

    auc_a: float
    auc_b: float
    difference: float
    se: float
    z: float | None  # None when the standard error is 0
    p_value: float | None  # None when the standard error is 0 and the AUCs differ

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PairedDifference:
    """``auc_a - auc_b`` on the patients, and its paired percentile bootstrap interval."""

    difference: float
    ci95: tuple[float, float]
    n_boot: int

    def to_dict(self) -> dict:
        return {"difference": self.difference, "ci95": list(self.ci95), "n_boot": self.n_boot}


def structural_components(positive: np.ndarray, score: np.ndarray):
    """DeLong's components of one model's AUC: ``(v10, v01)``, one value per positive patient
    (the share of negatives it outscores, ties counting ½) and per negative patient (the share
    of positives that outscore it). Both average to the AUC."""
    pos, neg = score[positive][:, None], score[~positive][None, :]
    psi = (pos > neg) + 0.5 * (pos == neg)
    return psi.mean(axis=1), psi.mean(axis=0)


def delong_test(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> DeLong:
    """DeLong's test that models ``a`` and ``b`` (scores for the positive class, one per
    patient, the same patients) have the same AUC for the labels ``y`` (1 positive, 0 not).

    Raises:
        ValueError: fewer than two patients on either side (no AUC), or shapes that differ.
    """
    positive = np.asarray(y).astype(bool)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not (a.shape == b.shape == positive.shape):
        raise ValueError(f"scores {a.shape} and {b.shape} for {positive.shape} labels")
    m, n = int(positive.sum()), int((~positive).sum())
    if m < 2 or n < 2:
        raise ValueError(f"DeLong's variance needs 2 patients of each class ({m} and {n})")
    (a10, a01), (b10, b01) = structural_components(positive, a), structural_components(positive, b)
    s10 = np.cov(np.vstack([a10, b10]))  # ddof 1, as in the paper
    s01 = np.cov(np.vstack([a01, b01]))
    s = s10 / m + s01 / n
    var = s[0, 0] + s[1, 1] - 2 * s[0, 1]
    auc_a, auc_b = float(a10.mean()), float(b10.mean())
    diff = auc_a - auc_b
    se = math.sqrt(max(var, 0.0))
    if se == 0:  # every pair ordered alike; or too few patients to estimate a variance
        return DeLong(auc_a, auc_b, diff, 0.0, None, 1.0 if diff == 0 else None)
    z = diff / se
    return DeLong(auc_a, auc_b, diff, se, z, math.erfc(abs(z) / math.sqrt(2)))


def paired_bootstrap(
    y: np.ndarray, a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0
) -> PairedDifference:
    """The difference ``AUC(a) - AUC(b)`` and its 95 % percentile interval over ``n_boot``
    resamples of the patients, drawn within each class (so every resample has both), each
    resample scoring both models on the same patients.

    Raises:
        ValueError: a class with no patient.
    """
    positive = np.asarray(y).astype(bool)
    if positive.all() or not positive.any():
        raise ValueError("an AUC needs patients of both classes")
    groups = [np.flatnonzero(~positive), np.flatnonzero(positive)]  # as bootstrap_intervals
    weights = resample_weights(groups, len(positive), n_boot, np.random.default_rng(seed))
    ones = np.ones((1, len(positive)))
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diff = float(aucs(positive, a, ones)[0] - aucs(positive, b, ones)[0])
    samples = aucs(positive, a, weights) - aucs(positive, b, weights)
    low, high = np.quantile(samples, [0.025, 0.975])
    return PairedDifference(diff, (float(low), float(high)), n_boot)


def aucs(positive: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The AUC in each resample (both classes present: checked by the caller)."""
    found = weighted_auc(positive, score, weights)
    if found is None:
        raise ValueError("an AUC needs patients of both classes")
    return found
