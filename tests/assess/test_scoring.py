"""Scoring a cohort: answers by the one patient rule, calibration and flags out of sample."""

import numpy as np
import pytest

from gliograde.assess.calibration import fit_temperature_and_bias
from gliograde.assess.patients import PatientTable, read_patient_table
from gliograde.assess.scoring import score_crossfit, score_fixed
from gliograde.infer.patient import Evidence, apply_calibration


def evidence(p, spread=0.0):
    return Evidence(p, spread, 0.0, 0.0, 5, True, np.zeros(0), np.zeros(0))


def table(ps, ys, folds):
    return PatientTable(
        [f"S{i}" for i in range(len(ps))],
        np.array(folds),
        np.array(ys),
        {"seg": [evidence(p) for p in ps]},
    )


def test_crossfit_calibrates_each_fold_with_a_pair_fitted_on_the_others():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 400)
    y = (rng.random(400) < 1 / (1 + np.exp(-z))).astype(int)
    p = 1 / (1 + np.exp(-3 * z))  # overconfident: calibration helps out of sample
    fold = np.arange(400) % 2
    t = table(p.tolist(), y.tolist(), fold.tolist())
    figures, saved = score_crossfit(t, "seg")
    assert saved["applied"] and figures["calibration"]["applied"]
    pair = fit_temperature_and_bias(p[fold == 1], y[fold == 1])  # fold 0 is calibrated by fold 1
    got = np.array([r.p_hgg for r in t.results["seg"]])
    np.testing.assert_allclose(got[fold == 0], apply_calibration(p[fold == 0], *pair), atol=1e-9)
    assert figures["auc"] is not None and figures["auc_ci"] is not None
    assert [f["fold"] for f in figures["per_fold"]] == [0, 1]


def test_one_grade_cohort_gets_accuracy_and_a_note_not_a_crash(tmp_path):
    t = table([0.9, 0.8, 0.3], [1, 1, 1], [0, 0, 0])
    figures = score_fixed(t, "seg", {"temperature": 1.0, "bias": 0.0, "threshold": None})
    assert figures["auc"] is None and "both grades" in figures["note"]
    assert figures["accuracy"] == pytest.approx(2 / 3) and figures["sensitivity"] == pytest.approx(
        2 / 3
    )
    assert figures["uncertainty"]["n_flagged"] == 0
    t.write_csv(tmp_path / "p.csv")
    back = read_patient_table(tmp_path / "p.csv")
    assert back.subject == t.subject and back.p_uncalibrated("seg").tolist() == [0.9, 0.8, 0.3]
