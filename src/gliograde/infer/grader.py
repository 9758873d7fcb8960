"""The :class:`Grader`: a run's models opened once, and the one way to grade a patient with them.

``predict``, ``explain``, ``evaluate --test``, cross-validation's scoring and the MONAI bundle
all grade through it, so every figure gliograde reports is a figure about exactly what
``predict`` answers::

    grader = Grader.open(run)                    # the run's models, on their device, once
    outcome = grader.grade(subject)              # Graded, or Refused with its reason
    for fold, grader, held_out in Grader.per_fold(run):   # cross-validation
        ...

A patient is first *examined* (:meth:`Grader.examine`): its files preprocessed with the run's
recorded options (never re-typed) and compared with the patients the run was trained on
(:mod:`gliograde.infer.guard`). Then it is graded by the one patient rule
(:mod:`gliograde.infer.patient`). Which method to call:

* :meth:`Grader.grade`: a new patient's answer (``predict``, ``explain``, the bundle). With a
  segmentation only its tumour slices go through the models.
* :meth:`Grader.examine` then :meth:`Grader.evidence`: the uncalibrated evidence on every
  grading mode from one pass over all slices, for a cohort whose calibration and figures are
  computed afterwards (``evaluate --test``; cross-validation, on the store's slices).
* :meth:`Grader.answer`: step 2 of the rule on evidence already computed.

A grader made by :meth:`per_fold` holds no calibration (evaluation fits it from the evidence);
:meth:`Grader.open`'s reads the run's ``calibration.json`` when it first answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from gliograde.core.errors import DataError, GliogradeError
from gliograde.infer.guard import ADVICE, out_of_distribution
from gliograde.infer.models import (
    dtype_name,
    inference_dtype,
    load_models,
    model_inputs,
    models_dtype,
    slice_outputs,
)
from gliograde.infer.patient import Evidence, PatientResult, patient_evidence, patient_result
from gliograde.io.cohort import SEG, Subject
from gliograde.io.volumes import SubjectError
from gliograde.model.probability import seg_weights
from gliograde.preprocess.slices import SubjectSlices, preprocess_subject
from gliograde.run.calibration import MODES, Calibration, Mode, read_calibration
from gliograde.run.folder import Run

NOSEG_UNTRAINED = (
    "this run cannot grade without a segmentation: it was trained on a --slices tumor store, "
    "so its tumour head never saw a slice without tumour; give the segmentation, or train on "
    "a store prepared with --slices brain"
)


@dataclass(frozen=True)
class Refused:
    """A subject that could not be graded, and why (one line)."""

    subject: str
    reason: str


@dataclass
class Examined:
    """A subject preprocessed as the run's store was, and checked against its training data.

    ``reasons``: why it is out of distribution (empty when it is not; non-empty only when the
    grader was asked to grade it anyway).
    """

    subject: Subject
    slices: SubjectSlices
    with_seg: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def mode(self) -> Mode:
        """The grading mode: with the segmentation's tumour slices, or without."""
        return Mode.SEG if self.with_seg else Mode.NOSEG

    @property
    def x(self) -> torch.Tensor:
        """The slices as the models take them, ``[n, 4, H, W]`` float32."""
        return torch.from_numpy(self.slices.images.astype(np.float32))

    def tumor_pixels(self) -> np.ndarray | None:
        """Tumour pixels of each slice in the segmentation (None without one)."""
        return tumor_pixels(self.slices) if self.with_seg else None


@dataclass
class Graded:
    """A subject examined, and its answer."""

    examined: Examined
    result: PatientResult

    @property
    def subject(self) -> str:
        return self.examined.subject.subject_id


