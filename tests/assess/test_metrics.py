import numpy as np
import pytest

from gliograde.assess.metrics import binary_metrics, bootstrap_intervals


def test_binary_metrics_by_hand():
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.8, 0.9])
    m = binary_metrics(y, p)
    # predicted 0 1 0 1 1 → TN 1, FP 1, FN 1, TP 2
    assert m["confusion"] == [[1, 1], [1, 2]]
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(1 / 2)
    assert m["balanced_accuracy"] == pytest.approx(7 / 12)
    assert m["f1"] == pytest.approx(2 / 3)
    # 6 (negative, positive) pairs, 5 ranked right
    assert m["auc"] == pytest.approx(5 / 6)


def test_auc_counts_a_tie_between_the_classes_as_half_a_pair():
    from gliograde.assess.metrics import roc_auc

    y = np.array([0, 0, 1, 1])
    p = np.array([0.2, 0.5, 0.5, 0.9])  # pairs: (0.2,0.5) (0.2,0.9) (0.5,0.9) right, (0.5,0.5) tie
    assert roc_auc(y, p) == pytest.approx(3.5 / 4)
    assert roc_auc(1 - y, p) == pytest.approx(0.5 / 4)


def test_auc_is_none_with_one_class():
    assert binary_metrics(np.array([1, 1]), np.array([0.2, 0.9]))["auc"] is None


def test_bootstrap_of_a_perfect_ranking_is_certain():
    y = np.array([0] * 5 + [1] * 15)
    p = np.linspace(0, 1, 20)
    ci = bootstrap_intervals(y, p, n_boot=200)
    assert ci["auc"] == [1.0, 1.0]
