"""prepare → train (tiny) → evaluate → predict, end to end on small SYNTHETIC data."""

import json
import subprocess
import sys

import numpy as np
import pytest

from corpus import IMAGE_CORRUPTIONS, corrupt_empty_seg, first_subject
from gliograde.dataset import SliceStore
from gliograde.evaluate import evaluate_run
from gliograde.export import FORMATS
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


def test_calibration_and_uncertainty_are_saved(tiny_run):
    _, run, metrics = tiny_run
    cal = json.loads((run / "calibration.json").read_text())
    assert cal["patient_temperature"] == metrics["calibration"]["patient"]["temperature"] > 0
    u = metrics["uncertainty"]
    assert u["n_flagged"] + u["n_confident"] == 10
    assert (run / "reliability.png").is_file()
    header = (run / "predictions_patients.csv").read_text().splitlines()[0]
    assert "p_hgg_calibrated" in header and "uncertainty" in header and "flag" in header


def test_explain_and_report(tiny_run):
    from gliograde.explain import explain_store
    from gliograde.report import write_report

    store, run, _ = tiny_run
    summary = explain_store(run, store, per_patient=1)
    assert summary["layer"] == "layer1"  # 32-pixel slices: layer4's map would be 1×1
    rows = (run / "explain" / "attention.csv").read_text().splitlines()
    assert rows[0] == "subject,z,fold,share_tumor,share_brain,hit,chance"
    assert len(rows) - 1 == summary["n_slices"] > 0
    assert 0.0 <= summary["mean_share_tumor"] <= 1.0
    assert len(list((run / "explain").glob("*.png"))) == 10  # one panel per patient
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["attention"]["n_patients"] == 10
    page = write_report(run).read_text()
    assert "SYNTHETIC DATA" in page
    assert page.count("data:image/png;base64,") >= 3 + 10  # ROC, confusion, reliability, panels
    assert "http://" not in page and "https://" not in page  # opens offline


def test_predict_reports_calibrated_probability_and_uncertainty(tiny_run, synth_small):
    from gliograde.calibrate import apply_temperature

    _, run, _ = tiny_run
    cal = json.loads((run / "calibration.json").read_text())
    (p,) = predict_subjects([synth_small / "Synth_0003"], run)
    d = p.to_dict()
    t, b = cal["patient_temperature"], cal["patient_bias"]
    expected = apply_temperature(d["p_hgg_uncalibrated"], t, b)
    assert d["p_hgg"] == pytest.approx(float(expected), abs=1e-5)
    assert d["flag"] in ("uncertain", "confident") and d["uncertainty"] >= 0
    assert d["uncertainty_parts"]["folds"] >= 0  # two fold models disagree a little or not


def test_explain_new_patient_folders(tiny_run, synth_small, tmp_path):
    from gliograde.explain import explain_subjects

    _, run, _ = tiny_run
    summary = explain_subjects(run, [synth_small / "Synth_0004"], tmp_path, per_patient=2)
    assert summary["layer"] == "layer1"
    assert len(summary["panels"]["Synth_0004"]) == 2
    assert all((tmp_path / name).is_file() for name in summary["panels"]["Synth_0004"])
    assert summary["n_slices"] == 2  # the seg is there: attention measured on both panels


@pytest.mark.parametrize(
    "corrupt", IMAGE_CORRUPTIONS + [corrupt_empty_seg], ids=lambda f: f.__name__[8:]
)
def test_predict_names_a_bad_subject_and_answers_the_good_one(tiny_run, cohort_copy, corrupt):
    _, run, _ = tiny_run
    bad = first_subject(cohort_copy)
    expected = corrupt(bad)
    good = cohort_copy / "Synth_0005"
    answers = [p.to_dict() for p in predict_subjects([bad, good], run)]
    assert answers[0]["subject"] == bad.name and expected in answers[0]["error"]
    assert "error" not in answers[1] and 0.0 <= answers[1]["p_hgg"] <= 1.0


@pytest.mark.parametrize("fmt", ["safetensors", "torchscript", "onnx"])
def test_export_matches_pytorch(tiny_run, tmp_path, fmt):
    import torch

    from gliograde.export import BothHeads, export_run, run_exported
    from gliograde.inference import load_models

    _, run, _ = tiny_run
    done = export_run(run, fmt, tmp_path)
    assert [e.file for e in done] == [f"fold_0{FORMATS[fmt]}", f"fold_1{FORMATS[fmt]}"]
    assert all(e.max_abs_diff <= 1e-4 for e in done)
    record = json.loads((tmp_path / "export.json").read_text())
    assert record["input"]["shape"] == ["N", 4, 32, 32]
    assert [m["file"] for m in record["formats"][fmt]] == [e.file for e in done]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*(e.file for e in done), "export.json"]
    )
    # Independently of export_run's own check: real slices from the store, batch of 5.
    store = SliceStore(run.parent / "store")
    x = torch.from_numpy(np.asarray(store.array(store.subjects[0], "images")[:5], dtype=np.float32))
    reference = BothHeads(load_models([run / "fold_1" / "model.safetensors"])[0]).eval()
    with torch.inference_mode():
        expected = [t.numpy() for t in reference(x)]
    got = run_exported(fmt, tmp_path / done[1].file, x)
    assert got[0].shape == (5, 2) and got[1].shape == (5,)
    assert max(np.abs(a - b).max() for a, b in zip(expected, got)) <= 1e-4


def test_export_refuses_an_unknown_format(tiny_run):
    from gliograde.errors import UsageError
    from gliograde.export import export_run

    with pytest.raises(UsageError, match="choose one of safetensors, torchscript, onnx"):
        export_run(tiny_run[1], "tflite")


def test_export_of_a_folder_that_is_not_a_run_is_one_clear_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "gliograde", "export", str(tmp_path)],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"gliograde: error: {tmp_path}: not a gliograde run (no config.json); "
        "give the folder `gliograde train` wrote"
    )
