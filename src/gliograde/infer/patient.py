"""The one patient rule: a patient's slice outputs → the class probabilities, calibrated, with an
uncertainty and a flag. ``predict``, evaluation (cross-validation and ``evaluate --test``) and
``explain`` all go through :func:`patient_evidence` and :func:`patient_result`, so a figure in
``metrics.json`` is a figure about exactly what ``predict`` answers.

A patient's probability ``p`` is P(class 1) (P(HGG) for the grade) for a two-class target and
the vector of the K class probabilities for more; over patients, ``[n]`` or ``[n, K]``. Every
function here takes either: with two classes it works on P(class 1) (a calibration with a
temperature and a bias), with more on the vector (one temperature).

Two steps, because evaluation must see every patient's evidence before it can fit the
calibration and the flag threshold (cross-fitted, out of sample):

1. :func:`patient_evidence`: what the models say, uncalibrated. ``p`` is the weighted mean of
   slice probabilities (:mod:`gliograde.model.aggregate`): with a segmentation, its tumour
   slices; without one, every slice weighted by its predicted tumour probability. Beside it,
   three spreads that are 0 for a certain answer: of the slice probabilities (weighted standard
   deviation), under test-time flips (left-right, front-back; on the 16 slices that speak most,
   so that three forward passes are not paid for every slice), and between models (fold models
   of an ensemble; 0 for one model). With K classes, each spread is the mean over the classes
   of that class's spread.
2. :func:`patient_result`: the calibration (two classes: ``sigmoid(logit(p) / T + b)``; more:
   ``softmax(log p / T)``), the uncertainty (the entropy of the calibrated answer in bits over
   log2 K, plus the slice and flip spreads; the fold spread is reported beside it, see
   :func:`uncertainty_score`), the flag (uncertainty above the threshold), and the answer
   (two classes: class 1 when its calibrated probability is at least 0.5; more: the most
   probable class).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gliograde.infer.models import VARIANTS, run_models
from gliograde.model.aggregate import class_scores, noseg_weights, seg_weights, slice_mean
from gliograde.run.calibration import CalibrationRule

TTA_SLICES = 16
EPS = 1e-7


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^−z), written with tanh so that it cannot overflow (and needs no SciPy)."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def apply_calibration(p: np.ndarray, temperature: float = 1.0, bias: float = 0.0) -> np.ndarray:
    """Calibrate patients' probabilities: ``[n]`` P(class 1) on their logit,
    ``sigmoid(logit(p) / temperature + bias)``; ``[n, K]`` by :func:`with_temperature` (no bias).
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 2:
        return with_temperature(p, temperature)
    return sigmoid(logit(p) / temperature + bias)


def with_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)`` over the last axis: T > 1 softens the probabilities, T < 1
    sharpens them."""
    z = np.log(np.clip(np.asarray(probs, dtype=np.float64), EPS, 1.0)) / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def normalised_entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy of each row in bits over log2(K): 0 when certain, 1 when every class is as
    likely (for K = 2, the binary entropy of P(class 1))."""
    p = np.clip(np.asarray(probs, dtype=np.float64), EPS, 1.0)
    return -(p * np.log2(p)).sum(axis=-1) / np.log2(p.shape[-1])


def answer_entropy(p: np.ndarray) -> np.ndarray:
    """Patients' answer entropy, 0 to 1: :func:`binary_entropy` of ``[n]`` P(class 1), or
    :func:`normalised_entropy` of ``[n, K]`` probabilities."""
    p = np.asarray(p, dtype=np.float64)
    return normalised_entropy(p) if p.ndim == 2 else binary_entropy(p)


def predicted_index(p: np.ndarray) -> np.ndarray:
    """Patients' answers as class indices: ``[n]`` P(class 1) ≥ 0.5 → 1; ``[n, K]`` the most
    probable class (ties: the lower index)."""
    p = np.asarray(p, dtype=np.float64)
    return p.argmax(axis=-1) if p.ndim == 2 else (p >= 0.5).astype(int)


def shown_probability(p, answer: int) -> float:
    """The probability an answer is shown with: ``p`` itself for two classes (P(class 1), the
    score), P(answer) of a vector ``[K]`` for more (a patient's or a slice's)."""
    return float(p) if np.ndim(p) == 0 else float(np.asarray(p)[answer])


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in bits of a yes/no answer with probability ``p``: 0 when certain, 1 at 0.5."""
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def uncertainty_score(p_cal, slice_spread, tta_spread) -> np.ndarray:
    """The patient uncertainty: answer entropy + slice spread + flip disagreement (patients'
    ``p_cal`` ``[n]`` or ``[n, K]``, see the module).

    Fold disagreement is reported beside it but not added: evaluation grades each patient with
    one fold model, so a threshold chosen there knows nothing of it, and a flag must mean in
    ``predict`` what it meant where it was measured.
    """
    return answer_entropy(p_cal) + np.asarray(slice_spread) + tta_spread


def top_slices(scores: np.ndarray, k: int = TTA_SLICES) -> np.ndarray:
    """Indices of the ``k`` largest scores (ties: the earlier slice first), in slice order."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return np.sort(order[:k])


