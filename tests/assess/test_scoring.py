"""Scoring a cohort: answers by the one patient rule, calibration and flags out of sample."""

import numpy as np
import pytest

from gliograde import GRADES
from gliograde.assess.calibration import fit_temperature_and_bias
from gliograde.assess.patients import PatientTable, read_patient_table
from gliograde.assess.scoring import score_crossfit, score_fixed
from gliograde.infer.patient import Evidence, apply_calibration
from gliograde.run.calibration import IDENTITY


def evidence(p, spread=0.0):
    return Evidence(p, spread, 0.0, 0.0, 5, True, np.zeros(0), np.zeros(0))


def table(ps, ys, folds):
    return PatientTable(
        [f"S{i}" for i in range(len(ps))],
        np.array(folds),
        np.array(ys),
        {"seg": [evidence(p) for p in ps]},
        GRADES,
    )


def overconfident_cohort(n=400, folds=4, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    p = 1 / (1 + np.exp(-3 * z))  # overconfident: calibration helps out of sample
    return p, y, np.arange(n) % folds


def test_crossfit_calibrates_each_fold_with_a_pair_fitted_on_the_others():
    p, y, fold = overconfident_cohort()
    t = table(p.tolist(), y.tolist(), fold.tolist())
    figures, saved = score_crossfit(t, "seg")
    assert saved.applied and figures["calibration"]["folds_calibrated"] == 4
    others = fold != 0
    pair = fit_temperature_and_bias(p[others], y[others])  # fold 0 is calibrated by the others
    got = np.array([r.p for r in t.results["seg"]])
    np.testing.assert_allclose(got[~others], apply_calibration(p[~others], *pair), atol=1e-9)
    assert figures["calibration"]["ece_after"] < figures["calibration"]["ece_before"]
    assert figures["auc"] is not None and figures["auc_ci"] is not None
    assert [f["fold"] for f in figures["per_fold"]] == [0, 1, 2, 3]


def test_no_fold_is_calibrated_or_flagged_with_its_own_labels():
    p, y, fold = overconfident_cohort(n=200)
    spread = np.linspace(0, 0.3, len(p))
    evidence = [
        Evidence(pi, s, 0.0, 0.0, 5, True, np.zeros(0), np.zeros(0)) for pi, s in zip(p, spread)
    ]
    ids = [f"S{i}" for i in range(len(p))]
    flipped = y.copy()
    flipped[fold == 0] = 1 - flipped[fold == 0]  # change fold 0's labels only
    answers = []
    for labels in (y, flipped):
        t = PatientTable(ids, fold, labels, {"seg": list(evidence)}, GRADES)
        score_crossfit(t, "seg")
        answers.append([(r.p, r.flag) for r, k in zip(t.results["seg"], fold) if k == 0])
    assert answers[0] == answers[1]


def test_one_grade_cohort_gets_accuracy_and_a_note_not_a_crash(tmp_path):
    t = table([0.9, 0.8, 0.3], [1, 1, 1], [0, 0, 0])
    figures = score_fixed(t, "seg", IDENTITY)
    assert figures["auc"] is None and "at least two classes" in figures["note"]
    assert figures["accuracy"] == pytest.approx(2 / 3) and figures["sensitivity"] == pytest.approx(
        2 / 3
    )
    assert figures["uncertainty"]["n_flagged"] == 0
    t.write_csv(tmp_path / "p.csv")
    back = read_patient_table(tmp_path / "p.csv", GRADES)
    assert back.subject == t.subject and back.p_uncalibrated("seg").tolist() == [0.9, 0.8, 0.3]


def three_class_cohort(n=150, folds=3, seed=1):
    """Labels drawn from softmax(z), probabilities reported as softmax(3 z): overconfident."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (n, 3))
    truth = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=t) for t in truth])
    p = np.exp(3 * z) / np.exp(3 * z).sum(axis=1, keepdims=True)
    return p, y, np.arange(n) % folds


def test_three_classes_are_calibrated_by_a_temperature_fitted_on_the_other_folds():
    from gliograde.assess.multiclass import fit_multiclass_temperature
    from gliograde.infer.patient import with_temperature

    p, y, fold = three_class_cohort()
    t = PatientTable([f"S{i}" for i in range(len(p))], fold, y, {"seg": [evidence(pi) for pi in p]},
                     classes=("2", "3", "4"))  # fmt: skip
    figures, saved = score_crossfit(t, "seg")
    assert saved.bias == 0.0 and saved.temperature > 1.0  # softens the overconfidence
    others = fold != 0
    temperature = fit_multiclass_temperature(p[others], y[others])
    got = t.p_calibrated("seg")
    assert figures["calibration"]["folds_calibrated"] == 3
    np.testing.assert_allclose(got[~others], with_temperature(p[~others], temperature))
    assert figures["calibration"]["ece_after"] < figures["calibration"]["ece_before"]
    assert [r.answer for r in t.results["seg"]] == [("2", "3", "4")[k] for k in p.argmax(axis=1)]
    assert len(figures["auc_per_class"]) == 3 and figures["confusion"][0][0] > 0


def test_no_fold_of_three_classes_is_calibrated_or_flagged_with_its_own_labels():
    p, y, fold = three_class_cohort()
    ids = [f"S{i}" for i in range(len(p))]
    rolled = y.copy()
    rolled[fold == 0] = (rolled[fold == 0] + 1) % 3  # change fold 0's labels only
    answers = []
    for labels in (y, rolled):
        spreads = [Evidence(pi, 0.1 * (i % 4), 0.0, 0.0, 5, True, np.zeros(0), np.zeros(0))
                   for i, pi in enumerate(p)]  # fmt: skip
        t = PatientTable(ids, fold, labels, {"seg": spreads}, classes=("a", "b", "c"))
        score_crossfit(t, "seg")
        answers.append([(tuple(r.p), r.flag) for r, k in zip(t.results["seg"], fold) if k == 0])
    assert answers[0] == answers[1]


def test_a_table_of_three_classes_reads_back_from_its_csv(tmp_path):
    p, y, fold = three_class_cohort(n=12)
    classes = ("2", "3", "4")
    ev = {path: [evidence(pi) for pi in p] for path in ("seg", "noseg")}
    t = PatientTable([f"S{i}" for i in range(12)], fold, y, ev, classes=classes)
    for path in ("seg", "noseg"):
        score_crossfit(t, path)
    t.write_csv(tmp_path / "p.csv")
    header = (tmp_path / "p.csv").read_text().splitlines()[0].split(",")
    assert header[3:6] == ["p_2", "p_3", "p_4"] and "p_4_noseg_uncalibrated" in header
    back = read_patient_table(tmp_path / "p.csv", classes)
    for path in ("seg", "noseg"):
        np.testing.assert_allclose(back.p_uncalibrated(path), p, atol=1e-6)
