import json

import numpy as np
import pytest

from gliograde.store.splits import make_splits


@pytest.mark.parametrize(("n_hgg", "n_lgg", "folds"), [(293, 76, 5), (30, 10, 5), (7, 3, 3)])
def test_splits_are_by_patient_and_stratified(n_hgg, n_lgg, folds):
    ids = [f"S{i:03d}" for i in range(n_hgg + n_lgg)]
    labels = [1] * n_hgg + [0] * n_lgg
    splits, note = make_splits(ids, labels, folds, seed=1)
    assert note is None and len(splits) == folds
    grade = dict(zip(ids, labels))
    val_seen = []
    for fold in splits:
        assert not set(fold["train"]) & set(fold["val"])  # no subject on both sides
        assert set(fold["train"]) | set(fold["val"]) == set(ids)
        val_seen += fold["val"]
        share = n_hgg / len(ids)
        hgg_val = sum(grade[s] for s in fold["val"])
        assert abs(hgg_val - share * len(fold["val"])) <= 1  # within one subject
    assert sorted(val_seen) == ids  # each subject validated exactly once
    json.dumps(splits)  # nnU-Net's splits_final.json shape: plain lists of ids


def test_splits_are_seeded():
    ids = [f"S{i}" for i in range(40)]
    labels = list(np.arange(40) % 4 == 0)
    labels = [int(v) for v in labels]
    assert make_splits(ids, labels, 5, 7) == make_splits(list(reversed(ids)), labels[::-1], 5, 7)
    assert make_splits(ids, labels, 5, 7) != make_splits(ids, labels, 5, 8)


def test_too_few_subjects_lowers_the_folds_and_says_so():
    splits, note = make_splits(["a", "b", "c", "d"], [1, 1, 0, 0], 5, 0)
    assert len(splits) == 2 and "2 made" in note
    splits, note = make_splits(["a", "b", "c"], [1, 1, 0], 5, 0)
    assert splits == [] and "fewer than 2" in note


def test_three_classes_lower_the_folds_to_the_rarest_and_need_two_present():
    ids = [f"S{i:02d}" for i in range(30)]
    labels = [0] * 14 + [1] * 14 + [2] * 2  # two subjects of the rarest class
    splits, note = make_splits(ids, labels, 5, 0)
    assert len(splits) == 2 and "only 2 subjects of one class" in note
    for split in splits:  # every class in every fold's validation patients
        assert {labels[ids.index(s)] for s in split["val"]} == {0, 1, 2}
    splits, note = make_splits(ids[14:], labels[14:], 5, 0)  # classes 1 and 2 only: a test set
    assert len(splits) == 2 and note
    assert make_splits(ids[:14], labels[:14], 5, 0) == (
        [],
        "no cross-validation folds: a class has fewer than 2 subjects",
    )
