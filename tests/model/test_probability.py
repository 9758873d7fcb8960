"""The arithmetic of an answer on ``[..., K]`` probabilities, by hand, K = 2 and 3."""

import numpy as np
import pytest

from gliograde.model.probability import (
    answer_index,
    calibrate,
    class_probabilities,
    macro_auc,
    normalised_entropy,
    noseg_weights,
    patient_mean,
    seg_weights,
    shown_probability,
    spread,
    weighted_spread,
)


def two(p1) -> np.ndarray:
    p1 = np.asarray(p1, dtype=np.float64)
    return np.stack([1 - p1, p1], axis=-1)


def test_patient_aggregation_by_hand():
    p = two([0.9, 0.3, 0.1])
    pixels = np.array([500, 300, 0])  # the last slice has no tumour: not in the seg-based mean
    assert patient_mean(p, seg_weights(pixels, 100)) == pytest.approx([0.4, 0.6])
    p_tumor = np.array([0.9, 0.8, 0.1])
    expected = (0.81 + 0.24 + 0.01) / 1.8
    assert patient_mean(p, noseg_weights(p_tumor)) == pytest.approx([1 - expected, expected])
    assert seg_weights(np.array([5, 0]), 100).tolist() == [1.0, 1.0]  # none: every slice
    # per model: [models, slices, K] in, [models, K] out; three classes as well
    per_model = patient_mean(np.array([two([0.2, 0.4]), two([0.6, 1.0])]), np.array([1.0, 3.0]))
    np.testing.assert_allclose(per_model[:, 1], [0.35, 0.9])
    three = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    np.testing.assert_allclose(patient_mean(three, [1.0, 3.0]), [0.3, 0.225, 0.475])


def test_two_class_calibration_is_platts_on_p_class_1():
    """softmax(log p / T + [0, b]) is sigmoid(logit(p1) / T + b)."""
    p1 = np.array([0.05, 0.3, 0.5, 0.8, 0.99])
    t, b = 1.7, -0.4
    logit = np.log(p1 / (1 - p1))
    expected = 1 / (1 + np.exp(-(logit / t + b)))
    out = calibrate(two(p1), t, b)
    np.testing.assert_allclose(out[:, 1], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)


def test_three_class_calibration_is_one_temperature():
    p = np.array([0.2, 0.5, 0.3])
    soft = np.sqrt(p) / np.sqrt(p).sum()  # softmax(log p / 2)
    np.testing.assert_allclose(calibrate(p, 2.0, bias=5.0), soft)  # no bias for K > 2


def test_a_tie_goes_to_the_higher_class():
    assert answer_index(two([0.5, 0.49, 0.51])).tolist() == [1, 0, 1]
    three = np.array([[0.4, 0.4, 0.2], [0.3, 0.35, 0.35], [0.5, 0.3, 0.2]])
    assert answer_index(three).tolist() == [1, 2, 0]


def test_entropy_spreads_and_shown_probability_by_hand():
    assert normalised_entropy(two(0.5)) == pytest.approx(1.0)
    binary = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))
    assert normalised_entropy(two(0.75)) == pytest.approx(binary)
    assert normalised_entropy(np.full(3, 1 / 3)) == pytest.approx(1.0)
    # two classes: the spread of P(class 1); weights 3:1 → mean 0.25, variance 0.1875
    assert weighted_spread(two([0.0, 1.0]), np.array([3.0, 1.0])) == pytest.approx(np.sqrt(0.1875))
    assert weighted_spread(two([0.7]), np.array([1.0])) == 0.0
    three = np.array([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5]])
    assert spread(three) == pytest.approx((0.2 + 0.0 + 0.2) / 3)
    assert shown_probability(two(0.3), 0) == pytest.approx(0.3)  # the score: P(class 1)
    assert shown_probability(np.array([0.2, 0.5, 0.3]), 1) == 0.5  # the answer's


def test_a_network_pair_is_made_to_sum_to_one():
    raw = np.array([[0.30000001, 0.70000005]], dtype=np.float32)  # a float32 softmax's pair
    p = class_probabilities(raw)
    assert p.dtype == np.float64 and p[0, 0] + p[0, 1] == 1.0
    assert p[0, 1] == np.float64(np.float32(0.70000005))


def test_macro_auc_by_hand():
    y = np.array([0, 0, 1, 1])
    assert macro_auc(y, two([0.2, 0.5, 0.5, 0.9])) == pytest.approx(3.5 / 4)
    assert macro_auc(np.array([1, 1]), two([0.2, 0.9])) is None
