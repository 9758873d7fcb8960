"""Is P(HGG) a probability? Fitting and measuring the calibration that ``predict`` applies.

Patients' probabilities are ``[n]`` P(class 1) for a two-class target and ``[n, K]`` for more
(see :mod:`gliograde.infer.patient`); every function takes either. With K classes: one
temperature, ``softmax(log p / T)``, no bias; ECE on the top-class probability; the Brier score
summed over the classes.

With two classes: temperature scaling with a bias on the logit,
``p_cal = sigmoid(logit(p) / T + b)`` (Platt's logistic calibration written as temperature and
bias; applied by
:func:`gliograde.infer.patient.apply_calibration`). The bias is there because training weights
the classes as if HGG and LGG were equally common, which shifts every logit; a temperature
alone cannot undo a shift. The temperature-only figures are still reported beside it.

Every figure is out of sample. In cross-validation each fold's patients are calibrated by a
pair fitted on the other folds' patients (cross-fitting); the pair saved for ``predict`` is
fitted on all of them, and applied only when the cross-fitted pairs lower the Brier score (on
a few dozen patients a fitted pair can follow noise). ECE uses 10 equal-width bins of P(HGG).
"""

from __future__ import annotations

import numpy as np

from gliograde.infer.patient import EPS, apply_calibration, logit, sigmoid


def nll(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def is_multiclass(p: np.ndarray) -> bool:
    """Patients' probabilities ``[n, K]`` (a target of more than two classes), not ``[n]``."""
    return np.asarray(p).ndim == 2


def fit_temperature(p: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of ``y`` (1.0 if undefined)."""
    from scipy.optimize import minimize_scalar

    if is_multiclass(p):
        from gliograde.assess.multiclass import fit_multiclass_temperature

        return fit_multiclass_temperature(p, y)
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
    """ECE over ``bins`` equal-width bins of P(HGG): Σ_b (n_b / n) · |mean(y_b) − mean(p_b)|
    (with K classes, of the top-class probability)."""
    if is_multiclass(p):
        from gliograde.assess.multiclass import top_class_ece

        return top_class_ece(p, y, bins)
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
    """Mean squared error of the probabilities (with K classes, summed over the classes)."""
    if not len(p):
        return 0.0
    if is_multiclass(p):
        p = np.asarray(p, float)
        onehot = np.eye(p.shape[1])[np.asarray(y, int)]
        return float(np.mean(((p - onehot) ** 2).sum(axis=1)))
    return float(np.mean((np.asarray(p, float) - np.asarray(y, float)) ** 2))


def fit_pair(p: np.ndarray, y: np.ndarray) -> dict:
    """``{"temperature", "bias"}`` fitted on these predictions (K classes: a temperature, no
    bias)."""
    if is_multiclass(p):
        return {"temperature": fit_temperature(p, y), "bias": 0.0}
    t, b = fit_temperature_and_bias(p, y)
    return {"temperature": t, "bias": b}


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
        out[m] = apply_calibration(p[m], pair["temperature"], pair["bias"])
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
        t_only[m] = apply_calibration(p[m], fit_temperature(p[other], y[other]))
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
    }, (pairs if applied else {k: {"temperature": 1.0, "bias": 0.0} for k in pairs})
