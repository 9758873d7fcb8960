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
from gliograde.infer.patient import apply_calibration, sigmoid


def test_a_perfectly_calibrated_set_has_ece_0():
    p = np.array([0.25] * 4 + [0.75] * 4)
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    assert expected_calibration_error(p, y) == pytest.approx(0.0)


def test_ece_and_brier_by_hand():
    p = np.array([0.9, 0.9, 0.1, 0.1])
    y = np.array([0, 0, 1, 1])
    assert expected_calibration_error(p, y) == pytest.approx(0.9)  # both bins off by 0.9
    assert brier(p, y) == pytest.approx(0.81)


def test_temperature_scaling_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 20_000)
    y = (rng.random(len(z)) < sigmoid(z)).astype(float)  # calibrated logits z
    overconfident = sigmoid(z * 2.5)  # what a model with temperature 1/2.5 would say
    t = fit_temperature(overconfident, y)
    assert t == pytest.approx(2.5, rel=0.05)
    after = apply_calibration(overconfident, t)
    assert expected_calibration_error(after, y) < expected_calibration_error(overconfident, y)


def test_cross_fitting_uses_the_other_folds():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 2, 4000)
    y = (rng.random(len(z)) < sigmoid(z)).astype(float)
    fold = np.arange(len(z)) % 4
    p = sigmoid(z * 3.0)
    out = apply_pairs(p, fold, cross_fitted_pairs(p, y, fold))
    for k in range(4):  # each fold gets a temperature near 3, fitted without it
        m = fold == k
        t = np.median(np.log(p[m] / (1 - p[m])) / np.log(out[m] / (1 - out[m])))
        assert t == pytest.approx(3.0, rel=0.15)


def test_threshold_flags_as_few_as_possible_for_95_percent_confident_accuracy():
    u = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 1.0])
    correct = np.array([True, True, True, True, False, True])
    t = choose_threshold(u, correct)
    assert t == pytest.approx(0.4)  # u ≤ 0.4: 4/4 right; adding 0.9 drops to 4/5
    s = flag_figures(u > t, correct)
    assert s["n_flagged"] == 2 and s["accuracy_confident"] == 1.0
    assert s["accuracy_flagged"] == 0.5 and s["share_flagged"] == pytest.approx(1 / 3)


def test_calibration_summary_after_is_not_worse_than_before():
    rng = np.random.default_rng(2)
    z = rng.normal(0, 2, 3000)
    y = (rng.random(len(z)) < sigmoid(z)).astype(float)
    s, pairs = calibration_summary(sigmoid(3 * z), y, np.arange(len(z)) % 5)
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
    y = (rng.random(len(z)) < sigmoid(z)).astype(float)
    shifted = sigmoid((z - 1.5) * 2.0)  # so logit(shifted) / 2 + 1.5 = z
    t, b = fit_temperature_and_bias(shifted, y)
    assert t == pytest.approx(2.0, rel=0.05) and b == pytest.approx(1.5, abs=0.1)
    s, _ = calibration_summary(shifted, y, np.arange(len(z)) % 5)
    assert s["ece_after"] < 0.02 < s["ece_temperature_only_crossfit"] < s["ece_before"]


def test_separable_predictions_give_finite_calibration():
    p = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    y = np.array([0, 0, 0, 1, 1, 1])
    t, b = fit_temperature_and_bias(p, y)
    assert np.isfinite(t) and np.isfinite(b) and t >= np.exp(-4) - 1e-9
    assert fit_temperature_and_bias(p, np.ones(6)) == (1.0, 0.0)  # one class: nothing to fit


def test_a_calibration_that_does_not_hold_out_of_sample_is_not_applied():
    # Two folds miscalibrated in opposite directions: a pair fitted on one fold makes the other
    # worse, so the cross-fitted Brier score rises and the probabilities are left as they are.
    rng = np.random.default_rng(4)
    z = rng.normal(0, 2, 4000)
    y = (rng.random(len(z)) < sigmoid(z)).astype(float)
    fold = np.arange(len(z)) % 2
    p = np.where(fold == 0, sigmoid(3 * z), sigmoid(z / 3))
    s, pairs = calibration_summary(p, y, fold)
    assert not s["applied"] and (s["temperature"], s["bias"]) == (1.0, 0.0)
    assert all(pair == {"temperature": 1.0, "bias": 0.0} for pair in pairs.values())
    assert s["brier_crossfit"] > s["brier_before"]
    assert s["ece_after"] == pytest.approx(s["ece_before"])
    assert s["fitted_temperature"] != 1.0  # it was fitted, and reported, but not applied
