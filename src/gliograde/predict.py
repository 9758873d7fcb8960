"""``gliograde predict``: grade new patients with a trained run.

Inputs are subject folders, cohort folders in any layout ``check`` reads, or CSV manifests. The
preprocessing is the run's own (``RUN/config.json``), the models are the run's fold models
averaged (its ``--full`` model when there is one, fold K's alone with ``--fold K``), and each
patient goes through the one patient rule (:mod:`gliograde.infer.patient`), as in evaluation.

* With a segmentation: its tumour slices are averaged.
* Without one (or ``--ignore-seg``): every brain slice is scored and weighted by the model's own
  probability that it shows tumour. A run trained on a ``--slices tumor`` store cannot do this
  and says so.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from gliograde.core.errors import GliogradeError
from gliograde.infer.patient import PatientResult, shown_probability
from gliograde.io.target import GRADE, Target

CSV_COLUMNS = (
    "subject",
    "grade",
    "p_hgg",
    "p_hgg_uncalibrated",
    "uncertainty",
    "flag",
    "n_slices",
    "used_seg",
    "error",
)


@dataclass
class Prediction:
    """The answer for one subject (``error`` set instead when it could not be graded)."""

    subject: str
    result: PatientResult | None = None
    error: str | None = None
    extra: dict = field(default_factory=dict)
    dicom: tuple[Path, set[str]] | None = None  # the DICOM folder and series it was made from
    target: Target = GRADE

    def to_dict(self) -> dict:
        """``grade`` and ``p_hgg`` for the grade; for another target, ``target``,
        ``prediction`` and ``probabilities`` (``{class: p}``)."""
        if self.result is None:
            return {"subject": self.subject, "error": self.error}
        r, e = self.result, self.result.evidence
        return (
            {"subject": self.subject}
            | answer_of(r, self.target)
            | {
                "n_slices": e.n_slices,
                "used_seg": e.used_seg,
                "uncertainty": round(r.uncertainty, 6),
                "uncertainty_parts": {k: round(v, 6) for k, v in r.parts().items()},
                "flag": "uncertain" if r.flag else "confident",
            }
            | self.extra
        )


def answer_of(r: PatientResult, target: Target) -> dict:
    """The answer's own keys: the grade's (as ever), or any target's."""
    if target.is_grade:
        return {
            "grade": r.grade,
            "p_hgg": round(r.p, 6),
            "p_hgg_uncalibrated": round(r.p_uncalibrated, 6),
        }
    return {
        "target": target.name,
        "prediction": r.grade,
        "probabilities": class_probabilities(r.p, target.classes),
        "probabilities_uncalibrated": class_probabilities(r.p_uncalibrated, target.classes),
    }


def class_probabilities(p, classes: tuple[str, ...]) -> dict[str, float]:
    """``{class: p}`` of a patient's ``p`` (P(class 1) for two classes, a vector for more)."""
    values = [1.0 - p, p] if len(classes) == 2 else list(p)
    return {c: round(float(v), 6) for c, v in zip(classes, values, strict=True)}


