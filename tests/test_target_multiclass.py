"""A target of three classes, end to end: a SYNTHETIC cohort with a WHO grade (2, 3, 4; grade 3
shown without a necrotic centre), prepared with ``--target WHO_grade``, trained, evaluated,
explained, reported, graded and exported; each figure checked against a hand computation on
the out-of-fold probabilities the run saved."""

import csv
import json

import numpy as np
import pytest

from gliograde.assess.explain import ExplainOptions
from gliograde.io.synth import synth_cohort
from helpers.data import SMALL_SHAPE, label_column, volume
from helpers.runs import trained_run

CLASSES = ["2", "3", "4"]


@pytest.fixture(scope="module")
def who_cohort(tmp_path_factory):
    """synth_small's subjects (same seed and shape), with WHO grades."""
    out = tmp_path_factory.mktemp("who") / "cohort"
    synth_cohort(
        out, subjects=10, lgg_fraction=0.4, seed=3, shape=SMALL_SHAPE, quiet=True, who=True
    )
    return out


@pytest.fixture(scope="module")
def who_run(who_cohort, tmp_path_factory):
    """A store of the WHO grade and a run trained on it (:func:`runs.target_run`)."""
    return trained_run(who_cohort, tmp_path_factory.mktemp("who-run"), "WHO_grade")


def who_grades(cohort) -> dict[str, str]:
    return label_column(cohort, "WHO_grade")


def test_synth_shows_grade_3_as_a_core_that_enhances(who_cohort, synth_small):
    found = who_grades(who_cohort)
    assert sorted(set(found.values())) == CLASSES
    for subject, grade in found.items():
        t1ce, plain = volume(who_cohort, subject, "t1ce"), volume(synth_small, subject, "t1ce")
        for role in ("flair", "t1", "t2"):  # only T1ce ever changes
            assert np.array_equal(
                volume(who_cohort, subject, role), volume(synth_small, subject, role)
            )
        if grade != "3":
            assert np.array_equal(t1ce, plain)  # byte for byte the cohort without --who
            continue
        seg = volume(who_cohort, subject, "seg")
        core, rim = seg == 1, seg == 4
        assert np.array_equal(t1ce[~core], plain[~core])
        assert t1ce[core].mean() == pytest.approx(t1ce[rim].mean(), rel=0.02)
        assert t1ce[core].mean() > 1.5 * plain[core].mean()  # no longer dark: no necrosis


