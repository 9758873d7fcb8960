"""Scoring a cohort: answers by the one patient rule, calibration and flags out of sample, for
two classes and for three."""

import numpy as np
import pytest

from gliograde import GRADES
from gliograde.assess.calibration import fit_temperature, fit_temperature_and_bias
from gliograde.assess.patients import PatientTable, read_patient_table
from gliograde.assess.scoring import score_crossfit, score_fixed
from gliograde.infer.patient import Evidence
from gliograde.model.probability import answer_index, calibrate
from gliograde.run.calibration import IDENTITY, Mode

CLASSES = {2: GRADES, 3: ("2", "3", "4")}


def evidence(p, spread=0.0):
    return Evidence(np.asarray(p), spread, 0.0, 0.0, 5, True, np.zeros((0, len(p))), np.zeros(0))


def table(probs, ys, folds, classes=GRADES, spreads=None):
    spreads = np.zeros(len(probs)) if spreads is None else spreads
    return PatientTable(
        [f"S{i}" for i in range(len(probs))],
        np.array(folds),
        np.array(ys),
        {Mode.SEG: [evidence(p, s) for p, s in zip(probs, spreads)]},
        classes,
    )


def overconfident_cohort(k: int, n=400, folds=4, seed=0):
    """Labels drawn from softmax(z), probabilities reported as softmax(3 z): overconfident, so
    that calibration helps out of sample."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (n, k))
    truth = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=t) for t in truth])
    p = np.exp(3 * z) / np.exp(3 * z).sum(axis=1, keepdims=True)
    return p, y, np.arange(n) % folds


@pytest.mark.parametrize("k", [2, 3])
def test_crossfit_calibrates_each_fold_with_a_rule_fitted_on_the_others(k):
    p, y, fold = overconfident_cohort(k)
    t = table(p, y, fold, CLASSES[k])
    figures, saved = score_crossfit(t, Mode.SEG)
    assert saved.applied and figures.calibration.folds_calibrated == 4
    assert saved.temperature > 1.0  # softens the overconfidence
    others = fold != 0  # fold 0 is calibrated by a rule fitted on the others
    if k == 2:
        rule = fit_temperature_and_bias(p[others], y[others])
    else:
        rule = (fit_temperature(p[others], y[others]), 0.0)
        assert saved.bias == 0.0
    np.testing.assert_allclose(t.p_calibrated(Mode.SEG)[~others], calibrate(p[~others], *rule))
    assert figures.calibration.ece_after < figures.calibration.ece_before
    assert figures.figure("auc") is not None and figures.interval("auc") is not None
    assert [k for k, _ in figures.per_fold] == [0, 1, 2, 3]
    answers = [CLASSES[k][i] for i in answer_index(t.p_calibrated(Mode.SEG))]
    assert [r.answer for r in t.results[Mode.SEG]] == answers


@pytest.mark.parametrize("k", [2, 3])
def test_no_fold_is_calibrated_or_flagged_with_its_own_labels(k):
    p, y, fold = overconfident_cohort(k, n=200)
    spreads = np.linspace(0, 0.3, len(p))
    changed = y.copy()
    changed[fold == 0] = (changed[fold == 0] + 1) % k  # change fold 0's labels only
    answers = []
    for labels in (y, changed):
        t = table(p, labels, fold, CLASSES[k], spreads)
        score_crossfit(t, Mode.SEG)
        answers.append([(tuple(r.p), r.flag) for r, f in zip(t.results[Mode.SEG], fold) if f == 0])
    assert answers[0] == answers[1]


def test_one_grade_cohort_gets_accuracy_and_a_note_not_a_crash(tmp_path):
    p1 = np.array([0.9, 0.8, 0.3])
    t = table(np.stack([1 - p1, p1], axis=1), [1, 1, 1], [0, 0, 0])
    figures = score_fixed(t, Mode.SEG, IDENTITY)
    assert figures.figure("auc") is None and "at least two classes" in figures.note
    assert figures.figure("accuracy") == pytest.approx(2 / 3)
    assert figures.figure("sensitivity") == pytest.approx(2 / 3)
    assert figures.uncertainty.n_flagged == 0
    t.write_csv(tmp_path / "p.csv")
    back = read_patient_table(tmp_path / "p.csv", GRADES)
    assert back.subject == t.subject
    np.testing.assert_allclose(back.p_uncalibrated(Mode.SEG), [[0.1, 0.9], [0.2, 0.8], [0.7, 0.3]])


@pytest.mark.parametrize("k", [2, 3])
def test_a_table_reads_back_from_its_csv(k, tmp_path):
    p, y, fold = overconfident_cohort(k, n=12, folds=3)
    classes = CLASSES[k]
    ev = {mode: [evidence(pi) for pi in p] for mode in (Mode.SEG, Mode.NOSEG)}
    t = PatientTable([f"S{i}" for i in range(12)], fold, y, ev, classes=classes)
    for mode in (Mode.SEG, Mode.NOSEG):
        score_crossfit(t, mode)
    t.write_csv(tmp_path / "p.csv")
    header = (tmp_path / "p.csv").read_text().splitlines()[0].split(",")
    if k == 2:  # one column: P(HGG)
        assert header[3] == "p_hgg" and "p_hgg_noseg_uncalibrated" in header
    else:
        assert header[3:6] == ["p_2", "p_3", "p_4"] and "p_4_noseg_uncalibrated" in header
    back = read_patient_table(tmp_path / "p.csv", classes)
    for mode in (Mode.SEG, Mode.NOSEG):
        np.testing.assert_allclose(back.p_uncalibrated(mode), p, atol=1e-6)