def predict_subjects(
    inputs: list[Path],
    run_path: Path,
    ignore_seg: bool = False,
    device: str = "auto",
    fold: int | None = None,
    calibration: Path | None = None,
    force: bool = False,
) -> list[Prediction]:
    """Grade every subject of ``inputs``; a bad subject gets an error, not an exception.

    ``calibration``: a ``calibration.json`` to use instead of the run's own (such as the one
    ``evaluate --test --recalibrate`` fits on a hospital's cohort). A subject unlike the run's
    training data (:mod:`gliograde.infer.guard`) is refused, or with ``force`` graded, flagged
    uncertain and given its reasons under ``out_of_distribution``.

    Raises:
        GliogradeError: the run cannot be used (no config, no weights, no such fold).
    """
    from gliograde.core.devices import torch_device
    from gliograde.infer.guard import ADVICE, out_of_distribution
    from gliograde.infer.models import load_models, precision_name
    from gliograde.infer.subjects import grade_slices, subject_slices
    from gliograde.io.layouts import discover_inputs
    from gliograde.io.volumes import SubjectError
    from gliograde.run import Run
    from gliograde.scans.cached import preprocess_raw_inputs

    run = Run.open(run_path)
    dev = torch_device(device)
    inference = precision_name(dev)  # a bad GLIOGRADE_PRECISION stops here, before any work
    models = load_models(run.weights(fold), dev)
    own = read_calibration(calibration, run.target) if calibration is not None else None
    inputs, raw = preprocess_raw_inputs(inputs)
    subjects, errors = discover_inputs(inputs)
    out = [Prediction(name, error=problem) for name, problem in (raw.errors | errors).items()]
    for subject in subjects:
        try:
            slices, with_seg = subject_slices(subject, run, ignore_seg)
        except SubjectError as err:
            out.append(Prediction(subject.subject_id, error="; ".join(err.problems)))
            continue
        except GliogradeError as err:
            out.append(Prediction(subject.subject_id, error=str(err)))
            continue
        reasons = out_of_distribution(slices.profile, run.manifest.get("profile"), run.resized)
        if reasons and not force:
            problem = f"out of distribution: {'; '.join(reasons)}; {ADVICE}"
            out.append(Prediction(subject.subject_id, error=problem))
            continue
        result = grade_slices(models, slices, with_seg, run, dev, own)
        result.flag = result.flag or bool(reasons)
        extra = {"precision": inference} | ({"out_of_distribution": reasons} if reasons else {})
        extra |= small_tumor_note(slices, with_seg, run.min_tumor) | raw.about(subject.subject_id)
        source = raw.sources.get(subject.subject_id)
        answer = Prediction(
            subject.subject_id, result, extra=extra, dicom=source, target=run.target
        )
        out.append(answer)
    return out


def small_tumor_note(slices, with_seg: bool, min_tumor: int) -> dict:
    """A note when the segmentation has no tumour slice: the rule then weighs every slice."""
    from gliograde.infer.subjects import tumor_pixels

    if not with_seg or (tumor_pixels(slices) >= min_tumor).any():
        return {}
    return {
        "note": f"no slice has {min_tumor} tumour pixels in the segmentation: every slice "
        "weighed equally; check the segmentation, or grade with --ignore-seg"
    }


def read_calibration(path: Path, target: Target = GRADE) -> dict:
    """A ``calibration.json`` given with ``--calibration``, checked to hold the run's keys and
    to be fitted for the run's target (a file without one was fitted for the grade)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise GliogradeError(f"{path}: not a readable calibration.json ({err})") from err
    from gliograde.run import valid_rule

    rules = (
        {k: v for k, v in data.items() if k in ("seg", "noseg")} if isinstance(data, dict) else {}
    )
    if not rules or not all(valid_rule(rule) for rule in rules.values()):
        raise GliogradeError(
            f"{path}: not a gliograde calibration.json (no valid 'seg' or 'noseg')"
        )
    fitted_for = Target.of_manifest(data)
    if fitted_for != target:
        raise GliogradeError(
            f"{path}: fitted for the target {fitted_for.name} ({', '.join(fitted_for.classes)}), "
            f"not this run's {target.name} ({', '.join(target.classes)}); give the one "
            "`evaluate --test --recalibrate` wrote for this run"
        )
    return data


def format_predictions(predictions: list[Prediction]) -> str:
    """A plain-text table, one line per subject: the answer and the probability of class 1
    (P(HGG) for the grade), or with more than two classes that of the answer."""
    target = predictions[0].target if predictions else GRADE
    name, score = ("grade", "P(HGG)") if target.is_grade else (target.name, f"P({target.positive})")
    if len(target.classes) > 2:
        score = "P(answer)"
    width = max(7, len(name) + 1, *(len(c) + 1 for c in target.classes))
    right = max(8, len(score) + 2)
    lines = [f"{'subject':<28}{name:<{width}}{score:>{right}}{'slices':>8}  {'seg':<5}flag"]
    for p in predictions:
        if p.error:
            lines.append(f"{p.subject:<28}ERROR  {p.error}")
            continue
        r, seg = p.result, "yes" if p.result.evidence.used_seg else "no"
        answer = target.index(r.grade)
        flag = "uncertain" if r.flag else "confident"
        lines.append(
            f"{p.subject:<28}{r.grade:<{width}}{shown_probability(r.p, answer):>{right}.3f}"
            f"{r.evidence.n_slices:>8}  {seg:<5}{flag}"
        )
    return "\n".join(lines)


def predictions_json(predictions: list[Prediction]) -> str:
    return json.dumps([p.to_dict() for p in predictions], indent=2)


def csv_columns(target: Target) -> tuple[str, ...]:
    """:data:`CSV_COLUMNS` for the grade; for another target, ``target, prediction`` and a
    ``p_CLASS`` column per class (calibrated) instead of the grade's three."""
    if target.is_grade:
        return CSV_COLUMNS
    return (
        "subject",
        "target",
        "prediction",
        *(f"p_{c}" for c in target.classes),
        *CSV_COLUMNS[4:],
    )


