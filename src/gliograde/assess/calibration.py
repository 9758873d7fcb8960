"""Are the class probabilities probabilities? Fitting and measuring the calibration that
``predict`` applies.

Patients' probabilities are ``[n, K]`` (:mod:`gliograde.model.probability`), for every K. The
calibration is ``softmax(log p / T + β)`` (:func:`~gliograde.model.probability.calibrate`):

* two classes: a temperature and a bias, β = [0, b], which on P(class 1) is Platt's logistic
  calibration ``sigmoid(logit(p) / T + b)``. The bias is there because training weights the
  classes as if HGG and LGG were equally common, which shifts every logit; a temperature alone
  cannot undo a shift. The temperature-only figures are still reported beside it;
* more classes: one temperature (K − 1 biases are too many for a few dozen patients).

Every figure is out of sample. In cross-validation each fold's patients are calibrated by a
pair fitted on the other folds' patients (cross-fitting); the pair saved for ``predict`` is
fitted on all of them, and applied only when the cross-fitted pairs lower the Brier score (on a
few dozen patients a fitted pair can follow noise).

The calibration figures: for two classes, of P(class 1) as binary studies report them (ECE over
10 equal-width bins of P(class 1); the Brier score ``mean((p − y)²)``); for more, ECE of the
top-class probability and the Brier score summed over the classes.
"""

from __future__ import annotations

import numpy as np

from gliograde.model.probability import EPS, answer_index, calibrate

IDENTITY_PAIR = {"temperature": 1.0, "bias": 0.0}


def nll(probs: np.ndarray, y: np.ndarray) -> float:
    """The mean negative log-likelihood of labels ``y`` under ``probs`` ``[n, K]``."""
    p = np.asarray(probs, dtype=np.float64)[np.arange(len(y)), np.asarray(y, dtype=int)]
    return float(-np.mean(np.log(np.clip(p, EPS, 1.0))))


def fit_temperature(probs: np.ndarray, y: np.ndarray) -> float:
    """The temperature (in [e^-4, e^4]) that minimises the NLL of ``y`` (1.0 if undefined)."""
    from scipy.optimize import minimize_scalar

    y = np.asarray(y).astype(int)
    if len(y) == 0 or len(np.unique(y)) < 2:
        return 1.0
    result = minimize_scalar(
        lambda log_t: nll(calibrate(probs, np.exp(log_t)), y), bounds=(-4.0, 4.0), method="bounded"
    )
    return float(np.exp(result.x))