class Grader:
    """A run's models on their device, with the calibration their answers are given with."""

    def __init__(self, run: Run, models: list[torch.nn.Module], calibration: Calibration | None):
        self.run, self.models = run, models
        self._calibration = calibration

    @classmethod
    def open(
        cls,
        run: Run | Path,
        fold: int | None = None,
        device: str = "auto",
        calibration: Path | None = None,
        precision: str = "auto",
    ) -> Grader:
        """The run's models: fold ``fold``'s alone, else its ``--full`` model or every fold's,
        read, checked against their checksums and loaded once for the grader's life.

        Args:
            device: ``auto``, ``cpu`` or ``cuda`` (as ``--device``; ``gpu`` is ``cuda``), or a
                PyTorch device name (``cuda:1``).
            calibration: a ``calibration.json`` to answer with instead of the run's own (such as
                one ``evaluate --test --recalibrate`` fitted on a hospital's cohort).
            precision: ``auto``, ``fp32`` or ``bf16`` (as ``--precision``), resolved here for
                the device, once.

        Raises:
            GliogradeError: the run cannot be used, or ``calibration`` is not for its target;
                UsageError: an unknown ``precision`` (before any weights are read).
        """
        run = run if isinstance(run, Run) else Run.open(run)
        device = torch_name(device)
        inference_dtype(device, precision)  # a bad precision stops here, before any work
        own = checked_calibration(calibration, run) if calibration is not None else None
        return cls(run, load_models(run.weights(fold), device, precision=precision), own)

    @classmethod
    def per_fold(
        cls, run: Run, device: str = "auto", precision: str = "auto"
    ) -> Iterator[tuple[int, Grader, list[str]]]:
        """Cross-validation's loop: each trained fold, in fold order, with its model alone and
        its held-out patients (their evidence is uncalibrated: evaluation fits the rule)."""
        for k in run.folds():
            models = load_models(run.weights(k), torch_name(device), precision=precision)
            yield k, cls(run, models, None), run.fold_split(k)["val"]

    @property
    def precision(self) -> str:
        """``bf16`` or ``fp32``: the precision the models run in, chosen when they were opened."""
        return dtype_name(models_dtype(self.models))

    @property
    def calibration(self) -> Calibration:
        """The calibration answers are given with (read from the run when first needed)."""
        if self._calibration is None:
            self._calibration = self.run.calibration()
        return self._calibration

    def examine(
        self, subject: Subject, ignore_seg: bool = False, force: bool = False
    ) -> Examined | Refused:
        """Preprocess ``subject`` as the run's store was, and check it is like its patients.

        A subject out of distribution is refused, or with ``force`` examined with its reasons.
        """
        sid = subject.subject_id
        try:
            slices, with_seg = self._slices(subject, ignore_seg)
        except SubjectError as err:
            return Refused(sid, "; ".join(err.problems))
        except GliogradeError as err:
            return Refused(sid, str(err))
        manifest = self.run.manifest
        reasons = out_of_distribution(slices.profile, manifest.profile, manifest.resized)
        if reasons and not force:
            return Refused(sid, f"out of distribution: {'; '.join(reasons)}; {ADVICE}")
        return Examined(subject, slices, with_seg, reasons)

    def grade(
        self, subject: Subject, ignore_seg: bool = False, force: bool = False
    ) -> Graded | Refused:
        """Examine ``subject`` and grade it; a subject out of distribution graded with
        ``force`` is flagged uncertain."""
        examined = self.examine(subject, ignore_seg, force)
        if isinstance(examined, Refused):
            return examined
        result = self.grade_examined(examined)
        result.flag = result.flag or bool(examined.reasons)
        return Graded(examined, result)

    def grade_examined(self, examined: Examined) -> PatientResult:
        """The one patient rule on an examined patient, calibrated for its grading mode.

        With a segmentation only the slices that speak (its tumour slices) go through the
        models: the others weigh 0 in every figure of the rule, so the answer is the one all
        slices give. Their ``slice_p`` is NaN and their weight 0 in the evidence.
        """
        if getattr(self.models, "grid", 0):  # 3D: the volume, whatever the segmentation
            images = torch.from_numpy(examined.slices.images)
            evidence = volume_evidence(self.models, images)
            return self.answer(evidence, examined.mode)
        n = len(examined.slices.images)
        pixels = examined.tumor_pixels()  # None without a segmentation
        used: np.ndarray | None = None  # the rows' tumour pixels
        if pixels is None:
            rows = np.arange(n)
        else:
            rows = np.flatnonzero(seg_weights(pixels, self.run.min_tumor))
            used = pixels[rows]
        images = torch.from_numpy(examined.slices.images)  # as stored (float16): no copy
        x = model_inputs(self.models, images, rows).float()  # these rows (and neighbours) only
        p_class, p_tumor = slice_outputs(self.models, x)
        evidence = patient_evidence(self.models, x, p_class, p_tumor, used, self.run.min_tumor)
        evidence = on_all_slices(evidence, rows, n)
        return self.answer(evidence, examined.mode)

    def answer(self, evidence: Evidence, mode: Mode) -> PatientResult:
        """Step 2 of the rule with this grader's calibration of ``mode``."""
        return patient_result(evidence, self.calibration.rule(mode), self.run.target.classes)

    def evidence(
        self,
        x: torch.Tensor,
        tumor_px: np.ndarray | None,
        modes: tuple[Mode, ...] = MODES,
    ) -> dict[Mode, Evidence]:
        """Uncalibrated evidence on each grading mode the run can take for one patient, from
        one forward pass: ``seg`` (when ``tumor_px`` is given) and ``noseg`` (when the run can
        grade without a segmentation).

        Both modes score the same slices: a ``brain``/``all`` store keeps slices by brain, not
        by tumour, so ``predict`` with and without the segmentation preprocesses the same ones.
        """
        out: dict[Mode, Evidence] = {}
        if getattr(self.models, "grid", 0):
            noseg = volume_evidence(self.models, x)
            if tumor_px is not None and Mode.SEG in modes:
                out[Mode.SEG] = noseg  # the same answer: a 3D network never reads the segmentation
            if self.run.can_grade_without_seg and Mode.NOSEG in modes:
                out[Mode.NOSEG] = noseg
            return out
        x = model_inputs(self.models, x)
        p_class, p_tumor = slice_outputs(self.models, x)
        min_tumor = self.run.min_tumor
        if tumor_px is not None and Mode.SEG in modes:
            out[Mode.SEG] = patient_evidence(self.models, x, p_class, p_tumor, tumor_px, min_tumor)
        if self.run.can_grade_without_seg and Mode.NOSEG in modes:
            out[Mode.NOSEG] = patient_evidence(self.models, x, p_class, p_tumor, None, min_tumor)
        return out

    def _slices(self, subject: Subject, ignore_seg: bool) -> tuple[SubjectSlices, bool]:
        with_seg = SEG in subject.files and not ignore_seg
        if not with_seg and not self.run.can_grade_without_seg:
            raise DataError(NOSEG_UNTRAINED)
        config = self.run.manifest.prepare_config()
        return preprocess_subject(subject, config, use_seg=with_seg), with_seg


