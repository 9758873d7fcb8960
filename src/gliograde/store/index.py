"""The store's ``index.csv``: one row per slice, written by ``prepare`` and read as columns."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gliograde.io.cohort import Subject
from gliograde.io.target import Target

# Pixel counts in the index are at native resolution (before --size), from the segmentation.
INDEX_COLUMNS = (
    "subject",
    "grade",
    "label",
    "z",
    "row",
    "tumor_1",
    "tumor_2",
    "tumor_4",
    "tumor",
    "brain",
)
_INT_COLUMNS = INDEX_COLUMNS[2:]


def write_index(store: Path, subjects: list[Subject], target: Target) -> list[dict]:
    """Write ``index.csv``: one row per slice, subjects in sorted order (deterministic)."""
    rows = []
    for subject in sorted(subjects, key=lambda s: s.subject_id):
        record = json.loads((store / "subjects" / subject.subject_id / "subject.json").read_text())
        for row, z in enumerate(record["z"]):
            counts = {k: record[k][row] for k in ("tumor_1", "tumor_2", "tumor_4", "brain")}
            rows.append(
                {
                    "subject": subject.subject_id,
                    "grade": subject.label,
                    "label": target.index(subject.label),
                    "z": z,
                    "row": row,
                    **counts,
                    "tumor": counts["tumor_1"] + counts["tumor_2"] + counts["tumor_4"],
                }
            )
    tmp = store / ".index.csv.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=INDEX_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(store / "index.csv")
    return rows


@dataclass
class SliceIndex:
    """The store's ``index.csv`` as columns (NumPy arrays), one entry per slice."""

    subject: np.ndarray
    grade: np.ndarray
    label: np.ndarray
    z: np.ndarray
    row: np.ndarray
    tumor_1: np.ndarray
    tumor_2: np.ndarray
    tumor_4: np.ndarray
    tumor: np.ndarray
    brain: np.ndarray

    def __len__(self) -> int:
        return len(self.subject)

    def take(self, rows: np.ndarray) -> SliceIndex:
        return SliceIndex(**{k: v[rows] for k, v in vars(self).items()})


def read_index(path: Path) -> SliceIndex:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    columns = {
        "subject": np.array([r["subject"] for r in rows], dtype=object),
        "grade": np.array([r["grade"] for r in rows], dtype=object),
    }
    for name in _INT_COLUMNS:
        columns[name] = np.array([int(r[name]) for r in rows], dtype=np.int64)
    return SliceIndex(**columns)
