"""evaluate --test: an independent labelled cohort graded exactly as predict grades it."""

import csv
import json

import pytest

from gliograde.assess.testset import TestCohort
from gliograde.predict import predict_subjects
from helpers.cli import invoke
from helpers.data import hgg_of, write_manifest

pytestmark = pytest.mark.slow  # trains (tiny_run); grades a test cohort


def test_evaluate_test_on_a_csv_manifest_cohort(tiny_run, synth_small, tmp_path):
    from gliograde.assess.evaluate import evaluate_test
    from gliograde.assess.report import write_report

    _, run, _ = tiny_run
    subjects = sorted(p.name for p in synth_small.iterdir() if p.is_dir())
    manifest = write_manifest(synth_small.parent / "test.csv", synth_small, subjects)
    before = (run / "calibration.json").read_bytes()
    record = evaluate_test(run, TestCohort(manifest, recalibrate=True), tmp_path / "test", "cpu")
    metrics = record.to_dict()
    assert metrics == json.loads((tmp_path / "test" / "metrics.json").read_text())
    for name in ("metrics.json", "predictions_patients.csv", "roc.png", "calibration.json"):
        assert (tmp_path / "test" / name).is_file()
    assert metrics["n_patients"] == 10 and metrics["skipped"] == {}
    p = metrics["patient"]
    assert p["auc"] is not None and len(p["auc_ci"]) == 2
    for key in ("balanced_accuracy", "sensitivity", "specificity"):
        assert key in p
    assert {"ece_before", "ece_after", "brier_after"} <= set(p["calibration"])
    assert {"coverage", "accuracy_confident", "accuracy_flagged"} <= set(p["uncertainty"])
    assert "seg" in metrics["recalibrated"]
    assert (run / "calibration.json").read_bytes() == before  # the run's own is left as it was
    card = (tmp_path / "test" / "MODEL_CARD.md").read_text()
    independent = card.split("## Metrics: Independent cohort", 1)[1]
    low, high = p["ci95"]["auc"]
    assert f"- ROC AUC: {p['auc']:.3f} (95 % CI {low:.3f}–{high:.3f})" in independent
    assert f"Computed with {metrics['inference']['precision']} inference on cpu" in independent
    # each test patient's answer is predict's answer
    answers = {a.subject: a.to_dict() for a in predict_subjects([synth_small], run)}
    with open(tmp_path / "test" / "predictions_patients.csv", newline="") as f:
        for row in csv.DictReader(f):
            assert float(row["p_hgg"]) == pytest.approx(answers[row["subject"]]["p_hgg"], abs=1e-5)
    assert metrics["synthetic"] and "SYNTHETIC DATA" in write_report(tmp_path / "test").read_text()


def test_evaluate_test_on_a_one_grade_cohort(tiny_run, synth_small, tmp_path):
    from gliograde.assess.evaluate import evaluate_test

    _, run, _ = tiny_run
    hgg = sorted(hgg_of(synth_small))
    manifest = write_manifest(synth_small.parent / "hgg.csv", synth_small, hgg, grade="HGG")
    metrics = evaluate_test(run, TestCohort(manifest), tmp_path / "hgg", "cpu").to_dict()
    p = metrics["patient"]
    assert p["auc"] is None and "at least two classes" in p["note"]
    assert p["accuracy"] is not None and p["sensitivity"] == p["accuracy"]
    result = invoke(
        "evaluate", run, "--test", manifest, "--out", tmp_path / "cli", "--device", "cpu"
    )
    assert result.exit_code == 0, result.stderr
    assert "AUC needs patients of at least two classes" in result.stdout