def fit_temperature_and_bias(probs: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Two classes: the temperature and bias that minimise the NLL of ``y`` ((1.0, 0.0) if
    undefined).

    Both are bounded (T in [e^-4, e^4], |b| ≤ 10) so that perfectly separated validation
    predictions, common in small folds, give a finite answer.
    """
    from scipy.optimize import minimize

    y = np.asarray(y).astype(int)
    if len(y) == 0 or y.min() == y.max():
        return 1.0, 0.0
    result = minimize(
        lambda v: nll(calibrate(probs, np.exp(v[0]), v[1]), y),
        x0=np.zeros(2),
        method="L-BFGS-B",
        bounds=[(-4.0, 4.0), (-10.0, 10.0)],
    )
    return float(np.exp(result.x[0])), float(result.x[1])


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """ECE over ``bins`` equal-width bins: Σ_b (n_b / n) · |observed_b − predicted_b|, of
    P(class 1) for two classes (observed: the share of class 1), of the top-class probability
    for more (observed: the share answered right)."""
    probs, y = np.asarray(probs, dtype=np.float64), np.asarray(y).astype(int)
    if len(y) == 0:
        return 0.0
    if probs.shape[-1] == 2:
        confidence, observed = probs[:, 1], (y == 1).astype(float)
    else:
        confidence = probs.max(axis=1)
        observed = (answer_index(probs) == y).astype(float)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(which):
        m = which == b
        total += m.sum() / len(y) * abs(observed[m].mean() - confidence[m].mean())
    return float(total)


def brier(probs: np.ndarray, y: np.ndarray) -> float:
    """The Brier score: ``mean((P(class 1) − y)²)`` for two classes, the squared error summed
    over the classes for more."""
    probs = np.asarray(probs, dtype=np.float64)
    if not len(probs):
        return 0.0
    onehot = np.eye(probs.shape[-1])[np.asarray(y, dtype=int)]
    if probs.shape[-1] == 2:
        return float(np.mean((probs[:, 1] - onehot[:, 1]) ** 2))
    return float(np.mean(((probs - onehot) ** 2).sum(axis=1)))


def fit_pair(probs: np.ndarray, y: np.ndarray) -> dict:
    """``{"temperature", "bias"}`` fitted on these predictions (more than two classes: a
    temperature, no bias)."""
    if np.shape(probs)[-1] == 2:
        t, b = fit_temperature_and_bias(probs, y)
        return {"temperature": t, "bias": b}
    return {"temperature": fit_temperature(probs, y), "bias": 0.0}


def cross_fitted_pairs(p: np.ndarray, y: np.ndarray, fold: np.ndarray) -> dict[int, dict]:
    """For each fold, the pair fitted on the other folds' predictions (identity when alone)."""
    pairs = {}
    for k in np.unique(fold).tolist():
        other = fold != k
        pairs[k] = fit_pair(p[other], y[other]) if other.any() else fit_pair(p[:0], y[:0])
    return pairs


def apply_pairs(p: np.ndarray, fold: np.ndarray, pairs: dict[int, dict]) -> np.ndarray:
    """Each prediction calibrated by its fold's pair."""
    out = np.empty(np.shape(p), dtype=np.float64)
    for k, pair in pairs.items():
        m = fold == k
        out[m] = calibrate(p[m], pair["temperature"], pair["bias"])
    return out


def calibration_summary(
    p: np.ndarray, y: np.ndarray, fold: np.ndarray
) -> tuple[dict, dict[int, dict]]:
    """The pair to save, whether it holds out of sample, and the figures before and after.

    Returns:
        (summary, pairs): ``summary["temperature"]``/``["bias"]`` is what ``predict`` applies;
        ``pairs`` is the pair each fold's patients are calibrated with in the reported figures.

    ``*_after``: each fold calibrated by the other folds (cross-fitted: out of sample), with
    the pairs applied only when ``applied``; ``*_crossfit``: the cross-fitted pairs in any case;
    ``ece_temperature_only_crossfit``: a temperature without bias, cross-fitted.
    """
    fitted = fit_pair(p, y)
    pairs = cross_fitted_pairs(p, y, fold)
    crossfit = apply_pairs(p, fold, pairs)
    applied = bool(len(np.unique(fold)) > 1 and brier(crossfit, y) < brier(p, y))
    after = crossfit if applied else np.asarray(p, dtype=np.float64)
    t_only = np.empty(np.shape(p))
    for k in np.unique(fold).tolist():
        m, other = fold == k, fold != k
        t_only[m] = calibrate(p[m], fit_temperature(p[other], y[other]))
    return {
        "temperature": fitted["temperature"] if applied else 1.0,
        "bias": fitted["bias"] if applied else 0.0,
        "applied": applied,
        "fitted_temperature": fitted["temperature"],
        "fitted_bias": fitted["bias"],
        "ece_before": expected_calibration_error(p, y),
        "ece_after": expected_calibration_error(after, y),
        "ece_crossfit": expected_calibration_error(crossfit, y),
        "ece_temperature_only_crossfit": expected_calibration_error(t_only, y),
        "brier_before": brier(p, y),
        "brier_after": brier(after, y),
        "brier_crossfit": brier(crossfit, y),
    }, (pairs if applied else {k: dict(IDENTITY_PAIR) for k in pairs})
