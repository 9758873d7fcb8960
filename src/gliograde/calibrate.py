"""Calibration and uncertainty: is P(HGG) a probability, and when should the model say "unsure"?

* Temperature scaling with a bias on the logit of P(HGG): ``p_cal = sigmoid(logit(p) / T + b)``
  (Platt's logistic calibration written as temperature and bias), one pair for slices and one
  for patients, fitted on the out-of-fold (validation) predictions; ``predict`` uses them.
  The bias is there because training weights the classes (or balances the sampler) as if HGG
  and LGG were equally common, which shifts every logit by about log(prior ratio); a
  temperature alone cannot undo a shift, and on the demo it made slice-level ECE worse. The
  temperature-only figures are still reported beside it. The pair is applied only when it also
  lowers the Brier score out of sample (each fold calibrated by the other folds); otherwise the
  probabilities are left as they are. The "after" figures are measured on the predictions the
  calibration was fitted on (in-sample); the cross-fitted figures beside them.
* Expected calibration error over 10 equal-width bins of P(HGG), and the Brier score.
* Uncertainty per patient: the sum of four non-negative terms, each 0 for a certain answer —
  binary entropy of the calibrated probability (bits), spread (standard deviation) of the slice
  probabilities, disagreement under test-time flips, and disagreement between fold models
  (``predict`` only: in cross-validation each patient has one model). A patient is flagged
  ``uncertain`` above a threshold chosen on validation predictions.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-7
TARGET_CONFIDENT_ACCURACY = 0.95


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^−z), written with tanh so that it cannot overflow (and needs no SciPy)."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def apply_temperature(p: np.ndarray, temperature: float, bias: float = 0.0) -> np.ndarray:
    """Rescale probabilities P(HGG) on their logit: ``sigmoid(logit(p) / temperature + bias)``."""
    return sigmoid(logit(p) / temperature + bias)


def nll(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def fit_temperature(p: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of ``y`` (1.0 if undefined)."""
    from scipy.optimize import minimize_scalar

    y = np.asarray(y, dtype=np.float64)
    if len(y) == 0 or y.min() == y.max():
        return 1.0
    z = logit(p)
    result = minimize_scalar(
        lambda log_t: nll(sigmoid(z / np.exp(log_t)), y), bounds=(-4.0, 4.0), method="bounded"
    )
    return float(np.exp(result.x))


def fit_temperature_and_bias(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The temperature and bias that minimise the NLL of ``y`` ((1.0, 0.0) if undefined).

    Both are bounded (T in [e^-4, e^4], |b| ≤ 10) so that perfectly separated validation
    predictions, common in small folds, give a finite answer.
    """
    from scipy.optimize import minimize

    y = np.asarray(y, dtype=np.float64)
    if len(y) == 0 or y.min() == y.max():
        return 1.0, 0.0
    z = logit(p)
    result = minimize(
        lambda v: nll(sigmoid(z / np.exp(v[0]) + v[1]), y),
        x0=np.zeros(2),
        method="L-BFGS-B",
        bounds=[(-4.0, 4.0), (-10.0, 10.0)],
    )
    return float(np.exp(result.x[0])), float(result.x[1])


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """ECE over ``bins`` equal-width bins of P(HGG): Σ_b (n_b / n) · |mean(y_b) − mean(p_b)|."""
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(p) == 0:
        return 0.0
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            total += m.sum() / len(p) * abs(y[m].mean() - p[m].mean())
    return float(total)


def brier(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((np.asarray(p, float) - np.asarray(y, float)) ** 2)) if len(p) else 0.0


def calibration_summary(p: np.ndarray, y: np.ndarray, fold: np.ndarray) -> dict:
    """Calibration (temperature and bias) fitted on these predictions, and whether to use it.

    The pair is fitted on all the predictions. It is *applied* (``temperature`` and ``bias``,
    what ``predict`` uses) only when it also helps out of sample: when each fold calibrated by
    a pair fitted on the other folds has a lower Brier score than no calibration. On a few
    dozen patients a fitted calibration can follow noise; then the probabilities are left as
    they are (temperature 1, bias 0) and ``applied`` is false.

    ``*_after``: with the applied calibration, on these predictions (in-sample).
    ``*_after_crossfit``: each fold calibrated by the other folds (out-of-sample).
    ``ece_after_fitted`` and ``ece_after_temperature_only``: the fitted pair, and a temperature
    without bias, in-sample, for comparison.
    """
    fitted_t, fitted_b = fit_temperature_and_bias(p, y)
    crossfit = cross_fitted(p, y, fold)
    applied = bool(brier(crossfit, y) < brier(p, y))
    t, b = (fitted_t, fitted_b) if applied else (1.0, 0.0)
    after = apply_temperature(p, t, b)
    t_only = apply_temperature(p, fit_temperature(p, y))
    return {
        "temperature": t,
        "bias": b,
        "applied": applied,
        "fitted_temperature": fitted_t,
        "fitted_bias": fitted_b,
        "ece_before": expected_calibration_error(p, y),
        "ece_after": expected_calibration_error(after, y),
        "ece_after_crossfit": expected_calibration_error(crossfit, y),
        "ece_after_fitted": expected_calibration_error(apply_temperature(p, fitted_t, fitted_b), y),
        "ece_after_temperature_only": expected_calibration_error(t_only, y),
        "brier_before": brier(p, y),
        "brier_after": brier(after, y),
        "brier_after_crossfit": brier(crossfit, y),
    }


def cross_fitted(p: np.ndarray, y: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Calibrate each fold with a temperature and bias fitted on the other folds."""
    out = np.empty(len(p), dtype=np.float64)
    for k in np.unique(fold):
        m = fold == k
        t, b = fit_temperature_and_bias(p[~m], y[~m]) if (~m).any() else (1.0, 0.0)
        out[m] = apply_temperature(p[m], t, b)
    return out


def binary_entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def uncertainty_score(p_cal, slice_spread, tta_spread, fold_spread) -> np.ndarray:
    """The patient uncertainty: entropy + slice spread + flip disagreement + fold disagreement."""
    return binary_entropy(p_cal) + np.asarray(slice_spread) + tta_spread + fold_spread


def choose_threshold(u: np.ndarray, correct: np.ndarray, target: float = TARGET_CONFIDENT_ACCURACY):
    """The largest uncertainty threshold whose confident patients (u ≤ t) reach ``target`` accuracy.

    Flags as few patients as possible; when no threshold reaches the target, the one with the best
    confident accuracy is taken.
    """
    u = np.asarray(u, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    candidates = np.unique(u)
    best_t, best_acc = float(candidates.max()) if len(u) else 0.0, -1.0
    for t in candidates[::-1]:
        acc = correct[u <= t].mean()
        if acc >= target:
            return float(t)
        if acc > best_acc:
            best_t, best_acc = float(t), acc
    return best_t


def flag_summary(u: np.ndarray, correct: np.ndarray, threshold: float) -> dict:
    flagged = np.asarray(u) > threshold
    correct = np.asarray(correct, dtype=bool)

    def acc(m):
        return float(correct[m].mean()) if m.any() else None

    return {
        "threshold": threshold,
        "share_flagged": float(flagged.mean()) if len(u) else 0.0,
        "n_flagged": int(flagged.sum()),
        "n_confident": int((~flagged).sum()),
        "accuracy_confident": acc(~flagged),
        "accuracy_flagged": acc(flagged),
        "accuracy_all": acc(np.ones_like(flagged)),
    }
