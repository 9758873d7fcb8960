"""Out-of-fold slice outputs (``predictions_slices.csv``) and slice-level figures."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gliograde.infer.patient import Evidence
from gliograde.run.calibration import Mode

if TYPE_CHECKING:
    from gliograde.assess.record import SliceFigures

COLUMNS = (
    "fold",
    "subject",
    "z",
    "y",
    "p",
    "p_tumor",
    "tumor_pixels",
    "weight",
    "weight_noseg",
)


@dataclass
class SliceTable:
    """One row per slice: what the fold's model said, and the slice's weight on each path."""

    columns: dict[str, np.ndarray]

    @classmethod
    def of_patient(cls, fold, subject, label, index, rows, evidence: dict) -> SliceTable:
        n = len(rows)
        e = next(iter(evidence.values()))
        cols = {
            "fold": np.full(n, fold),
            "subject": np.full(n, subject, dtype=object),
            "z": index.z[rows],
            "y": np.full(n, label),
            "p": e.slice_p,
            "p_tumor": weights(evidence, Mode.NOSEG, n),
            "tumor_pixels": index.tumor[rows],
            "weight": weights(evidence, Mode.SEG, n),
            "weight_noseg": weights(evidence, Mode.NOSEG, n),
        }
        return cls(cols)

    @classmethod
    def concat(cls, parts: list[SliceTable]) -> SliceTable:
        if not parts:
            return cls({k: np.zeros(0) for k in COLUMNS})
        return cls({k: np.concatenate([p.columns[k] for p in parts]) for k in COLUMNS})

    def write_csv(self, path: Path, classes: tuple[str, ...]) -> None:
        """The table, its probability column ``p`` (``[n, K]``) named ``p_hgg`` for the grade,
        ``p_CLASS`` (class 1's) for another two-class target, one ``p_CLASS`` per class for
        more."""
        from gliograde.assess.patients import csv_names

        c = self.columns
        with open(path, "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow([n for k in COLUMNS for n in csv_names(k, tuple(classes))])
            for i in range(len(c["subject"])):
                writer.writerow([v for k in COLUMNS for v in cell_texts(k, c[k][i])])

    @classmethod
    def read_csv(cls, path: Path, classes: tuple[str, ...]) -> SliceTable:
        from gliograde.assess.patients import csv_names, probability_of_text

        probability = csv_names("p", tuple(classes))
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        cols = {"subject": np.array([r["subject"] for r in rows], dtype=object)}
        for k in ("fold", "z", "y", "tumor_pixels"):
            cols[k] = np.array([int(r[k]) for r in rows])
        for k in ("p_tumor", "weight", "weight_noseg"):
            cols[k] = np.array([float(r[k]) for r in rows])
        cols["p"] = np.array(
            [probability_of_text([r[k] for k in probability]) for r in rows], dtype=np.float64
        ).reshape(len(rows), max(2, len(probability)))
        return cls(cols)


def cell_texts(name: str, value) -> list[str]:
    """A cell's texts in the file: a probability vector's as
    :func:`~gliograde.assess.patients.probability_text` writes them."""
    from gliograde.assess.patients import probability_text

    return probability_text(value) if name == "p" else [fmt(value)]


def weights(evidence: dict[Mode, Evidence], mode: Mode, n: int) -> np.ndarray:
    """The slices' weights in ``mode`` (NaN where the patient was not graded in it)."""
    return evidence[mode].weights if mode in evidence else np.full(n, np.nan)


def fmt(v) -> str:
    if isinstance(v, float | np.floating):
        return f"{v:.6f}"
    return str(v)


def slice_figures(table: SliceTable, min_tumor: int) -> SliceFigures:
    """Slice-level discrimination on tumour slices (P(class 1) ≥ 0.5 or the top class,
    uncalibrated)."""
    from gliograde.assess.metrics import discrimination
    from gliograde.assess.record import SliceFigures

    c = table.columns
    tumor = c["tumor_pixels"] >= min_tumor
    note = "each tumour slice on its own, uncalibrated: P(class 1) at 0.5, or the top class"
    return SliceFigures(discrimination(c["y"][tumor], c["p"][tumor]), note)
