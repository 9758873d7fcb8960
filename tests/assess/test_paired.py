"""DeLong's test against a case computed by hand, and the paired bootstrap against cases whose
answer is known."""

import math

import numpy as np
import pytest

from gliograde.assess.metrics import bootstrap_intervals
from gliograde.assess.paired import delong_test, paired_bootstrap, structural_components

Y = np.array([1, 1, 1, 0, 0])
A = np.array([0.9, 0.8, 0.3, 0.5, 0.1])
B = np.array([0.9, 0.2, 0.3, 0.5, 0.1])


def test_structural_components_by_hand():
    v10, v01 = structural_components(Y.astype(bool), A)
    assert v10.tolist() == [1.0, 1.0, 0.5]  # 0.3 beats 0.1, not 0.5
    assert v01.tolist() == pytest.approx([2 / 3, 1.0])


def test_delong_matches_the_hand_computed_case():
    """By hand: AUC(A) = 5/6, AUC(B) = 2/3. Positives' components A (1, 1, ½), B (1, ½, ½):
    variances 1/12 and 1/12, covariance 1/24, so var(A-B)/m = (1/12)/3 = 1/36. Negatives'
    components A (2/3, 1), B (1/3, 1): variances 1/18 and 2/9, covariance 1/9, so var/n =
    (1/18)/2 = 1/36. Var(AUC A - AUC B) = 1/18; z = (1/6)·√18 = 1/√2; p = erfc(1/2)."""
    t = delong_test(Y, A, B)
    assert t.auc_a == pytest.approx(5 / 6) and t.auc_b == pytest.approx(2 / 3)
    assert t.difference == pytest.approx(1 / 6)
    assert t.se == pytest.approx(1 / math.sqrt(18))
    assert t.z == pytest.approx(1 / math.sqrt(2))
    assert t.p_value == pytest.approx(math.erfc(0.5))  # 0.4795
    swapped = delong_test(Y, B, A)
    assert swapped.z == pytest.approx(-t.z) and swapped.p_value == pytest.approx(t.p_value)


def test_delong_with_models_that_order_every_pair_alike():
    t = delong_test(Y, A, A**2)  # a monotone transform: the same ranking
    assert t.difference == 0 and t.se == 0 and t.z is None and t.p_value == 1.0


def test_delong_has_no_p_value_where_it_cannot_estimate_a_variance():
    """Two positives and two negatives, each model ordering them perfectly or not at all in a
    way whose components do not vary: the difference is 1 and the variance 0; no p-value is
    better than p = 0."""
    y = np.array([1, 1, 0, 0])
    t = delong_test(y, np.array([0.9, 0.8, 0.2, 0.1]), np.array([0.1, 0.2, 0.8, 0.9]))
    assert t.difference == 1 and t.se == 0 and t.z is None and t.p_value is None


def test_delong_needs_two_patients_per_class():
    with pytest.raises(ValueError, match="2 patients of each class"):
        delong_test(np.array([1, 0, 0]), np.array([0.1, 0.2, 0.3]), np.array([0.3, 0.2, 0.1]))


def test_delong_detects_a_clearly_better_model():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 60)
    good = y + rng.normal(0, 0.5, len(y))
    noise = rng.normal(0, 1, len(y))
    t = delong_test(y, good, noise)
    assert t.difference > 0.3 and t.p_value < 1e-6


def test_paired_bootstrap_of_a_model_with_itself_is_exactly_zero():
    d = paired_bootstrap(Y, A, np.sqrt(A), n_boot=200)
    assert d.difference == 0 and d.ci95 == (0.0, 0.0)


def test_paired_bootstrap_of_reversed_scores_is_twice_the_auc_interval_minus_one():
    """Scoring 1 - a reverses every pair, so in each resample AUC(1-a) = 1 - AUC(a) and the
    difference is 2·AUC(a) - 1: its interval is the AUC's own (the same resamples) mapped."""
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], [15, 25])
    a = np.round(y + rng.normal(0, 0.8, len(y)), 1)  # with ties
    d = paired_bootstrap(y, a, 1 - a, n_boot=500, seed=3)
    low, high = bootstrap_intervals(y, np.stack([1 - a, a], axis=1), n_boot=500, seed=3)["auc"]
    assert d.ci95 == pytest.approx((2 * low - 1, 2 * high - 1))
    assert low < (d.difference + 1) / 2 < high


def test_pairing_narrows_the_interval_of_two_close_models():
    """Two models sharing most of their errors: the paired interval is much narrower than the
    spread of either AUC on its own."""
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1], 50)
    shared = y + rng.normal(0, 1, len(y))
    a, b = shared + rng.normal(0, 0.1, len(y)), shared + rng.normal(0, 0.1, len(y))
    d = paired_bootstrap(y, a, b, n_boot=500)
    low, high = bootstrap_intervals(y, np.stack([-a, a], axis=1), n_boot=500)["auc"]
    assert d.ci95[1] - d.ci95[0] < (high - low) / 3
    assert d.ci95[0] <= d.difference <= d.ci95[1]
