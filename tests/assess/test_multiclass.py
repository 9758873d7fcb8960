"""Multi-class figures against hand computations, and against the binary ones at K = 2."""

import numpy as np
import pytest

from gliograde.assess.multiclass import (
    fit_multiclass_temperature,
    multiclass_intervals,
    multiclass_metrics,
    top_class_ece,
)
from gliograde.infer.patient import normalised_entropy, with_temperature

# Six patients of three classes (WHO 2, 3, 4, say): rows are P(2), P(3), P(4).
Y = np.array([0, 0, 1, 1, 2, 2])
PROBS = np.array(
    [
        [0.7, 0.2, 0.1],  # 0, right
        [0.3, 0.4, 0.3],  # 0, called 1
        [0.2, 0.5, 0.3],  # 1, right
        [0.1, 0.3, 0.6],  # 1, called 2
        [0.1, 0.2, 0.7],  # 2, right
        [0.2, 0.1, 0.7],  # 2, right
    ]
)


def test_metrics_by_hand():
    m = multiclass_metrics(Y, PROBS)
    assert m["confusion"] == [[1, 1, 0], [0, 1, 1], [0, 0, 2]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)
    # class 0 against the rest: positives 0.7, 0.3; negatives 0.2, 0.1, 0.1, 0.2: 8 of 8 won
    assert m["auc_per_class"][0] == pytest.approx(1.0)
    # class 1: positives 0.5, 0.3; negatives 0.2, 0.4, 0.2, 0.1: 0.5 beats 4, 0.3 beats 3 → 7/8
    assert m["auc_per_class"][1] == pytest.approx(7 / 8)
    # class 2: positives 0.7, 0.7; negatives 0.1, 0.3, 0.3, 0.6: all 8 won
    assert m["auc_per_class"][2] == pytest.approx(1.0)
    assert m["auc"] == pytest.approx((1 + 7 / 8 + 1) / 3)


def test_two_classes_give_the_binary_figures():
    from gliograde.assess.calibration import expected_calibration_error, fit_temperature
    from gliograde.assess.metrics import binary_metrics
    from gliograde.infer.patient import binary_entropy

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    p1 = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.2, 60), 0.01, 0.99)
    probs = np.stack([1 - p1, p1], axis=1)
    m, b = multiclass_metrics(y, probs), binary_metrics(y, p1)
    assert m["auc"] == pytest.approx(b["auc"]) and m["confusion"] == b["confusion"]
    assert m["balanced_accuracy"] == pytest.approx(b["balanced_accuracy"])
    assert fit_multiclass_temperature(probs, y) == pytest.approx(fit_temperature(p1, y), rel=1e-3)
    assert np.allclose(normalised_entropy(probs), binary_entropy(p1))
    # the top-class ECE differs from the ECE of P(class 1) by definition; both are 0 when right
    sure = np.array([[1 - 1e-9, 1e-9], [1e-9, 1 - 1e-9]])
    assert top_class_ece(sure, np.array([0, 1])) == pytest.approx(0.0, abs=1e-6)
    assert expected_calibration_error(sure[:, 1], np.array([0, 1])) == pytest.approx(0, abs=1e-6)


def test_temperature_softens_an_overconfident_model():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    honest = np.full((300, 3), 0.2)
    honest[np.arange(300), y] = 0.6  # right with 0.6 ...
    flip = rng.random(300) < 0.4  # ... but right only 60 % of the time
    honest[flip] = np.roll(honest[flip], 1, axis=1)
    overconfident = with_temperature(honest, 0.3)  # sharpened
    t = fit_multiclass_temperature(overconfident, y)
    assert t > 1.5  # the fit softens it back
    assert top_class_ece(with_temperature(overconfident, t), y) < top_class_ece(overconfident, y)
    assert np.allclose(with_temperature(overconfident, t).sum(axis=1), 1.0)


def test_intervals_hold_the_point_figure_and_need_two_classes():
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1, 2], 20)
    probs = rng.dirichlet([1, 1, 1], 60)
    probs[np.arange(60), y] += 1.0
    probs /= probs.sum(axis=1, keepdims=True)
    point = multiclass_metrics(y, probs)
    ci = multiclass_intervals(y, probs, n_boot=200)
    for name in ("auc", "balanced_accuracy"):
        low, high = ci[name]
        assert low <= point[name] <= high and high - low < 0.5
    assert multiclass_intervals(np.zeros(5, dtype=int), probs[:5]) == {}
