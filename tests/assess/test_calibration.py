"""Calibration of ``[n, K]`` probabilities: fitted, cross-fitted, measured (K = 2 and 3)."""

import numpy as np
import pytest

from gliograde.assess.calibration import (
    apply_pairs,
    brier,
    calibration_summary,
    cross_fitted_pairs,
    expected_calibration_error,
    fit_temperature,
    fit_temperature_and_bias,
)
from gliograde.assess.scoring import flag_figures
from gliograde.assess.uncertainty import choose_threshold
from gliograde.model.probability import calibrate


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def two(p1) -> np.ndarray:
    p1 = np.asarray(p1, dtype=np.float64)
    return np.stack([1 - p1, p1], axis=-1)


def test_a_perfectly_calibrated_set_has_ece_0():
    p = two([0.25] * 4 + [0.75] * 4)
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    assert expected_calibration_error(p, y) == pytest.approx(0.0)


def test_ece_and_brier_by_hand():
    p = two([0.9, 0.9, 0.1, 0.1])
    y = np.array([0, 0, 1, 1])
    assert expected_calibration_error(p, y) == pytest.approx(0.9)  # both bins off by 0.9
    assert brier(p, y) == pytest.approx(0.81)  # of P(class 1), as binary studies report it


def test_three_class_ece_and_brier_by_hand():
    p = np.array([[0.8, 0.1, 0.1], [0.8, 0.1, 0.1], [0.2, 0.5, 0.3]])
    y = np.array([0, 1, 1])
    # bin 0.8: 2 patients, right 1 of 2 → |0.5 − 0.8|; bin 0.5: 1 patient, right → |1 − 0.5|
    assert expected_calibration_error(p, y) == pytest.approx(2 / 3 * 0.3 + 1 / 3 * 0.5)
    squared = (0.04 + 0.01 + 0.01) + (0.64 + 0.81 + 0.01) + (0.04 + 0.25 + 0.09)
    assert brier(p, y) == pytest.approx(squared / 3)


def test_temperature_scaling_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 20_000)
    y = (rng.random(len(z)) < sigmoid(z)).astype(int)  # calibrated logits z
    overconfident = two(sigmoid(z * 2.5))  # what a model with temperature 1/2.5 would say
    t = fit_temperature(overconfident, y)
    assert t == pytest.approx(2.5, rel=0.05)
    after = calibrate(overconfident, t)
    assert expected_calibration_error(after, y) < expected_calibration_error(overconfident, y)


def test_cross_fitting_uses_the_other_folds():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 2, 4000)
    y = (rng.random(len(z)) < sigmoid(z)).astype(int)
    fold = np.arange(len(z)) % 4
    p = two(sigmoid(z * 3.0))
    out = apply_pairs(p, fold, cross_fitted_pairs(p, y, fold))
    for k in range(4):  # each fold gets a temperature near 3, fitted without it
        m = fold == k
        t = np.median(np.log(p[m, 1] / p[m, 0]) / np.log(out[m, 1] / out[m, 0]))
        assert t == pytest.approx(3.0, rel=0.15)


def test_threshold_flags_as_few_as_possible_for_95_percent_confident_accuracy():
    u = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 1.0])
    correct = np.array([True, True, True, True, False, True])
    t = choose_threshold(u, correct)
    assert t == pytest.approx(0.4)  # u ≤ 0.4: 4/4 right; adding 0.9 drops to 4/5
    s = flag_figures(u > t, correct)
    assert s.n_flagged == 2 and s.accuracy_confident == 1.0
    assert s.accuracy_flagged == 0.5 and s.share_flagged == pytest.approx(1 / 3)


def test_calibration_summary_after_is_not_worse_than_before():
    rng = np.random.default_rng(2)
    z = rng.normal(0, 2, 3000)
    y = (rng.random(len(z)) < sigmoid(z)).astype(int)
    s, pairs = calibration_summary(two(sigmoid(3 * z)), y, np.arange(len(z)) % 5)
    assert s["applied"] and s["temperature"] == pytest.approx(3.0, rel=0.1)
    assert s["ece_after"] <= s["ece_before"] and s["brier_after"] <= s["brier_before"]
    assert s["ece_crossfit"] < s["ece_before"]
    # the reported "after" is out of sample: each fold's own pair was fitted without it
    assert sorted(pairs) == [0, 1, 2, 3, 4]
    assert all(pair["temperature"] == pytest.approx(3.0, rel=0.1) for pair in pairs.values())


def test_temperature_and_bias_undo_a_prior_shift_that_a_temperature_alone_cannot():
    # Class-weighted training acts like a shift of every logit; simulate T = 2 and a shift of -1.5.
    rng = np.random.default_rng(3)
    z = rng.normal(1.0, 2.0, 20_000)
    y = (rng.random(len(z)) < sigmoid(z)).astype(int)
    shifted = two(sigmoid((z - 1.5) * 2.0))  # so logit(shifted) / 2 + 1.5 = z
    t, b = fit_temperature_and_bias(shifted, y)
    assert t == pytest.approx(2.0, rel=0.05) and b == pytest.approx(1.5, abs=0.1)
    s, _ = calibration_summary(shifted, y, np.arange(len(z)) % 5)
    assert s["ece_after"] < 0.02 < s["ece_temperature_only_crossfit"] < s["ece_before"]


def test_separable_predictions_give_finite_calibration():
    p = two([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    y = np.array([0, 0, 0, 1, 1, 1])
    t, b = fit_temperature_and_bias(p, y)
    assert np.isfinite(t) and np.isfinite(b) and t >= np.exp(-4) - 1e-9
    assert fit_temperature_and_bias(p, np.ones(6, dtype=int)) == (1.0, 0.0)  # nothing to fit


def test_a_calibration_that_does_not_hold_out_of_sample_is_not_applied():
    # Two folds miscalibrated in opposite directions: a pair fitted on one fold makes the other
    # worse, so the cross-fitted Brier score rises and the probabilities are left as they are.
    rng = np.random.default_rng(4)
    z = rng.normal(0, 2, 4000)
    y = (rng.random(len(z)) < sigmoid(z)).astype(int)
    fold = np.arange(len(z)) % 2
    p = two(np.where(fold == 0, sigmoid(3 * z), sigmoid(z / 3)))
    s, pairs = calibration_summary(p, y, fold)
    assert not s["applied"] and (s["temperature"], s["bias"]) == (1.0, 0.0)
    assert all(pair == {"temperature": 1.0, "bias": 0.0} for pair in pairs.values())
    assert s["brier_crossfit"] > s["brier_before"]
    assert s["ece_after"] == pytest.approx(s["ece_before"])
    assert s["fitted_temperature"] != 1.0  # it was fitted, and reported, but not applied


def test_temperature_softens_an_overconfident_three_class_model():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    honest = np.full((300, 3), 0.2)
    honest[np.arange(300), y] = 0.6  # right with 0.6 ...
    flip = rng.random(300) < 0.4  # ... but right only 60 % of the time
    honest[flip] = np.roll(honest[flip], 1, axis=1)
    overconfident = calibrate(honest, 0.3)  # sharpened
    t = fit_temperature(overconfident, y)
    assert t > 1.5  # the fit softens it back
    after = calibrate(overconfident, t)
    assert expected_calibration_error(after, y) < expected_calibration_error(overconfident, y)
    assert np.allclose(after.sum(axis=1), 1.0)
