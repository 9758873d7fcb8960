"""``gliograde predict``: grade new patients with a trained run.

Inputs are subject folders, cohort folders in any layout ``check`` reads, CSV manifests, or
raw scans (DICOM or NIfTI in any grid, preprocessed first). The preprocessing is the run's own
(``RUN/config.json``), the models are the run's fold models averaged (its ``--full`` model when
there is one, fold K's alone with ``--fold K``), and each patient goes through the
:class:`~gliograde.infer.grader.Grader`, as in evaluation.

* With a segmentation: its tumour slices are averaged.
* Without one (or ``--ignore-seg``): every brain slice is scored and weighted by the model's own
  probability that it shows tumour. A run trained on a ``--slices tumor`` store cannot do this
  and says so.

The models are opened once (:func:`open_grader`) and grade any number of inputs
(:func:`grade_inputs`); :func:`predict_subjects` is the two in a row, for the command line.

:mod:`gliograde.predict.formats` writes the answers as text, JSON and CSV.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gliograde.infer.grader import Graded, Grader
from gliograde.infer.patient import PatientResult
from gliograde.io.target import Target


@dataclass
class PredictOptions:
    """How ``predict`` grades: which models, on which device, with which calibration."""

    fold: int | None = None
    ignore_seg: bool = False
    force: bool = False  # grade patients out of distribution too (flagged uncertain)
    device: str = "auto"  # auto, cpu or cuda
    calibration: Path | None = None  # instead of the run's own calibration.json
    explain: Path | None = None  # a folder for each patient's Grad-CAM volume and viewer
    precision: str = "auto"  # auto, fp32 or bf16, fixed when the Grader opens
    cache: Path | None = None  # where raw scans are preprocessed (None: ~/.cache/gliograde)


@dataclass
class Prediction:
    """The answer for one subject (``error`` set instead when it could not be graded)."""

    subject: str
    target: Target
    result: PatientResult | None = None
    error: str | None = None
    extra: dict = field(default_factory=dict)
    dicom: tuple[Path, set[str]] | None = None  # the DICOM folder and series it was made from
    folder: Path | None = None  # the subject folder graded (preprocess's, for raw scans)
    heatmap: Path | None = None  # its Grad-CAM volume (gradcam.nii.gz), when explained

    @property
    def graded_result(self) -> PatientResult:
        """The subject's answer, for a writer that has set the subjects in ``error`` aside.

        Raises:
            ValueError: the subject was not graded (``error`` says why).
        """
        if self.result is None:
            raise ValueError(f"{self.subject}: not graded ({self.error or 'no answer'})")
        return self.result

    def to_dict(self) -> dict:
        """``predict --json``'s object (see :func:`gliograde.predict.formats.answer_dict`)."""
        from gliograde.predict.formats import answer_dict

        return answer_dict(self)


def open_grader(run_path: Path, options: PredictOptions | None = None) -> Grader:
    """The run's models opened once for ``options`` (its ``fold``, ``device``, ``precision``
    and ``calibration``), to grade any number of inputs with :func:`grade_inputs`: the weights
    are read, checked against their checksums and loaded here only.

    Raises:
        GliogradeError: the run cannot be used (no config, no weights, no such fold).
    """
    o = options or PredictOptions()
    return Grader.open(run_path, o.fold, o.device, o.calibration, o.precision)


def grade_inputs(
    grader: Grader, inputs: list[Path], options: PredictOptions | None = None
) -> list[Prediction]:
    """Grade every subject of ``inputs`` with an open ``grader``; a bad subject gets an error,
    not an exception. Of ``options`` it reads how to grade (``ignore_seg``, ``force``,
    ``explain``, ``cache``); the grader was opened with the rest.

    A subject unlike the run's training data (:mod:`gliograde.infer.guard`) is refused, or with
    ``options.force`` graded, flagged uncertain and given its reasons under
    ``out_of_distribution``.
    """
    from gliograde.io.layouts import discover_inputs
    from gliograde.scans.cached import preprocess_raw_inputs, recorded_dicom_source

    o = options or PredictOptions()
    target = grader.run.target
    inputs, raw = preprocess_raw_inputs(inputs, o.cache)
    subjects, errors = discover_inputs(inputs)
    out = [Prediction(name, target, error=why) for name, why in (raw.errors | errors).items()]
    for subject in subjects:
        outcome = grader.grade(subject, o.ignore_seg, o.force)
        if not isinstance(outcome, Graded):
            out.append(Prediction(outcome.subject, target, error=outcome.reason))
            continue
        sid = outcome.subject
        extra = {"precision": grader.precision} | answer_notes(outcome, grader.run.min_tumor)
        extra |= raw.about(sid)
        dicom = raw.sources.get(sid) or recorded_dicom_source(subject.folder)
        heatmap = None
        if o.explain is not None:
            about, heatmap = explained(grader, outcome, o.explain)
            extra |= about
        answer = Prediction(sid, target, outcome.result, extra=extra, dicom=dicom)
        answer.folder, answer.heatmap = subject.folder, heatmap
        out.append(answer)
    return out


def predict_subjects(
    inputs: list[Path], run_path: Path, options: PredictOptions | None = None
) -> list[Prediction]:
    """``gliograde predict``: open the run's models (:func:`open_grader`), then grade every
    subject of ``inputs`` with them (:func:`grade_inputs`). A caller that grades again and
    again (a server) opens once and calls :func:`grade_inputs` each time instead.

    Raises:
        GliogradeError: the run cannot be used (no config, no weights, no such fold).
    """
    o = options or PredictOptions()
    return grade_inputs(open_grader(run_path, o), inputs, o)


def explained(grader: Grader, graded: Graded, explain: Path) -> tuple[dict, Path | None]:
    """The patient explained as ``explain`` does, from the slices it was graded on: the
    viewer's path (under ``explain``, ``predict --explain``'s folder; absent when its Grad-CAM
    volume could not be drawn, which a note said) and the seconds it took; and its Grad-CAM
    volume (``gradcam.nii.gz``; None without one)."""
    import time

    from gliograde.assess.explain import ExplainOptions, explain_graded

    started = time.perf_counter()
    folder = Path(explain)
    folder.mkdir(parents=True, exist_ok=True)
    done = explain_graded(grader, graded, ExplainOptions(folder, per_patient=1), folder)
    seconds = {"explain_seconds": round(time.perf_counter() - started, 2)}
    if done.viewer is None:  # one patient's files must not stop the others' answers
        return seconds, None
    viewer = (folder / done.viewer).resolve()
    return {"viewer": str(viewer)} | seconds, viewer.parent / "gradcam.nii.gz"


def answer_notes(graded: Graded, min_tumor: int) -> dict:
    """Why an answer deserves a second look: the reasons it is out of distribution, what was
    changed in reading its files (``warnings``), and a note when the segmentation has no tumour
    slice (the rule then weighs every slice)."""
    e = graded.examined
    notes: dict[str, str | list[str]] = {"out_of_distribution": e.reasons} if e.reasons else {}
    if e.slices.warnings:  # such as a sequence masked with the others' brain
        notes["warnings"] = list(e.slices.warnings)
    pixels = e.tumor_pixels()  # None without a segmentation
    if pixels is not None and not np.any(pixels >= min_tumor):
        notes["note"] = (
            f"no slice has {min_tumor} tumour pixels in the segmentation: every slice "
            "weighed equally; check the segmentation, or grade with --ignore-seg"
        )
    return notes
