"""A cohort's patient evidence and answers, one row per patient: ``predictions_patients.csv``.

The evidence columns (the uncalibrated probability and the three spreads, per grading mode:
with a segmentation and without) are what the patient rule's first step produced, so
calibration, flags and metrics can be recomputed from this file alone (``gliograde evaluate RUN``).

Inside the code a probability column is ``p`` (``p``, ``p_uncalibrated``, ``p_noseg``, ...), a
vector of the K class probabilities; in the file it is named for the target: ``p_hgg…`` for the
grade and ``p_CLASS…`` of class 1 for another two-class target (one column, P(class 1): the
other is its complement), and one ``p_CLASS…`` per class for more.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

import numpy as np

from gliograde import GRADES
from gliograde.core.errors import GliogradeError
from gliograde.infer.patient import Evidence, PatientResult
from gliograde.run.calibration import MODES, Mode

EVIDENCE = ("p_uncalibrated", "slice_spread", "tta_spread", "fold_spread", "n_slices")
ANSWER = ("p", "uncertainty", "flag", "pred")


PROBABILITIES = ("p", "p_uncalibrated", "p_noseg", "p_noseg_uncalibrated")
"""The inner names of the class-probability columns (``p_tumor`` is another thing)."""


def is_probability(name: str) -> bool:
    return name in PROBABILITIES


def column(name: str, mode: Mode) -> str:
    """A column's inner name in a grading mode: ``p_uncalibrated`` → ``p_noseg_uncalibrated``,
    ``uncertainty`` → ``uncertainty_noseg`` without a segmentation; as is with one."""
    if is_probability(name):
        return "p" + mode.suffix + name[1:]
    return name + mode.suffix


def csv_names(name: str, classes: tuple[str, ...]) -> list[str]:
    """A column's names in the file. A probability: ``p_hgg…`` for the grade, ``p_CLASS…`` of
    class 1 for another two-class target (``p_wildtype_noseg_uncalibrated``), one ``p_CLASS…``
    per class for more (``p_2``, ``p_3``, ``p_4``). Any other column: as is."""
    if not is_probability(name):
        return [name]
    rest = name[1:]
    if tuple(classes) == GRADES:
        return ["p_hgg" + rest]
    if len(classes) == 2:
        return [f"p_{classes[1]}" + rest]
    return [f"p_{c}" + rest for c in classes]


def read_rows(path: Path, classes: tuple[str, ...]) -> list[dict]:
    """The rows of a ``predictions_patients.csv``, its columns under their inner names (a
    probability is a list of texts: one, P(class 1), for two classes; one per class for
    more)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    names = [column(c, m) for m in MODES for c in ANSWER + EVIDENCE]
    return [inner_names(row, names, classes) for row in rows]


def given(value: list[str] | None) -> TypeGuard[list[str]]:
    """A probability the file holds: its texts, none of them empty."""
    return value is not None and len(value) > 0 and all(value)


def row_mode(row: dict) -> Mode:
    """The mode a row of :func:`read_rows` reports: with the segmentation where it has that
    answer, else without."""
    return Mode.SEG if given(row.get("p")) else Mode.NOSEG


def inner_names(row: dict, names: list[str], classes: tuple[str, ...]) -> dict:
    """A file's row with the ``names`` columns under their inner names (:func:`csv_names`
    reversed; K class columns become one list)."""
    out = dict(row)
    for name in names:
        found = csv_names(name, classes)
        if all(k in row for k in found):
            values = [out.pop(k) for k in found]
            out[name] = values if is_probability(name) else values[0]
    return out


