"""The one patient rule: a patient's slice outputs → the class probabilities, calibrated, with an
uncertainty and a flag. ``predict``, evaluation (cross-validation and ``evaluate --test``) and
``explain`` all go through :func:`patient_evidence` and :func:`patient_result`, so a figure in
``metrics.json`` is a figure about exactly what ``predict`` answers.

A patient's probabilities ``p`` are the vector of its K class probabilities ``[K]`` (two classes
included: ``[P(LGG), P(HGG)]`` for the grade); over patients ``[n, K]``. The arithmetic is
:mod:`gliograde.model.probability`'s.

Two steps, because evaluation must see every patient's evidence before it can fit the
calibration and the flag threshold (cross-fitted, out of sample):

1. :func:`patient_evidence`: what the models say, uncalibrated. ``p`` is the weighted mean of
   slice probabilities: with a segmentation, its tumour slices; without one, every slice
   weighted by its predicted tumour probability. Beside it, three spreads that are 0 for a
   certain answer, each the mean over the classes of that class's spread (for two classes, the
   spread of P(class 1)): of the slice probabilities (weighted standard deviation), under
   test-time flips (left-right, front-back; on the 16 slices that speak most, so that three
   forward passes are not paid for every slice), and between models (fold models of an
   ensemble; 0 for one model).
2. :func:`patient_result`: the calibration (``softmax(log p / T + β)``, β = [0, b] for two
   classes), the uncertainty (the entropy of the calibrated answer in bits over log2 K, plus
   the slice and flip spreads; the fold spread is reported beside it, see
   :func:`uncertainty_score`), the flag (uncertainty above the threshold), and the answer (the
   most probable class; a tie goes to the higher class index).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gliograde.infer.models import VARIANTS, run_models
from gliograde.model.probability import (
    answer_index,
    calibrate,
    class_probabilities,
    normalised_entropy,
    noseg_weights,
    patient_mean,
    seg_weights,
    spread,
    weighted_spread,
)
from gliograde.run.calibration import CalibrationRule

TTA_SLICES = 16


def uncertainty_score(p_cal: np.ndarray, slice_spread, tta_spread) -> np.ndarray:
    """The patient uncertainty: answer entropy + slice spread + flip disagreement (patients'
    calibrated ``p_cal`` ``[n, K]``, or one patient's ``[K]``).

    Fold disagreement is reported beside it but not added: evaluation grades each patient with
    one fold model, so a threshold chosen there knows nothing of it, and a flag must mean in
    ``predict`` what it meant where it was measured.
    """
    return normalised_entropy(p_cal) + np.asarray(slice_spread) + tta_spread


def top_slices(scores: np.ndarray, k: int = TTA_SLICES) -> np.ndarray:
    """Indices of the ``k`` largest scores (ties: the earlier slice first), in slice order."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return np.sort(order[:k])


@dataclass
class Evidence:
    """What the models say about one patient, before calibration."""

    p: np.ndarray  # [K]: the mean over models of each model's patient probabilities
    slice_spread: float
    tta_spread: float
    fold_spread: float
    n_slices: int  # slices that speak: tumour slices with a seg, every slice without
    used_seg: bool
    slice_p: np.ndarray  # [n, K] per slice, mean over models; NaN for a slice not scored
    # (with a segmentation, ``predict`` scores only the slices that speak)
    weights: np.ndarray  # each slice's weight in the patient's p, mean over models


def patient_evidence(
    models: list[torch.nn.Module],
    x: torch.Tensor,
    p_class: np.ndarray,
    p_tumor: np.ndarray,
    tumor_pixels: np.ndarray | None,
    min_tumor: int,
) -> Evidence:
    """Step 1 of the rule (see the module's docstring).

    Args:
        x: the patient's slices ``[N, 4, H, W]``, as preprocessed for the run.
        p_class, p_tumor: the models' outputs on ``x``, ``[models, N, K]`` and ``[models, N]``.
        tumor_pixels: tumour pixels of each slice in the segmentation; None grades without one.
    """
    scores = class_probabilities(p_class)  # [models, N, K]
    n_models = scores.shape[0]
    if tumor_pixels is not None:
        w = np.repeat(seg_weights(tumor_pixels, min_tumor)[None], n_models, axis=0)
        ranking = np.where(w[0] > 0, tumor_pixels, -1)
    else:
        w = noseg_weights(p_tumor)
        ranking = w.mean(axis=0)
    per_model = patient_mean(scores, w)  # [models, K]
    used = w[0] > 0 if tumor_pixels is not None else np.ones(scores.shape[1], dtype=bool)
    slice_p, mean_w = scores.mean(axis=0), w.mean(axis=0)
    candidates = np.flatnonzero(used)
    top = candidates[top_slices(ranking[candidates])]
    return Evidence(
        p=per_model.mean(axis=0),
        slice_spread=weighted_spread(slice_p[used], mean_w[used]),
        tta_spread=flip_spread(models, x[top], scores[:, top], w[:, top]),
        fold_spread=spread(per_model),
        n_slices=int(used.sum()),
        used_seg=tumor_pixels is not None,
        slice_p=slice_p,
        weights=mean_w,
    )


def flip_spread(models, x_top, p_top: np.ndarray, w_top: np.ndarray) -> float:
    """Spread, over (as is, left-right, front-back), of the patient's probabilities on the top
    slices, the models averaged for each variant (``p_top`` ``[models, k, K]``)."""
    if len(x_top) == 0:
        return 0.0
    flipped, _ = run_models(models, x_top, variants=VARIANTS[1:])  # [models, 2, k, K]
    variants = np.concatenate([p_top[:, None], class_probabilities(flipped)], axis=1)
    per_variant = patient_mean(variants, w_top[:, None, :])  # [models, 3, K]
    return spread(per_variant.mean(axis=0))


@dataclass
class PatientResult:
    """A patient's answer: what ``predict`` prints and evaluation scores (``p``: see the module;
    ``answer``: a class of the target)."""

    p_uncalibrated: np.ndarray  # [K]
    p: np.ndarray  # [K], calibrated
    answer: str
    uncertainty: float
    flag: bool
    evidence: Evidence

    def parts(self) -> dict[str, float]:
        e = self.evidence
        return {"slice_spread": e.slice_spread, "tta": e.tta_spread, "folds": e.fold_spread}


def patient_result(
    evidence: Evidence, rule: CalibrationRule, classes: tuple[str, ...]
) -> PatientResult:
    """Step 2 of the rule: calibration, uncertainty, flag and answer.

    Args:
        rule: the calibration and flag threshold of the grading mode taken (with or without a
            segmentation); :data:`~gliograde.run.calibration.IDENTITY` for none.
        classes: the target's classes (see the module for the answer's rule).
    """
    e = evidence
    p = calibrate(e.p, rule.temperature, rule.bias)
    u = float(uncertainty_score(p, e.slice_spread, e.tta_spread))
    flag = rule.threshold is not None and u > rule.threshold
    return PatientResult(e.p, p, classes[int(answer_index(p))], u, flag, evidence)
