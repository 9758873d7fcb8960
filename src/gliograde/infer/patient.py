"""The one patient rule: a patient's slice outputs → P(HGG), calibrated, with an uncertainty and a
flag. ``predict``, evaluation (cross-validation and ``evaluate --test``) and ``explain`` all go
through :func:`patient_evidence` and :func:`patient_result`, so a figure in ``metrics.json`` is a
figure about exactly what ``predict`` answers.

Two steps, because evaluation must see every patient's evidence before it can fit the
calibration and the flag threshold (cross-fitted, out of sample):

1. :func:`patient_evidence`: what the models say, uncalibrated. P(HGG) is the weighted mean of
   slice probabilities (:mod:`gliograde.model.aggregate`): with a segmentation, its tumour
   slices; without one, every slice weighted by its predicted tumour probability. Beside it,
   three spreads that are 0 for a certain answer: of the slice probabilities (weighted standard
   deviation), under test-time flips (left-right, front-back; on the 16 slices that speak most,
   so that three forward passes are not paid for every slice), and between models (fold models
   of an ensemble; 0 for one model).
2. :func:`patient_result`: the calibration ``sigmoid(logit(p) / T + b)``, the uncertainty (binary
   entropy of the calibrated P(HGG) in bits plus the slice and flip spreads; the fold spread is
   reported beside it, see :func:`uncertainty_score`), the flag (uncertainty above the
   threshold), and the grade (calibrated P(HGG) ≥ 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gliograde import GRADES
from gliograde.infer.models import VARIANTS, run_models
from gliograde.model.aggregate import noseg_weights, patient_mean, seg_weights

TTA_SLICES = 16
EPS = 1e-7


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^−z), written with tanh so that it cannot overflow (and needs no SciPy)."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def apply_calibration(p: np.ndarray, temperature: float = 1.0, bias: float = 0.0) -> np.ndarray:
    """Rescale probabilities P(HGG) on their logit: ``sigmoid(logit(p) / temperature + bias)``."""
    return sigmoid(logit(p) / temperature + bias)


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in bits of a yes/no answer with probability ``p``: 0 when certain, 1 at 0.5."""
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def uncertainty_score(p_cal, slice_spread, tta_spread) -> np.ndarray:
    """The patient uncertainty: entropy + slice spread + flip disagreement.

    Fold disagreement is reported beside it but not added: evaluation grades each patient with
    one fold model, so a threshold chosen there knows nothing of it, and a flag must mean in
    ``predict`` what it meant where it was measured.
    """
    return binary_entropy(p_cal) + np.asarray(slice_spread) + tta_spread


def top_slices(scores: np.ndarray, k: int = TTA_SLICES) -> np.ndarray:
    """Indices of the ``k`` largest scores (ties: the earlier slice first), in slice order."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return np.sort(order[:k])


def weighted_std(values: np.ndarray, weights: np.ndarray) -> float:
    """Standard deviation of ``values`` weighted by ``weights`` (population form)."""
    w = np.asarray(weights, dtype=np.float64)
    if len(values) < 2 or w.sum() <= 1e-12:
        return 0.0
    mean = float(np.sum(w * values) / w.sum())
    return float(np.sqrt(np.sum(w * (values - mean) ** 2) / w.sum()))


@dataclass
class Evidence:
    """What the models say about one patient, before calibration."""

    p_hgg: float  # mean over models of each model's patient P(HGG)
    slice_spread: float
    tta_spread: float
    fold_spread: float
    n_slices: int  # slices that speak: tumour slices with a seg, every slice without
    used_seg: bool
    slice_p: np.ndarray  # P(HGG) per slice, mean over models; NaN for a slice not scored
    # (with a segmentation, ``predict`` scores only the slices that speak)
    weights: np.ndarray  # each slice's weight in the patient's P(HGG), mean over models


def patient_evidence(
    models: list[torch.nn.Module],
    x: torch.Tensor,
    p_hgg: np.ndarray,
    p_tumor: np.ndarray,
    tumor_pixels: np.ndarray | None,
    min_tumor: int,
    device: str = "cpu",
) -> Evidence:
    """Step 1 of the rule (see the module's docstring).

    Args:
        x: the patient's slices ``[N, 4, H, W]``, as preprocessed for the run.
        p_hgg, p_tumor: the models' outputs on ``x``, each ``[models, N]``.
        tumor_pixels: tumour pixels of each slice in the segmentation; None grades without one.
    """
    n_models = p_hgg.shape[0]
    if tumor_pixels is not None:
        w = np.repeat(seg_weights(tumor_pixels, min_tumor)[None], n_models, axis=0)
        ranking = np.where(w[0] > 0, tumor_pixels, -1)
    else:
        w = noseg_weights(p_tumor)
        ranking = w.mean(axis=0)
    per_model = patient_mean(p_hgg, w)
    used = w[0] > 0 if tumor_pixels is not None else np.ones(p_hgg.shape[1], dtype=bool)
    slice_p, mean_w = p_hgg.mean(axis=0), w.mean(axis=0)
    candidates = np.flatnonzero(used)
    top = candidates[top_slices(ranking[candidates])]
    return Evidence(
        p_hgg=float(per_model.mean()),
        slice_spread=weighted_std(slice_p[used], mean_w[used]),
        tta_spread=flip_spread(models, x[top], p_hgg[:, top], w[:, top], device),
        fold_spread=float(per_model.std()),
        n_slices=int(used.sum()),
        used_seg=tumor_pixels is not None,
        slice_p=slice_p,
        weights=mean_w,
    )


def flip_spread(models, x_top, p_top, w_top, device: str) -> float:
    """Standard deviation, over (as is, left-right, front-back), of the patient P(HGG) on the top
    slices, the models averaged for each variant."""
    if len(x_top) == 0:
        return 0.0
    flipped, _ = run_models(models, x_top, device, variants=VARIANTS[1:])  # [models, 2, k]
    variants = np.concatenate([p_top[:, None, :], flipped], axis=1)  # [models, 3, k]
    per_variant = patient_mean(variants, w_top[:, None, :])  # [models, 3]
    return float(per_variant.mean(axis=0).std())


@dataclass
class PatientResult:
    """A patient's answer: what ``predict`` prints and evaluation scores."""

    p_hgg_uncalibrated: float
    p_hgg: float
    grade: str
    uncertainty: float
    flag: bool
    evidence: Evidence

    def parts(self) -> dict[str, float]:
        e = self.evidence
        return {"slice_spread": e.slice_spread, "tta": e.tta_spread, "folds": e.fold_spread}


def patient_result(
    evidence: Evidence, calibration: dict, classes: tuple[str, ...] = GRADES
) -> PatientResult:
    """Step 2 of the rule: calibration, uncertainty, flag and grade.

    Args:
        calibration: ``temperature``, ``bias`` and ``threshold`` (flag above it) for the path
            taken (with or without a segmentation); missing keys mean no calibration, no flag.
        classes: the target's two classes; the answer is ``classes[1]`` when its calibrated
            probability is at least 0.5 (for the grade: HGG).
    """
    t, b = calibration.get("temperature", 1.0), calibration.get("bias", 0.0)
    p = float(apply_calibration(evidence.p_hgg, t, b))
    e = evidence
    u = float(uncertainty_score(p, e.slice_spread, e.tta_spread))
    threshold = calibration.get("threshold")
    flag = threshold is not None and u > threshold
    return PatientResult(e.p_hgg, p, classes[1] if p >= 0.5 else classes[0], u, flag, evidence)
