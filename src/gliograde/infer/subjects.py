"""New patients preprocessed as the run's store was, and graded by the one patient rule."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from gliograde.core.errors import DataError
from gliograde.infer.models import slice_outputs
from gliograde.infer.patient import Evidence, PatientResult, patient_evidence, patient_result
from gliograde.io.cohort import SEG, Subject
from gliograde.model.aggregate import seg_weights
from gliograde.preprocess.slices import PrepareConfig, SubjectSlices, preprocess_subject
from gliograde.run import Run

NOSEG_UNTRAINED = (
    "this run cannot grade without a segmentation: it was trained on a --slices tumor store, "
    "so its tumour head never saw a slice without tumour; give the segmentation, or train on "
    "a store prepared with --slices brain"
)


def subject_slices(
    subject: Subject, run: Run, ignore_seg: bool = False
) -> tuple[SubjectSlices, bool]:
    """A patient's slices, preprocessed with the run's recorded options (never re-typed).

    Returns:
        (slices, with_seg): with_seg is True when a segmentation was found and used.

    Raises:
        SubjectError: the subject's files cannot be used; DataError: no seg for a run that
        cannot grade without one.
    """
    with_seg = SEG in subject.files and not ignore_seg
    if not with_seg and not run.can_grade_without_seg:
        raise DataError(NOSEG_UNTRAINED)
    config = PrepareConfig(**run.store_options)
    return preprocess_subject(subject, config, use_seg=with_seg), with_seg


def tumor_pixels(slices: SubjectSlices) -> np.ndarray:
    """Tumour pixels of each slice in the segmentation (native resolution)."""
    return sum(np.asarray(slices.counts[f"tumor_{k}"]) for k in (1, 2, 4))


def grade_slices(
    models,
    slices: SubjectSlices,
    with_seg: bool,
    run: Run,
    device: str = "cpu",
    calibration: dict | None = None,
) -> PatientResult:
    """The one patient rule on a preprocessed patient, calibrated as the run says (or as
    ``calibration``, e.g. one fitted by ``evaluate --test --recalibrate``).

    With a segmentation only the slices that speak (its tumour slices) go through the models:
    the others weigh 0 in every figure of the rule, so the answer is the one all slices give.
    Their ``slice_p`` is NaN and their weight 0 in the evidence.
    """
    n = len(slices.images)
    pixels = tumor_pixels(slices) if with_seg else None
    rows = np.flatnonzero(seg_weights(pixels, run.min_tumor)) if with_seg else np.arange(n)
    x = torch.from_numpy(slices.images[rows].astype(np.float32))
    p_class, p_tumor = slice_outputs(models, x, device)
    used_px = pixels[rows] if with_seg else None
    evidence = patient_evidence(models, x, p_class, p_tumor, used_px, run.min_tumor, device)
    evidence = on_all_slices(evidence, rows, n)
    calibration = run.calibration() if calibration is None else calibration
    rule = calibration.get("seg" if with_seg else "noseg", {})
    return patient_result(evidence, rule, run.target.classes)


def on_all_slices(evidence: Evidence, rows: np.ndarray, n: int) -> Evidence:
    """``evidence`` of the slices ``rows``, its per-slice arrays laid out on all ``n`` slices."""
    slice_p = np.full((n, *evidence.slice_p.shape[1:]), np.nan)
    weights = np.zeros(n)
    slice_p[rows], weights[rows] = evidence.slice_p, evidence.weights
    return replace(evidence, slice_p=slice_p, weights=weights)


def cohort_evidence(
    models, x: torch.Tensor, tumor_px: np.ndarray | None, run: Run, device: str = "cpu"
) -> dict:
    """Evidence on every path the run can take for one patient: ``seg`` (when ``tumor_px`` is
    given) and ``noseg`` (when the run can grade without a segmentation), from one forward pass.

    Both paths score the same slices: a ``brain``/``all`` store keeps slices by brain, not by
    tumour, so ``predict`` with and without the segmentation preprocesses the same slices.
    """
    p_class, p_tumor = slice_outputs(models, x, device)
    out = {}
    if tumor_px is not None:
        out["seg"] = patient_evidence(models, x, p_class, p_tumor, tumor_px, run.min_tumor, device)
    if run.can_grade_without_seg:
        out["noseg"] = patient_evidence(models, x, p_class, p_tumor, None, run.min_tumor, device)
    return out