def weighted_std(values: np.ndarray, weights: np.ndarray) -> float:
    """Standard deviation of ``values`` ``[n]`` weighted by ``weights`` (population form); of
    ``[n, K]``, the mean over the K columns of theirs."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2:
        return float(np.mean([weighted_std(values[:, c], weights) for c in range(values.shape[1])]))
    w = np.asarray(weights, dtype=np.float64)
    if len(values) < 2 or w.sum() <= 1e-12:
        return 0.0
    mean = float(np.sum(w * values) / w.sum())
    return float(np.sqrt(np.sum(w * (values - mean) ** 2) / w.sum()))


def class_spread(values: np.ndarray, multi: bool) -> float:
    """Standard deviation over the first axis; with K classes (``multi``: a last axis of
    classes), the mean over the classes of each one's."""
    std = np.asarray(values, dtype=np.float64).std(axis=0)
    return float(std.mean()) if multi else float(std)


@dataclass
class Evidence:
    """What the models say about one patient, before calibration."""

    p: float | np.ndarray  # mean over models of each model's patient p (see the module)
    slice_spread: float
    tta_spread: float
    fold_spread: float
    n_slices: int  # slices that speak: tumour slices with a seg, every slice without
    used_seg: bool
    slice_p: np.ndarray  # p per slice ([n] or [n, K]), mean over models; NaN for a slice not scored
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
    scores, multi = class_scores(p_class), p_class.shape[-1] > 2
    n_models = scores.shape[0]
    if tumor_pixels is not None:
        w = np.repeat(seg_weights(tumor_pixels, min_tumor)[None], n_models, axis=0)
        ranking = np.where(w[0] > 0, tumor_pixels, -1)
    else:
        w = noseg_weights(p_tumor)
        ranking = w.mean(axis=0)
    per_model = slice_mean(scores, w, multi)  # [models] or [models, K]
    used = w[0] > 0 if tumor_pixels is not None else np.ones(scores.shape[1], dtype=bool)
    slice_p, mean_w = scores.mean(axis=0), w.mean(axis=0)
    candidates = np.flatnonzero(used)
    top = candidates[top_slices(ranking[candidates])]
    p = per_model.mean(axis=0)
    return Evidence(
        p=p if multi else float(p),
        slice_spread=weighted_std(slice_p[used], mean_w[used]),
        tta_spread=flip_spread(models, x[top], scores[:, top], w[:, top]),
        fold_spread=class_spread(per_model, multi),
        n_slices=int(used.sum()),
        used_seg=tumor_pixels is not None,
        slice_p=slice_p,
        weights=mean_w,
    )


def flip_spread(models, x_top, p_top, w_top) -> float:
    """Standard deviation, over (as is, left-right, front-back), of the patient p on the top
    slices, the models averaged for each variant (``p_top`` ``[models, k]`` or
    ``[models, k, K]``)."""
    if len(x_top) == 0:
        return 0.0
    multi = p_top.ndim == 3
    flipped, _ = run_models(models, x_top, variants=VARIANTS[1:])  # [models, 2, k, K]
    variants = np.concatenate([p_top[:, None], class_scores(flipped)], axis=1)  # [models, 3, k…]
    per_variant = slice_mean(variants, w_top[:, None, :], multi)  # [models, 3] or [models, 3, K]
    return class_spread(per_variant.mean(axis=0), multi)


@dataclass
class PatientResult:
    """A patient's answer: what ``predict`` prints and evaluation scores (``p``: see the module;
    ``answer``: a class of the target)."""

    p_uncalibrated: float | np.ndarray
    p: float | np.ndarray
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
    p = apply_calibration(np.asarray(e.p, dtype=np.float64)[None], rule.temperature, rule.bias)
    u = float(uncertainty_score(p, e.slice_spread, e.tta_spread)[0])
    flag = rule.threshold is not None and u > rule.threshold
    answer = classes[int(predicted_index(p)[0])]
    return PatientResult(e.p, p[0] if p.ndim == 2 else float(p[0]), answer, u, flag, evidence)
