"""What training weighs and selects on, for targets of two and of three classes."""

import numpy as np
import pytest

from gliograde.train.module import selection_aucs
from gliograde.train.sampling import class_weights


def test_class_weights_give_each_of_k_classes_the_same_weight():
    labels = np.array([0, 0, 1, 2, 2, 2])
    weights = class_weights(labels, 3)  # n / (K n_c)
    assert weights == pytest.approx([1.0, 2.0, 2 / 3])
    assert np.sum(np.array(weights)[labels]) == pytest.approx(len(labels))
    assert class_weights(np.array([0, 1, 1, 1])) == pytest.approx([2.0, 2 / 3])


def validation_outputs(p_slices, y, tumor):
    """Selection outputs of patients given as lists of slice probabilities ``[K]``."""
    rows = [(i, p, y[i], t) for i, (ps, ts) in enumerate(zip(p_slices, tumor))
            for p, t in zip(ps, ts)]  # fmt: skip
    return {
        "subject_idx": np.array([r[0] for r in rows]),
        "p": np.array([r[1] for r in rows], dtype=np.float64),
        "y": np.array([r[2] for r in rows]),
        "tumor": np.array([r[3] for r in rows], dtype=np.float64),
        "p_tumor": np.array([r[3] for r in rows], dtype=np.float64),
    }


def test_selection_of_three_classes_is_the_macro_one_vs_rest_auc_of_patients():
    # four patients, two slices each; the second slice of each has no tumour and weighs 0
    noise = [0.0, 0.0, 1.0]
    p_slices = [
        [[0.7, 0.2, 0.1], noise],  # class 0
        [[0.2, 0.5, 0.3], noise],  # class 1
        [[0.1, 0.3, 0.6], noise],  # class 2
        [[0.4, 0.4, 0.2], noise],  # class 1, ranked below patient 0 for class 0
    ]
    v = validation_outputs(p_slices, [0, 1, 2, 1], [[1, 0]] * 4)
    auc, auc_noseg, n = selection_aucs(v)
    # one vs rest on the tumour slices: class 0 ranks 0.7 above 0.2, 0.1, 0.4 (AUC 1); class 1:
    # 0.5 and 0.4 above 0.2 and 0.3 (1); class 2: 0.6 above 0.1, 0.3, 0.2 (1)
    assert n == 4 and auc == pytest.approx(1.0) and auc_noseg == pytest.approx(1.0)
    p_slices[3][0] = [0.8, 0.1, 0.1]  # now class 0 ranks patient 3 (class 1) first
    auc, _, _ = selection_aucs(validation_outputs(p_slices, [0, 1, 2, 1], [[1, 0]] * 4))
    # class 0: 0.7 vs (0.2, 0.1, 0.8) → 2/3; class 1: (0.5, 0.1) vs (0.2, 0.3) → 2/4; class 2: 1
    assert auc == pytest.approx(np.mean([2 / 3, 2 / 4, 1.0]))


def test_selection_of_two_classes_is_the_auc_of_p_class_1():
    p_slices = [[[0.2, 0.8]], [[0.3, 0.7]], [[0.4, 0.6]]]  # P(class 1): 0.8, 0.7, 0.6
    auc, _, n = selection_aucs(validation_outputs(p_slices, [0, 1, 0], [[1]] * 3))
    assert n == 3 and auc == pytest.approx(0.5)  # the positive's 0.7: above 0.6, below 0.8
