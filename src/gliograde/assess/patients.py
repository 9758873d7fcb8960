"""A cohort's patient evidence and answers, one row per patient: ``predictions_patients.csv``.

The evidence columns (uncalibrated P(HGG) and the three spreads, per path: with a segmentation
and without) are what the patient rule's first step produced, so calibration, flags and metrics
can be recomputed from this file alone (``gliograde evaluate RUN``).

Probability columns are named for the target: ``p_hgg…`` for the grade, ``p_CLASS…`` of class 1
for another two-class target, and one ``p_CLASS…`` per class for more.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gliograde import GRADES
from gliograde.core.errors import GliogradeError
from gliograde.infer.patient import Evidence, PatientResult

PATHS = ("seg", "noseg")
EVIDENCE = ("p_hgg_uncalibrated", "slice_spread", "tta_spread", "fold_spread", "n_slices")
ANSWER = ("p_hgg", "uncertainty", "flag", "pred")


def column(name: str, path: str) -> str:
    """A column's name on a path: ``p_hgg_uncalibrated`` → ``p_hgg_noseg_uncalibrated``,
    ``uncertainty`` → ``uncertainty_noseg`` for the seg-free path; as is for the seg path."""
    if path == "seg":
        return name
    if name.startswith("p_hgg"):
        return "p_hgg_noseg" + name[len("p_hgg") :]
    return f"{name}_noseg"


def csv_name(name: str, classes: tuple[str, ...]) -> str:
    """A column's name in the file: ``p_hgg…`` is ``p_CLASS…`` for a target other than the
    grade (``p_wildtype``, ``p_wildtype_noseg_uncalibrated``)."""
    if tuple(classes) == GRADES or not name.startswith("p_hgg"):
        return name
    return f"p_{classes[1]}" + name[len("p_hgg") :]


def csv_names(name: str, classes: tuple[str, ...]) -> list[str]:
    """A column's names in the file: :func:`csv_name`'s one, or for a probability of a target
    of more than two classes, one per class (``p_2``, ``p_3``, ``p_4``)."""
    if len(classes) == 2 or not name.startswith("p_hgg"):
        return [csv_name(name, classes)]
    return [f"p_{c}" + name[len("p_hgg") :] for c in classes]


def read_rows(path: Path, classes: tuple[str, ...] = GRADES) -> list[dict]:
    """The rows of a ``predictions_patients.csv``, its columns under their grade names (with
    more than two classes a probability is a list, one per class)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    names = [column(c, p) for p in PATHS for c in ANSWER + EVIDENCE]
    return [grade_names(row, names, classes) for row in rows]


def grade_names(row: dict, names: list[str], classes: tuple[str, ...]) -> dict:
    """A file's row with the ``names`` columns under their grade names (:func:`csv_names`
    reversed; K class columns become one list)."""
    out = dict(row)
    for name in names:
        found = csv_names(name, classes)
        if all(k in row for k in found):
            values = [out.pop(k) for k in found]
            out[name] = values if len(found) > 1 else values[0]
    return out


@dataclass
class PatientTable:
    """Patients of a cohort: ids, folds, true labels, and per path evidence and answers."""

    subject: list[str]
    fold: np.ndarray
    y: np.ndarray
    evidence: dict[str, list[Evidence]]  # path → one per patient ("noseg" absent: not graded)
    results: dict[str, list[PatientResult]] = field(default_factory=dict)
    classes: tuple[str, ...] = GRADES  # the target's classes: y indexes them

    def p_uncalibrated(self, path: str) -> np.ndarray:
        """Patients' uncalibrated probabilities: ``[n]`` or ``[n, K]``."""
        return np.array([e.p for e in self.evidence[path]], dtype=np.float64)

    def p_calibrated(self, path: str) -> np.ndarray:
        """Patients' calibrated probabilities: ``[n]`` or ``[n, K]``."""
        return np.array([r.p for r in self.results[path]], dtype=np.float64)

    def columns(self) -> list[str]:
        names = ["subject", "fold", "y"]
        for path in self.evidence:
            for n in (*ANSWER, *EVIDENCE):
                names += csv_names(column(n, path), self.classes)
        return names

    def write_csv(self, path: Path) -> None:
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns(), lineterminator="\n")
            writer.writeheader()
            for i, subject in enumerate(self.subject):
                row = {"subject": subject, "fold": int(self.fold[i]), "y": int(self.y[i])}
                for p, evidence in self.evidence.items():
                    results = self.results.get(p)
                    row |= row_of(p, evidence[i], results[i] if results else None)
                writer.writerow(file_row(row, self.classes))


def file_row(row: dict, classes: tuple[str, ...]) -> dict:
    """A row under its names in the file, a probability vector spread over its classes'."""
    out = {}
    for k, v in row.items():
        names = csv_names(k, classes)
        values = v if isinstance(v, list) else [v]
        out |= dict(zip(names, values, strict=True))
    return out


def probability_text(p) -> str | list[str]:
    """``0.123456``, or one such text per class for a probability vector."""
    return [f"{x:.6f}" for x in p] if np.ndim(p) else f"{p:.6f}"


def row_of(path: str, e: Evidence, r: PatientResult | None) -> dict:
    row = {
        column("p_hgg_uncalibrated", path): probability_text(e.p),
        column("slice_spread", path): f"{e.slice_spread:.6f}",
        column("tta_spread", path): f"{e.tta_spread:.6f}",
        column("fold_spread", path): f"{e.fold_spread:.6f}",
        column("n_slices", path): e.n_slices,
    }
    if r is not None:
        row[column("p_hgg", path)] = probability_text(r.p)
        row[column("uncertainty", path)] = f"{r.uncertainty:.6f}"
        row[column("flag", path)] = "uncertain" if r.flag else ""
        row[column("pred", path)] = r.grade
    return row


def read_patient_table(path: Path, classes: tuple[str, ...] = GRADES) -> PatientTable:
    """The evidence of a ``predictions_patients.csv`` (answers are recomputed from it)."""
    if not Path(path).is_file():
        raise GliogradeError(f"{path}: no saved predictions; train (or evaluate) the run first")
    rows = read_rows(path, classes)
    if not rows:
        raise GliogradeError(f"{path}: holds no patient")
    evidence = {}
    for p in PATHS:
        if column("p_hgg_uncalibrated", p) in rows[0]:
            evidence[p] = [evidence_of(r, p) for r in rows]
    fold = np.array([int(r["fold"]) for r in rows])
    y = np.array([int(r["y"]) for r in rows])
    return PatientTable([r["subject"] for r in rows], fold, y, evidence, classes=classes)


def evidence_of(row: dict, path: str) -> Evidence:
    def value(name):
        return float(row[column(name, path)])

    p = row[column("p_hgg_uncalibrated", path)]
    return Evidence(
        p=np.array(p, dtype=np.float64) if isinstance(p, list) else float(p),
        slice_spread=value("slice_spread"),
        tta_spread=value("tta_spread"),
        fold_spread=value("fold_spread"),
        n_slices=int(value("n_slices")),
        used_seg=path == "seg",
        slice_p=np.zeros(0),
        weights=np.zeros(0),
    )