def predictions_csv(predictions: list[Prediction]) -> str:
    """One row per subject, the columns of :func:`csv_columns` (``error`` empty when graded)."""
    target = predictions[0].target if predictions else GRADE
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=csv_columns(target), lineterminator="\n", extrasaction="ignore"
    )
    writer.writeheader()
    for p in predictions:
        row = p.to_dict()
        row |= {f"p_{c}": v for c, v in row.get("probabilities", {}).items()}
        writer.writerow(row)
    return buffer.getvalue()


def sr_finding(answer: dict):
    """A graded subject's answer (:meth:`Prediction.to_dict`) as an SR finding: the grade and
    P(HGG), or another target's class and each class's probability; the uncertainty and flag."""
    from gliograde.scans.sr import Finding

    flag = (
        ("UNCERTAIN", "Uncertain: review")
        if answer["flag"] == "uncertain"
        else ("CONFIDENT", "Confident")
    )
    common = [(("UNCERTAINTY", "Model uncertainty"), answer["uncertainty"])]
    if "grade" in answer:
        grades = {"HGG": ("HGG", "High-grade glioma"), "LGG": ("LGG", "Low-grade glioma")}
        return Finding(
            evaluations=[
                (("GRADE", "Predicted glioma grade"), grades[answer["grade"]]),
                (("FLAG", "Model confidence flag"), flag),
            ],
            measurements=[
                (("P_HGG", "Probability of high-grade glioma"), answer["p_hgg"]),
                *common,
            ],
        )
    name, classes = answer["target"], list(answer["probabilities"])
    index = classes.index(answer["prediction"])
    return Finding(
        evaluations=[  # fixed concept codes: a target named "flag" cannot collide with FLAG
            (("TARGET", f"Predicted {name}"), (f"CLASS{index}", answer["prediction"])),
            (("FLAG", "Model confidence flag"), flag),
        ],
        measurements=[
            ((f"P_CLASS{i}", f"Probability of {name} {c}"), answer["probabilities"][c])
            for i, c in enumerate(classes)
        ]
        + common,
    )


def write_dicom_srs(
    predictions: list[Prediction], out: Path
) -> tuple[dict[str, Path], list[str], dict[str, str]]:
    """One DICOM Structured Report per graded DICOM input (``predict --dicom-sr``), in the
    patient's study and referencing the images it was made from.

    Returns:
        (written, notes, failed): subject → its SR file; a line for each subject that needs
        none (not graded, not DICOM); subject → why its SR could not be written.
    """
    from gliograde import __version__
    from gliograde.scans.dicom import scan_folder
    from gliograde.scans.sr import source_headers, write_sr

    written, notes, failed, scanned = {}, [], {}, {}
    for p in predictions:
        if p.error:
            notes.append(f"{p.subject}: not graded, so no DICOM SR")
        elif p.dicom is None:
            notes.append(f"{p.subject}: not a DICOM input, so no DICOM SR (nothing to refer to)")
        else:
            folder, uids = p.dicom
            if folder not in scanned:  # one export, several patients: read its headers once
                scanned[folder] = scan_folder(folder)[0]
            headers = source_headers(folder, uids, scanned[folder])
            try:
                written[p.subject] = write_sr(headers, sr_finding(p.to_dict()), out, __version__)
            except ValueError as err:  # highdicom's refusal of these headers
                failed[p.subject] = f"no DICOM SR: {err}"
    return written, notes, failed