def torch_name(device: str) -> str:
    """A PyTorch device name for ``auto``, ``cpu`` or ``cuda`` (``gpu``); any other name (such
    as ``cuda:1``) as it is."""
    from gliograde.core.devices import ALIASES, DEVICE_CHOICES, resolve_device

    return resolve_device(device) if device in DEVICE_CHOICES or device in ALIASES else device


def checked_calibration(path: Path, run: Run) -> Calibration:
    """A ``calibration.json`` given with ``--calibration``, fitted for the run's target."""
    calibration = read_calibration(path)
    fitted_for, target = calibration.target, run.target
    if fitted_for != target:
        raise GliogradeError(
            f"{path}: fitted for the target {fitted_for.name} ({', '.join(fitted_for.classes)}), "
            f"not this run's {target.name} ({', '.join(target.classes)}); give the one "
            "`evaluate --test --recalibrate` wrote for this run"
        )
    return calibration


def tumor_pixels(slices: SubjectSlices) -> np.ndarray:
    """Tumour pixels of each slice in the segmentation (native resolution)."""
    t1, t2, t4 = (np.asarray(slices.counts[f"tumor_{k}"]) for k in (1, 2, 4))
    return t1 + t2 + t4


def volume_evidence(models: list[torch.nn.Module], images: torch.Tensor) -> Evidence:
    """The evidence of 3D models on a patient's slices ``[n, 4, H, W]``: one answer for the
    volume, laid out on the ``n`` slices it was made of (each with the volume's probabilities
    and an equal weight; all ``n`` speak). No segmentation chose them (``used_seg`` False),
    whether the patient has one or not."""
    x = model_inputs(models, images).float()
    p_class, p_tumor = slice_outputs(models, x)
    evidence = patient_evidence(models, x, p_class, p_tumor, None, 0)
    n = len(images)
    slice_p = np.repeat(evidence.slice_p, n, axis=0)
    weights = np.full(n, 1.0 / n)
    return replace(evidence, slice_p=slice_p, weights=weights, n_slices=n, used_seg=False)


def on_all_slices(evidence: Evidence, rows: np.ndarray, n: int) -> Evidence:
    """``evidence`` of the slices ``rows``, its per-slice arrays laid out on all ``n`` slices."""
    slice_p = np.full((n, *evidence.slice_p.shape[1:]), np.nan)
    weights = np.zeros(n)
    slice_p[rows], weights[rows] = evidence.slice_p, evidence.weights
    return replace(evidence, slice_p=slice_p, weights=weights)
