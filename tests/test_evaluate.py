import numpy as np
import pytest

from gliograde.evaluate import (
    SlicePredictions,
    aggregate_patients,
    binary_metrics,
    bootstrap_intervals,
    compute_metrics,
)


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


def test_auc_is_none_with_one_class():
    assert binary_metrics(np.array([1, 1]), np.array([0.2, 0.9]))["auc"] is None


def slices(rows):
    cols = list(zip(*rows))
    return SlicePredictions(
        fold=np.array(cols[0]), subject=np.array(cols[1], dtype=object), z=np.array(cols[2]),
        y=np.array(cols[3]), p_hgg=np.array(cols[4]), p_tumor=np.array(cols[5]),
        tumor_pixels=np.array(cols[6]), tumor_slice=np.array(cols[7]),
        p_hgg_flip_lr=np.array(cols[4]), p_hgg_flip_ap=np.array(cols[4]),
    )  # fmt: skip


def test_patient_aggregation_by_hand():
    s = slices([
        # fold, subject, z, y, p_hgg, p_tumor, tumour px, tumour slice
        (0, "A", 1, 1, 0.9, 0.9, 500, True),
        (0, "A", 2, 1, 0.3, 0.8, 300, True),
        (0, "A", 3, 1, 0.1, 0.1, 0, False),  # no tumour: not in the seg-based mean
        (0, "B", 1, 0, 0.2, 1.0, 400, True),
        (0, "B", 2, 0, 0.8, 0.0, 0, False),
    ])  # fmt: skip
    p = aggregate_patients(s)
    assert list(p.subject) == ["A", "B"]
    np.testing.assert_allclose(p.p_hgg, [0.6, 0.2])
    np.testing.assert_allclose(p.p_vote, [0.5, 0.0])
    np.testing.assert_allclose(p.p_hgg_noseg, [(0.81 + 0.24 + 0.01) / 1.8, 0.2])
    assert list(p.n_slices) == [2, 1]


def test_bootstrap_of_a_perfect_ranking_is_certain():
    y = np.array([0] * 5 + [1] * 15)
    p = np.linspace(0, 1, 20)
    ci = bootstrap_intervals(y, p, n_boot=200)
    assert ci["auc"] == [1.0, 1.0]


def test_compute_metrics_pools_folds():
    rows = []
    for fold, (subj, y, ph) in enumerate(
        [("A", 1, 0.8), ("B", 0, 0.3), ("C", 1, 0.4), ("D", 0, 0.1)]
    ):
        rows += [(fold // 2, subj, z, y, ph, 0.9, 200, True) for z in range(3)]
    metrics, _ = compute_metrics(slices(rows), n_boot=100)
    assert metrics["n_patients"] == 4 and metrics["n_slices"] == 12
    assert metrics["patient"]["auc"] == pytest.approx(1.0)
    assert metrics["patient"]["sensitivity"] == pytest.approx(0.5)  # C at 0.4 is called LGG
    assert [f["fold"] for f in metrics["per_fold"]] == [0, 1]


def test_top_slices_picks_the_most_tumour_in_slice_order():
    from gliograde.evaluate import top_slices

    scores = np.array([5, 1, 9, 9, 0, 7])
    assert top_slices(scores, k=3).tolist() == [2, 3, 5]
    assert top_slices(scores, k=10).tolist() == [0, 1, 2, 3, 4, 5]
