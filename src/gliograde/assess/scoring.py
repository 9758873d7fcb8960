"""Score a cohort's patients on one grading mode (with a segmentation, or without): answers
through the one patient rule, then calibration, flag and discrimination figures, all out of sample.

Cross-validation (``crossfit``): each fold's patients are calibrated and flagged with a pair and
a threshold fitted on the other folds' patients; what is saved for ``predict`` is fitted on all.
An independent cohort (``fixed``): the run's saved calibration and threshold, as ``predict``.

Patients' probabilities are ``[n, K]`` (:mod:`gliograde.infer.patient`); their discrimination
figures are :mod:`gliograde.assess.metrics`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gliograde.assess.calibration import (
    apply_pairs,
    brier,
    calibration_summary,
    expected_calibration_error,
)
from gliograde.assess.metrics import bootstrap_intervals, discrimination
from gliograde.assess.patients import PatientTable
from gliograde.assess.record import CalibrationFigures, Flags, ModeFigures
from gliograde.assess.uncertainty import choose_threshold
from gliograde.infer.patient import patient_result, uncertainty_score
from gliograde.model.probability import answer_index
from gliograde.run.calibration import IDENTITY, CalibrationRule, Mode


def score_crossfit(table: PatientTable, mode: Mode) -> tuple[ModeFigures, CalibrationRule]:
    """Answers with calibrations and thresholds each fitted without the fold they are used on.

    For each fold, the rule that calibrates and flags its patients comes from the other folds
    alone (nested): whether to calibrate is decided on their cross-fitted Brier score, the pair
    is fitted on them, and the threshold is chosen on their uncertainties, themselves computed
    with calibrations fitted without each of them. No figure uses its own patients' labels.

    Returns:
        (figures, saved): the figures, and the calibration and threshold saved for ``predict``
        (the same rule, from every patient).
    """
    evidence, y, fold = table.evidence[mode], table.y, table.fold
    p = table.p_uncalibrated(mode)
    spreads = np.array([e.slice_spread + e.tta_spread for e in evidence])
    rules = {k: held_out_rule(p, y, fold, spreads, fold != k) for k in np.unique(fold).tolist()}
    table.results[mode] = [
        patient_result(e, rules[k], table.classes) for e, k in zip(evidence, fold.tolist())
    ]
    saved = held_out_rule(p, y, fold, spreads, np.ones(len(p), dtype=bool))
    p_after = table.p_calibrated(mode)
    summary, _ = calibration_summary(p, y, fold)
    summary |= {
        "temperature": saved.temperature,
        "bias": saved.bias,
        "applied": saved.applied,
        "ece_after": expected_calibration_error(p_after, y),
        "brier_after": brier(p_after, y),
        "folds_calibrated": sum(r.applied for r in rules.values()),
    }
    calibration = CalibrationFigures.from_dict(summary)
    return mode_figures(table, mode, calibration, Saved(saved.threshold)), saved


def held_out_rule(p, y, fold, spreads, use: np.ndarray) -> CalibrationRule:
    """Calibration pair, whether it is applied, and flag threshold, from the patients in ``use``.

    The pair is applied only when it lowers their cross-fitted Brier score; the threshold is
    chosen on their uncertainties with each of them calibrated by a pair fitted without its fold.
    """
    if not use.any():
        return IDENTITY
    summary, pairs = calibration_summary(p[use], y[use], fold[use])
    p_use = apply_pairs(p[use], fold[use], pairs)
    u = uncertainty_score(p_use, spreads[use], 0.0)
    correct = answer_index(p_use) == y[use]
    return CalibrationRule(
        summary["temperature"], summary["bias"], summary["applied"], choose_threshold(u, correct)
    )


def score_fixed(table: PatientTable, mode: Mode, rule: CalibrationRule) -> ModeFigures:
    """Answers with the run's saved calibration and threshold, exactly as ``predict`` gives them."""
    table.results[mode] = [patient_result(e, rule, table.classes) for e in table.evidence[mode]]
    p, y = table.p_uncalibrated(mode), table.y
    p_cal = table.p_calibrated(mode)
    calibration = CalibrationFigures(
        temperature=rule.temperature,
        bias=rule.bias,
        applied=rule.applied,
        ece_before=expected_calibration_error(p, y),
        ece_after=expected_calibration_error(p_cal, y),
        brier_before=brier(p, y),
        brier_after=brier(p_cal, y),
    )
    return mode_figures(table, mode, calibration)


@dataclass(frozen=True)
class Saved:
    """Cross-validation: the flag threshold saved for ``predict``."""

    threshold: float | None


def mode_figures(
    table: PatientTable, mode: Mode, calibration: CalibrationFigures, saved: Saved | None = None
) -> ModeFigures:
    """Discrimination at the calibrated answers, intervals, per fold, flags."""
    results, y, fold = table.results[mode], table.y, table.fold
    p = table.p_calibrated(mode)
    figures = discrimination(y, p)
    flags = np.array([r.flag for r in results], dtype=bool)
    return ModeFigures(
        discrimination=figures,
        auc_uncalibrated=discrimination(y, table.p_uncalibrated(mode)).auc,
        ci95=bootstrap_intervals(y, p),
        per_fold=[
            (k, discrimination(y[fold == k], p[fold == k])) for k in np.unique(fold).tolist()
        ],
        uncertainty=flag_figures(flags, answer_index(p) == y, saved),
        calibration=calibration,
        note=None if figures.auc is not None else NO_AUC,
    )


NO_AUC = "AUC needs patients of at least two classes; this cohort has one"


def flag_figures(flags: np.ndarray, correct: np.ndarray, saved: Saved | None = None) -> Flags:
    """How many patients are flagged, and the accuracy on the confident and the flagged ones."""

    def accuracy(m):
        return float(correct[m].mean()) if m.any() else None

    return Flags(
        share_flagged=float(flags.mean()) if len(flags) else 0.0,
        coverage=float((~flags).mean()) if len(flags) else 0.0,
        n_flagged=int(flags.sum()),
        n_confident=int((~flags).sum()),
        accuracy_confident=accuracy(~flags),
        accuracy_flagged=accuracy(flags),
        accuracy_all=accuracy(np.ones_like(flags)),
        threshold_saved=None if saved is None else saved.threshold,
        cross_validated=saved is not None,
    )
