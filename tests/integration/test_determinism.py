"""The same seed gives the same synthetic data, the same store and, on CPU, the same metrics.

(Splits: tests/store/test_splits.py::test_splits_are_seeded.)
"""

import pytest

from gliograde.experiment import train_and_evaluate
from gliograde.io.synth import synth_cohort
from gliograde.preprocess.slices import PrepareConfig
from gliograde.store.write import prepare
from helpers.runs import train_config


def file_bytes(root):
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_same_synthetic_files(tmp_path):
    for name in ("a", "b"):
        synth_cohort(tmp_path / name, subjects=3, seed=11, shape=(32, 32, 20), quiet=True)
    synth_cohort(tmp_path / "c", subjects=3, seed=12, shape=(32, 32, 20), quiet=True)
    a, b, c = (file_bytes(tmp_path / n) for n in "abc")
    assert a == b
    assert a.keys() == c.keys() and a != c


@pytest.mark.slow  # prepares the cohort twice, in worker processes
def test_same_options_same_store_bytes(synth_small, tmp_path):
    config = PrepareConfig(size=32, min_tumor_pixels=20, folds=2, seed=4)
    for name in ("a", "b"):
        prepare(synth_small, tmp_path / name, config, workers=2, quiet=True)
    a, b = file_bytes(tmp_path / "a"), file_bytes(tmp_path / "b")
    assert "subjects/Synth_0001/images.npy" in a and "index.csv" in a
    assert a == b  # slice data, index, splits and manifest, byte for byte


@pytest.mark.slow  # trains twice
def test_same_seed_same_metrics_on_cpu(synth_small, tmp_path):
    prepare(
        synth_small,
        tmp_path / "store",
        PrepareConfig(size=32, min_tumor_pixels=20, folds=2),
        quiet=True,
    )
    metrics = []
    for name in ("a", "b"):
        store, out = str(tmp_path / "store"), str(tmp_path / name)
        config = train_config(store, out, epochs=2, epoch_slices=64)
        metrics.append(train_and_evaluate(config))
    assert metrics[0] == metrics[1]
    a, b = ((tmp_path / n / "predictions_slices.csv").read_bytes() for n in "ab")
    assert a == b


@pytest.mark.slow  # trains twice
def test_resident_slices_train_exactly_like_the_store(synth_small, tmp_path):
    """--resident (slices kept on the device, here the CPU) changes where x comes from, not x."""
    prepare(
        synth_small,
        tmp_path / "store",
        PrepareConfig(size=32, min_tumor_pixels=20, folds=2),
        quiet=True,
    )
    for name, resident in (("read", False), ("resident", True)):
        store, out = str(tmp_path / "store"), str(tmp_path / name)
        config = train_config(store, out, folds=[0], epochs=2, epoch_slices=64, resident=resident)
        train_and_evaluate(config)
    a, b = ((tmp_path / n / "predictions_slices.csv").read_bytes() for n in ("read", "resident"))
    assert a == b
