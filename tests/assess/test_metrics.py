"""Discrimination figures of ``[n, K]`` probabilities against hand computations, K = 2 and 3."""

import numpy as np
import pytest

from gliograde.assess.metrics import bootstrap_intervals, discrimination


def two(p1) -> np.ndarray:
    p1 = np.asarray(p1, dtype=np.float64)
    return np.stack([1 - p1, p1], axis=-1)


# Six patients of three classes (WHO 2, 3, 4, say): rows are P(2), P(3), P(4).
Y3 = np.array([0, 0, 1, 1, 2, 2])
PROBS3 = np.array(
    [
        [0.7, 0.2, 0.1],  # 0, right
        [0.3, 0.4, 0.3],  # 0, called 1
        [0.2, 0.5, 0.3],  # 1, right
        [0.1, 0.3, 0.6],  # 1, called 2
        [0.1, 0.2, 0.7],  # 2, right
        [0.2, 0.1, 0.7],  # 2, right
    ]
)


def test_two_classes_by_hand():
    y = np.array([0, 0, 1, 1, 1])
    m = discrimination(y, two([0.1, 0.6, 0.4, 0.8, 0.9]))
    # answered 0 1 0 1 1 → TN 1, FP 1, FN 1, TP 2
    assert m.confusion == [[1, 1], [1, 2]]
    assert m.sensitivity == pytest.approx(2 / 3) and m.specificity == pytest.approx(1 / 2)
    assert m.balanced_accuracy == pytest.approx(7 / 12) and m.f1 == pytest.approx(2 / 3)
    assert m.auc == pytest.approx(5 / 6)  # 6 (negative, positive) pairs, 5 ranked right
    written = m.to_dict()  # metrics.json keeps its two-class keys
    assert set(written) == {"auc", "balanced_accuracy", "sensitivity", "specificity", "f1"} | {
        "accuracy", "confusion", "n"
    }  # fmt: skip


def test_three_classes_by_hand():
    m = discrimination(Y3, PROBS3)
    assert m.confusion == [[1, 1, 0], [0, 1, 1], [0, 0, 2]]
    assert m.accuracy == pytest.approx(4 / 6)
    assert m.balanced_accuracy == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)
    # class 0 against the rest: positives 0.7, 0.3; negatives 0.2, 0.1, 0.1, 0.2: 8 of 8 won;
    # class 1: positives 0.5, 0.3; negatives 0.2, 0.4, 0.2, 0.1: 0.5 beats 4, 0.3 beats 3;
    # class 2: positives 0.7, 0.7; negatives 0.1, 0.3, 0.3, 0.6: all 8 won
    assert m.auc_per_class == pytest.approx([1.0, 7 / 8, 1.0])
    assert m.auc == pytest.approx((1 + 7 / 8 + 1) / 3)
    assert m.to_dict()["auc_classes"] == 3 and "sensitivity" not in m.to_dict()


def test_a_tie_goes_to_the_higher_class():
    """P(class 1) at exactly 0.5 answers class 1 (HGG for the grade); with three classes a tie
    between the top two goes to the higher one."""
    assert discrimination(np.array([1]), two([0.5])).confusion == [[0, 0], [0, 1]]
    tied = np.array([[0.4, 0.4, 0.2]])
    assert discrimination(np.array([1]), tied).confusion[1] == [0, 1, 0]


def test_auc_counts_a_tie_between_the_classes_as_half_a_pair():
    y = np.array([0, 0, 1, 1])
    p = two([0.2, 0.5, 0.5, 0.9])  # pairs: (0.2,0.5) (0.2,0.9) (0.5,0.9) right, (0.5,0.5) tie
    assert discrimination(y, p).auc == pytest.approx(3.5 / 4)
    assert discrimination(1 - y, p).auc == pytest.approx(0.5 / 4)


@pytest.mark.parametrize("k", [2, 3])
def test_auc_is_none_with_one_class(k):
    probs = np.full((2, k), 0.1 / (k - 1))
    probs[:, 1] = 0.9
    m = discrimination(np.array([1, 1]), probs)
    assert m.auc is None and m.balanced_accuracy == 1.0  # the one class present: recalled


def test_bootstrap_of_a_perfect_ranking_is_certain():
    y = np.array([0] * 5 + [1] * 15)
    ci = bootstrap_intervals(y, two(np.linspace(0, 1, 20)), n_boot=200)
    assert ci["auc"] == [1.0, 1.0]
    assert set(ci) == {"auc", "balanced_accuracy", "sensitivity", "specificity", "f1"}


@pytest.mark.parametrize("k", [2, 3])
def test_intervals_hold_the_point_figure_and_need_two_classes(k):
    rng = np.random.default_rng(2)
    y = np.repeat(np.arange(k), 20)
    probs = rng.dirichlet(np.ones(k), 20 * k)
    probs[np.arange(20 * k), y] += 1.0
    probs /= probs.sum(axis=1, keepdims=True)
    point = discrimination(y, probs)
    ci = bootstrap_intervals(y, probs, n_boot=200)
    for name in ("auc", "balanced_accuracy"):
        low, high = ci[name]
        assert low <= point.figure(name) <= high and high - low < 0.5
    assert bootstrap_intervals(np.zeros(5, dtype=int), probs[:5]) == {}


@pytest.mark.parametrize("k", [2, 3, 4])
def test_each_resample_has_the_figures_of_its_patients(k):
    """The bootstrap's figures, computed for all resamples at once, are those
    :func:`discrimination` gives each resample's patients, to the last bit: with tied scores,
    and (k = 4) a class absent from the labels."""
    from gliograde.assess.metrics import resample_weights, resampled_figures

    rng = np.random.default_rng(k)
    y = rng.integers(0, min(k, 3), 30)
    probs = np.round(rng.dirichlet(np.ones(k), 30), 1)  # rounded: ties in every class
    probs /= probs.sum(axis=1, keepdims=True)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)]
    weights = resample_weights(groups, 30, 50, np.random.default_rng(0))
    figures = resampled_figures(y, probs, weights)
    draws = np.random.default_rng(0)  # the same draws, resample by resample
    for b in range(50):
        idx = np.concatenate([draws.choice(g, len(g)) for g in groups])
        assert np.array_equal(np.bincount(idx, minlength=30), weights[b])
        each = discrimination(y[idx], probs[idx])
        for name, values in figures.items():
            assert values[b] == each.figure(name), (b, name)


def test_the_positive_view_is_refused_for_three_classes():
    figures = discrimination(Y3, PROBS3)
    for name in ("sensitivity", "specificity", "f1"):
        with pytest.raises(ValueError, match=f"{name} is a two-class figure"):
            figures.figure(name)
