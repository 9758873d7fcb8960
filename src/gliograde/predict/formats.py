"""``predict``'s answers as text (the table), JSON (``--json``) and CSV (``--csv``).

The keys and columns are documented (``docs/reference/predict-output.md``) and stable: the
grade's answer is ``grade``, ``p_hgg`` and ``p_hgg_uncalibrated``; another target's is
``target``, ``prediction`` and ``probabilities`` (``{class: p}``), with a ``p_CLASS`` CSV column
per class.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np

from gliograde.infer.patient import PatientResult
from gliograde.io.target import Target
from gliograde.model.probability import shown_probability

GRADE_COLUMNS = (
    "subject",
    "grade",
    "p_hgg",
    "p_hgg_uncalibrated",
    "uncertainty",
    "flag",
    "n_slices",
    "used_seg",
    "out_of_distribution",
    "error",
)
"""``predict --csv``'s columns for the grade."""


def rounded(value) -> float:
    """A probability or uncertainty as the answers give it, to 6 decimals: the JSON, the CSV,
    the predictions page and the DICOM SR show the same number."""
    return round(float(value), 6)


def answer_dict(prediction) -> dict:
    """A :class:`~gliograde.predict.Prediction` as ``predict --json`` writes it."""
    if prediction.result is None:
        return {"subject": prediction.subject, "error": prediction.error}
    r, e = prediction.result, prediction.result.evidence
    return (
        {"subject": prediction.subject}
        | answer_keys(r, prediction.target)
        | {
            "n_slices": e.n_slices,
            "used_seg": e.used_seg,
            "uncertainty": rounded(r.uncertainty),
            "uncertainty_parts": {k: rounded(v) for k, v in r.parts().items()},
            "flag": "uncertain" if r.flag else "confident",
        }
        | prediction.extra
    )


def answer_keys(r: PatientResult, target: Target) -> dict:
    """The answer's own keys: the grade's, or any other target's (see the module)."""
    if target.is_grade:
        return {
            "grade": r.answer,
            "p_hgg": rounded(r.p[1]),
            "p_hgg_uncalibrated": rounded(r.p_uncalibrated[1]),
        }
    return {
        "target": target.name,
        "prediction": r.answer,
        "probabilities": class_probabilities(r.p, target.classes),
        "probabilities_uncalibrated": class_probabilities(r.p_uncalibrated, target.classes),
    }


def class_probabilities(p: np.ndarray, classes: tuple[str, ...]) -> dict[str, float]:
    """``{class: p}`` of a patient's probabilities ``[K]``."""
    return {c: rounded(v) for c, v in zip(classes, p, strict=True)}


def format_predictions(predictions: list, target: Target | None = None) -> str:
    """A plain-text table, one line per subject: the answer and the probability of class 1
    (P(HGG) for the grade), or with more than two classes that of the answer.

    ``target``: the run's (default: the predictions' own; needed when there are none).
    """
    target = target_of(predictions, target)
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
        answer = target.index(r.answer)
        flag = "uncertain" if r.flag else "confident"
        lines.append(
            f"{p.subject:<28}{r.answer:<{width}}{shown_probability(r.p, answer):>{right}.3f}"
            f"{r.evidence.n_slices:>8}  {seg:<5}{flag}"
        )
        lines += [f"{'':<28}warning: {w}" for w in p.extra.get("warnings", [])]
    return "\n".join(lines)


def predictions_json(predictions: list) -> str:
    return json.dumps([p.to_dict() for p in predictions], indent=2)


def csv_columns(target: Target) -> tuple[str, ...]:
    """:data:`GRADE_COLUMNS` for the grade; for another target, ``target, prediction`` and a
    ``p_CLASS`` column per class (calibrated) instead of the grade's three."""
    if target.is_grade:
        return GRADE_COLUMNS
    return (
        "subject",
        "target",
        "prediction",
        *(f"p_{c}" for c in target.classes),
        *GRADE_COLUMNS[4:],
    )


def predictions_csv(predictions: list, target: Target | None = None) -> str:
    """One row per subject, the columns of :func:`csv_columns` (``error`` empty when graded);
    ``target`` as for :func:`format_predictions`."""
    target = target_of(predictions, target)
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=csv_columns(target), lineterminator="\n", extrasaction="ignore"
    )
    writer.writeheader()
    for p in predictions:
        row = p.to_dict()
        row |= {f"p_{c}": v for c, v in row.get("probabilities", {}).items()}
        row["out_of_distribution"] = "; ".join(row.get("out_of_distribution", []))
        writer.writerow(row)
    return buffer.getvalue()


def target_of(predictions: list, target: Target | None) -> Target:
    if target is not None:
        return target
    if not predictions:
        raise ValueError("no prediction to take the target from: give the run's target")
    return predictions[0].target