@dataclass
class PatientTable:
    """Patients of a cohort: ids, folds, true labels, and per grading mode evidence and answers."""

    subject: list[str]
    fold: np.ndarray
    y: np.ndarray
    evidence: dict[Mode, list[Evidence]]  # one per patient (NOSEG absent: not graded)
    classes: tuple[str, ...]  # the target's classes: y indexes them
    results: dict[Mode, list[PatientResult]] = field(default_factory=dict)

    def p_uncalibrated(self, mode: Mode) -> np.ndarray:
        """Patients' uncalibrated probabilities ``[n, K]``."""
        return np.array([e.p for e in self.evidence[mode]], dtype=np.float64)

    def p_calibrated(self, mode: Mode) -> np.ndarray:
        """Patients' calibrated probabilities ``[n, K]``."""
        return np.array([r.p for r in self.results[mode]], dtype=np.float64)

    def columns(self) -> list[str]:
        names = ["subject", "fold", "y"]
        for mode in self.evidence:
            for n in (*ANSWER, *EVIDENCE):
                names += csv_names(column(n, mode), self.classes)
        return names

    def write_csv(self, path: Path) -> None:
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns(), lineterminator="\n")
            writer.writeheader()
            for i, subject in enumerate(self.subject):
                row = {"subject": subject, "fold": int(self.fold[i]), "y": int(self.y[i])}
                for mode, evidence in self.evidence.items():
                    results = self.results.get(mode)
                    row |= row_of(mode, evidence[i], results[i] if results else None)
                writer.writerow(file_row(row, self.classes))


def file_row(row: dict, classes: tuple[str, ...]) -> dict:
    """A row under its names in the file, a probability vector spread over its classes'."""
    out: dict[str, object] = {}
    for k, v in row.items():
        names = csv_names(k, classes)
        out |= dict(zip(names, v if isinstance(v, list) else [v], strict=True))
    return out


def probability_text(p: np.ndarray) -> list[str]:
    """A probability vector ``[K]`` as the file's texts: ``["0.123456"]`` of P(class 1) for two
    classes, one per class for more."""
    values = p[1:] if len(p) == 2 else p
    return [f"{x:.6f}" for x in values]


def probability_of_text(values: list[str]) -> np.ndarray:
    """:func:`probability_text` reversed: the vector ``[K]``."""
    p = np.array(values, dtype=np.float64)
    return np.array([1.0 - p[0], p[0]]) if len(p) == 1 else p


def row_of(mode: Mode, e: Evidence, r: PatientResult | None) -> dict:
    row = {
        column("p_uncalibrated", mode): probability_text(e.p),
        column("slice_spread", mode): f"{e.slice_spread:.6f}",
        column("tta_spread", mode): f"{e.tta_spread:.6f}",
        column("fold_spread", mode): f"{e.fold_spread:.6f}",
        column("n_slices", mode): e.n_slices,
    }
    if r is not None:
        row[column("p", mode)] = probability_text(r.p)
        row[column("uncertainty", mode)] = f"{r.uncertainty:.6f}"
        row[column("flag", mode)] = "uncertain" if r.flag else ""
        row[column("pred", mode)] = r.answer
    return row


def read_patient_table(path: Path, classes: tuple[str, ...]) -> PatientTable:
    """The evidence of a ``predictions_patients.csv`` (answers are recomputed from it)."""
    if not Path(path).is_file():
        raise GliogradeError(f"{path}: no saved predictions; train (or evaluate) the run first")
    rows = read_rows(path, classes)
    if not rows:
        raise GliogradeError(f"{path}: holds no patient")
    evidence: dict[Mode, list[Evidence]] = {}
    for mode in MODES:
        if column("p_uncalibrated", mode) in rows[0]:
            evidence[mode] = [evidence_of(r, mode) for r in rows]
    fold = np.array([int(r["fold"]) for r in rows])
    y = np.array([int(r["y"]) for r in rows])
    return PatientTable([r["subject"] for r in rows], fold, y, evidence, classes)


def evidence_of(row: dict, mode: Mode) -> Evidence:
    def value(name):
        return float(row[column(name, mode)])

    p = probability_of_text(row[column("p_uncalibrated", mode)])
    return Evidence(
        p=p,
        slice_spread=value("slice_spread"),
        tta_spread=value("tta_spread"),
        fold_spread=value("fold_spread"),
        n_slices=int(value("n_slices")),
        used_seg=mode is Mode.SEG,
        slice_p=np.zeros((0, len(p))),
        weights=np.zeros(0),
    )
