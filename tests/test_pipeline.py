"""prepare → train (tiny) → evaluate → predict, end to end on small SYNTHETIC data."""

import json
import subprocess
import sys

import numpy as np
import pytest

from gliograde.dataset import SliceStore
from gliograde.evaluate import evaluate_run
from gliograde.predict import predict_subjects
from gliograde.store import PrepareConfig, prepare
from gliograde.train import TrainConfig, run_training


@pytest.fixture(scope="module")
def tiny_run(synth_small, tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    config = PrepareConfig(slices="brain", size=32, min_tumor_pixels=20, folds=2)
    prepare(synth_small, root / "store", config, quiet=True)
    train = TrainConfig(store=str(root / "store"), out=str(root / "run"), epochs=2,
                        epoch_slices=64, batch_size=16, device="cpu", progress=False)  # fmt: skip
    metrics = run_training(train)
    return root / "store", root / "run", metrics


def test_training_writes_every_file(tiny_run):
    store, run, _ = tiny_run
    for name in ("config.json", "metrics.json", "predictions_slices.csv",
                 "predictions_patients.csv", "roc.png", "confusion.png"):  # fmt: skip
        assert (run / name).is_file(), name
    for k in (0, 1):
        assert (run / f"fold_{k}" / "model.safetensors").is_file()
        assert (run / f"fold_{k}" / "checkpoints" / "last.ckpt").is_file()
        assert (run / f"fold_{k}" / "logs" / "metrics.csv").is_file()
    saved = json.loads((run / "metrics.json").read_text())
    for key in ("auc", "balanced_accuracy", "sensitivity", "specificity", "f1"):
        assert key in saved["patient"]
    assert "auc" in saved["slice"]
    assert saved["n_patients"] == 10  # every subject validated exactly once
    n_rows = len((run / "predictions_slices.csv").read_text().splitlines()) - 1
    assert n_rows == SliceStore(store).manifest["n_slices"]
    config = json.loads((run / "config.json").read_text())
    assert config["epochs"] == 2 and "torch" in config["versions"]


def test_evaluate_recomputes_the_same_metrics(tiny_run):
    _, run, metrics = tiny_run
    again = evaluate_run(run)
    assert again["patient"]["auc"] == metrics["patient"]["auc"]
    assert again["slice"] == metrics["slice"]


def test_predict_with_and_without_seg(tiny_run, synth_small):
    _, run, _ = tiny_run
    folders = [synth_small / "Synth_0001", synth_small / "Synth_0002"]
    with_seg = predict_subjects(folders, run)
    no_seg = predict_subjects(folders, run, ignore_seg=True)
    for a, b in zip(with_seg, no_seg):
        assert a.error is None and b.error is None
        assert a.used_seg and not b.used_seg
        assert 0 <= a.p_hgg <= 1 and 0 <= b.p_hgg <= 1
        assert a.grade == ("HGG" if a.p_hgg >= 0.5 else "LGG")
        assert b.n_slices > a.n_slices  # every brain slice vs the tumour slices


def test_predict_json_on_the_real_sample(tiny_run, sample_dir):
    _, run, _ = tiny_run
    subjects = sorted(p for p in sample_dir.iterdir() if p.is_dir())
    result = subprocess.run(
        [sys.executable, "-m", "gliograde", "predict", *map(str, subjects), "--model", str(run),
         "--json"], capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)  # stdout holds the JSON and nothing else
    assert [a["subject"] for a in answers] == [p.name for p in subjects]
    for a in answers:
        assert a["grade"] in ("HGG", "LGG") and 0.0 <= a["p_hgg"] <= 1.0 and a["n_slices"] > 0
    assert np.isfinite([a["p_hgg"] for a in answers]).all()