def out_of_fold(run):
    """y and the calibrated ``[n, 3]`` probabilities from predictions_patients.csv."""
    with open(run / "predictions_patients.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    y = np.array([int(r["y"]) for r in rows])
    p = np.array([[float(r[f"p_{c}"]) for c in CLASSES] for r in rows])
    return rows, y, p


def test_evaluation_figures_are_those_of_the_three_classes(who_run, who_cohort):
    """Macro AUC = the mean of per-class one-vs-rest AUCs, confusion and balanced accuracy of
    the argmax, all recomputed by hand from the saved out-of-fold probabilities."""
    from sklearn.metrics import roc_auc_score

    manifest, run, metrics = who_run
    assert manifest.target.to_dict() == {"name": "WHO_grade", "classes": CLASSES}
    assert metrics["target"] == {"name": "WHO_grade", "classes": CLASSES}
    rows, y, p = out_of_fold(run)
    truth = who_grades(who_cohort)
    assert y.tolist() == [CLASSES.index(truth[r["subject"]]) for r in rows]
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    m = metrics["patient"]
    per_class = [roc_auc_score(y == c, p[:, c]) for c in range(3)]
    assert m["auc_per_class"] == pytest.approx(per_class, abs=1e-5)
    assert m["auc"] == pytest.approx(np.mean(per_class), abs=1e-5)
    hand = np.zeros((3, 3), dtype=int)
    for yi, pi in zip(y, p):
        hand[yi, int(np.argmax(pi))] += 1
    assert m["confusion"] == hand.tolist()
    assert [r["pred"] for r in rows] == [CLASSES[int(np.argmax(pi))] for pi in p]
    recall = [hand[c, c] / hand[c].sum() for c in range(3)]
    assert m["balanced_accuracy"] == pytest.approx(np.mean(recall))
    assert set(m["ci95"]) == {"auc", "balanced_accuracy"}
    calibration = json.loads((run / "calibration.json").read_text())
    assert calibration["seg"]["bias"] == 0.0  # one temperature, no bias, for K classes
    confidence, correct = p.max(axis=1), (p.argmax(axis=1) == y)
    assert m["calibration"]["ece_after"] == pytest.approx(
        top_class_ece(confidence, correct), abs=1e-5
    )
    for name in ("roc.png", "confusion.png", "reliability.png", "MODEL_CARD.md"):
        assert (run / name).is_file()
    card = (run / "MODEL_CARD.md").read_text()
    assert "one-vs-rest AUC per class: 2 " in card and "most probable class" in card


def top_class_ece(confidence, correct, bins=10):
    total = 0.0
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    for b in range(bins):
        m = which == b
        if m.any():
            total += m.mean() * abs(correct[m].mean() - confidence[m].mean())
    return total


def test_evaluate_recomputes_the_same_figures_from_the_saved_evidence(who_run):
    from gliograde.assess.evaluate import evaluate_run, format_table

    _, run, metrics = who_run
    again = evaluate_run(run)
    assert again["patient"]["auc"] == pytest.approx(metrics["patient"]["auc"], abs=1e-6)
    assert again["patient"]["confusion"] == metrics["patient"]["confusion"]
    text = format_table(again)
    assert "one-vs-rest AUC: 2 " in text and "sensitivity" not in text


def test_predict_answers_the_most_probable_of_three(who_run, who_cohort):
    """predict's answer for a patient is the out-of-fold answer evaluation reported for it with
    that fold's model (one rule), and its three probabilities sum to 1."""
    from gliograde.predict import PredictOptions, predict_subjects
    from gliograde.predict.formats import format_predictions, predictions_csv
    from gliograde.run import Run

    _, run, _ = who_run
    rows, _, _ = out_of_fold(run)
    fold_of = {r["subject"]: int(r["fold"]) for r in rows}
    subject = who_cohort / rows[0]["subject"]
    (prediction,) = predict_subjects(
        [subject], run, PredictOptions(fold=fold_of[subject.name], device="cpu")
    )
    answer = prediction.to_dict()
    assert answer["target"] == "WHO_grade" and list(answer["probabilities"]) == CLASSES
    got = np.array([answer["probabilities"][c] for c in CLASSES])
    assert got.sum() == pytest.approx(1.0, abs=1e-5)
    # the fold's own rule is cross-fitted, predict's is fitted on all: compare uncalibrated
    unc = np.array([answer["probabilities_uncalibrated"][c] for c in CLASSES])
    saved = np.array([float(rows[0][f"p_{c}_uncalibrated"]) for c in CLASSES])
    assert unc == pytest.approx(saved, abs=1e-4)
    assert answer["prediction"] == CLASSES[int(np.argmax(got))]
    header = predictions_csv([prediction]).splitlines()[0]
    assert header.startswith("subject,target,prediction,p_2,p_3,p_4,uncertainty")
    assert "P(answer)" in format_predictions([prediction]).splitlines()[0]
    assert Run.open(run).target.classes == tuple(CLASSES)


def test_explain_and_report_speak_of_the_three_classes(who_run, who_cohort, tmp_path):
    from gliograde.assess.explain import explain_subjects
    from gliograde.assess.report import write_report

    _, run, _ = who_run
    subject = sorted(p for p in who_cohort.iterdir() if p.is_dir())[0]
    summary = explain_subjects(run, [subject], ExplainOptions(tmp_path / "explain", per_patient=1))
    answer = summary["answers"][subject.name]
    assert answer["answer"] in CLASSES and answer["of"] == answer["answer"]
    assert summary["panels"][subject.name]  # a Grad-CAM panel of the answered class
    page = write_report(run, tmp_path / "report.html").read_text()
    assert "macro, one vs rest" in page and "P(2)" in page and "target: WHO_grade" in page


def test_the_bundle_and_onnx_of_three_classes_match_predict(who_run, who_cohort, tmp_path):
    from gliograde.export import export_run
    from gliograde.predict import PredictOptions, predict_subjects
    from gliograde.predict.formats import predictions_csv
    from helpers.bundle import read_rows, run_bundle

    _, run, _ = who_run
    bundle = tmp_path / "bundle"
    assert export_run(run, "monai-bundle", bundle) == []
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    pred = meta["network_data_format"]["outputs"]["pred"]
    assert pred["num_channels"] == 3 and pred["channel_def"] == {"0": "2", "1": "3", "2": "4"}
    network = json.loads((bundle / "configs" / "inference.json").read_text())["network_def"]
    assert network["num_classes"] == 3  # what MONAI's config API builds from it
    result = run_bundle(bundle, who_cohort, tmp_path / "out")
    assert result.returncode == 0, result.stderr[-2000:]
    got = read_rows((tmp_path / "out" / "predictions.csv").read_text())
    want = read_rows(
        predictions_csv(predict_subjects([who_cohort], run, PredictOptions(device="cpu")))
    )
    assert sorted(got) == sorted(want) and len(want) == 10
    for subject, row in want.items():
        assert got[subject]["prediction"] == row["prediction"] in CLASSES
        for c in CLASSES:
            assert float(got[subject][f"p_{c}"]) == pytest.approx(float(row[f"p_{c}"]), abs=1e-4)
    done = export_run(run, "onnx", tmp_path / "onnx")  # one per fold, parity measured
    assert len(done) == 2 and all(e.max_abs_diff < 1e-4 for e in done)
    record = json.loads((tmp_path / "onnx" / "export.json").read_text())
    assert record["outputs"]["grade_logits"] == "[N, 3]: 2, 3, 4"
