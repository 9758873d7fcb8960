"""Selection inside the training patients: a fold's held-out patients are not read before their
final prediction; each fold records its three patient lists; the run freezes its folds."""

import json

import pytest

from gliograde.store.read import SliceStore
from gliograde.train.folds import train_folds
from helpers.runs import train_config

pytestmark = pytest.mark.slow  # trains


@pytest.fixture(scope="module")
def store(tiny_store):
    """32×32 brain slices of synth_small in 2 folds: the session's ``tiny_store`` (training
    only reads its store)."""
    return tiny_store


def record_reads(monkeypatch) -> list[str]:
    """Every subject whose slices the store hands out, in order."""
    seen = []
    read_slice, read_subject = SliceStore.read_slice, SliceStore.read_subject

    def slice_(self, subject, name, row):
        seen.append(subject)
        return read_slice(self, subject, name, row)

    def subject_(self, subject, name):
        seen.append(subject)
        return read_subject(self, subject, name)

    monkeypatch.setattr(SliceStore, "read_slice", slice_)
    monkeypatch.setattr(SliceStore, "read_subject", subject_)
    return seen


@pytest.mark.parametrize("select", ["inner", "last"])
def test_held_out_patients_are_never_read_during_training_or_selection(
    store, tmp_path, monkeypatch, select
):
    from gliograde.assess.crossval import evaluate_cross_validation

    seen = record_reads(monkeypatch)
    run = tmp_path / "run"
    config = train_config(
        store, run, folds=[0], epochs=2, epoch_slices=64, select=select, workers=0
    )
    assert train_folds(config) == [0]
    fold = json.loads((store / "splits.json").read_text())[0]
    split = json.loads((run / "fold_0" / "split.json").read_text())
    assert sorted(split) == ["select", "train", "val"]
    assert split["val"] == sorted(fold["val"])
    assert sorted(split["train"] + split["select"]) == sorted(fold["train"])
    assert (len(split["select"]) > 0) == (select == "inner")
    # Training and checkpoint selection read the fold's training patients, and nothing else.
    assert set(seen) == set(split["train"]) | set(split["select"])
    assert not set(seen) & set(fold["val"])
    seen.clear()
    evaluate_cross_validation(run)
    assert set(seen) == set(fold["val"])  # afterwards, each held-out patient is read to grade it


def test_the_run_keeps_its_own_copy_of_the_folds(store, tmp_path):
    config = train_config(store, tmp_path / "run", folds=[0], select="last")
    train_folds(config)
    assert (tmp_path / "run" / "splits.json").read_bytes() == (store / "splits.json").read_bytes()
