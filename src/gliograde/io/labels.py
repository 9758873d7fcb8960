"""Grades from files: a label CSV (BraTS's ``name_mapping.csv``, or any CSV with a ``Grade``
column) and a CSV manifest that lists each subject's files."""

from __future__ import annotations

import csv
from pathlib import Path

from gliograde import MODALITIES
from gliograde.core.errors import DataError
from gliograde.io.cohort import SEG, Cohort, Subject, sort_subjects
from gliograde.io.target import GRADE

_GRADE_NAMES = {"HGG": "HGG", "LGG": "LGG"}


def normalise_grade(value: str) -> str | None:
    """ "hgg" → "HGG"; None for anything that is not a grade we know."""
    return _GRADE_NAMES.get(value.strip().upper())


def default_label_csv(data: Path) -> Path | None:
    """``DATA/name_mapping.csv`` when it exists (BraTS 2020)."""
    path = data / "name_mapping.csv"
    return path if path.is_file() else None


def read_csv_rows(path: Path) -> tuple[list[dict[str, str]], list[str]]:
    """Rows of a CSV as dicts of strings, with a clear error for an unreadable file.

    A short row's missing cells read as empty strings; cells beyond the header are dropped.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = [
                {k: v if isinstance(v, str) else "" for k, v in row.items() if k is not None}
                for row in reader
            ]
            return rows, list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path}: cannot read CSV ({err})") from err


def read_label_csv(
    path: Path | None, subject_ids: list[str], required: bool = True
) -> tuple[dict[str, str], dict[str, list[str]], list[str]]:
    """Read grades for ``subject_ids`` from a label CSV.

    The CSV needs a ``Grade`` column (``required=False``: a table without one, a clinical
    table of other labels, gives no grades); the id column is the one whose values match the
    most subject folders (``BraTS_2020_subject_ID`` for name_mapping.csv, or any other).

    Returns:
        (grades, problems, notes): grade per id, problems per id (unknown or conflicting
        grades), and notes such as how many rows have no folder (normal for a subset).
    """
    if path is None:
        return {}, {}, []
    if not path.is_file():
        raise DataError(f"{path}: label CSV not found; give an existing file with --labels")
    rows, columns = read_csv_rows(path)
    grade_col = next((c for c in columns if c.strip().lower() == "grade"), None)
    if grade_col is None and not required:
        return {}, {}, []
    if grade_col is None:
        raise DataError(f"{path}: no 'Grade' column; the label CSV needs one (HGG or LGG)")
    wanted = set(subject_ids)
    seen = values_by_id(rows, columns, grade_col, wanted)
    grades, problems = grades_of(seen, subject_ids, path.name)
    unmatched = len(set(seen) - wanted)
    notes = []
    if unmatched:
        notes.append(
            f"{unmatched} rows of {path.name} have no subject folder here (normal for a subset)"
        )
    return grades, problems, notes


def values_by_id(
    rows: list[dict[str, str]], columns: list[str], value_col: str, wanted: set[str]
) -> dict[str, set[str]]:
    """Each id's values of ``value_col`` (stripped, empty ones kept). The id column is the one
    whose values match the most of ``wanted`` (``BraTS_2020_subject_ID`` for name_mapping.csv)."""
    id_col = max(
        (c for c in columns if c != value_col),
        key=lambda c: sum(r.get(c, "").strip() in wanted for r in rows),
        default=None,
    )
    seen: dict[str, set[str]] = {}
    if id_col is None:  # no column but the values': no id to find them by
        return seen
    for row in rows:
        sid = (row.get(id_col) or "").strip()
        if sid:
            seen.setdefault(sid, set()).add((row.get(value_col) or "").strip())
    return seen


def grades_of(
    seen: dict[str, set[str]], subject_ids: list[str], where: str
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Each subject's one known grade, or the problem with its rows."""
    grades, problems = {}, {}
    for sid in subject_ids:
        values = seen.get(sid)
        if not values:
            continue
        if len(values) > 1:
            problems[sid] = [f"conflicting grades {sorted(values)} in {where}; keep one row"]
            continue
        (value,) = values
        grade = normalise_grade(value)
        if grade is None:
            problems[sid] = [f"unknown grade {value!r} in {where}; use HGG or LGG"]
        else:
            grades[sid] = grade
    return grades, problems


def read_manifest(path: Path, need_labels: bool = True) -> Cohort:
    """A CSV manifest: ``subject_id,grade,flair,t1,t1ce,t2[,seg]``, paths relative to the CSV.

    With ``need_labels=False`` (data meant only for prediction) the ``grade`` column may be
    missing or empty.
    """
    rows, columns = read_csv_rows(path)
    lower = {c.strip().lower(): c for c in columns}
    required = ("subject_id", "grade", *MODALITIES) if need_labels else ("subject_id", *MODALITIES)
    missing = [c for c in required if c not in lower]
    if missing:
        raise DataError(f"{path}: manifest lacks column(s) {', '.join(missing)}")
    by_id: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_id.setdefault(row[lower["subject_id"]].strip(), []).append(row)
    subjects = []
    for sid, id_rows in by_id.items():
        grade, problems = manifest_grade(id_rows, lower.get("grade"), path.name, need_labels)
        files, file_problems = manifest_files(id_rows[0], lower, path)
        subjects.append(Subject(sid, grade, files, None, problems + file_problems))
    if not subjects:
        raise DataError(f"{path}: manifest has no rows")
    return Cohort(path.parent, "manifest", sort_subjects(subjects), GRADE)


def manifest_grade(
    rows: list[dict[str, str]], column: str | None, where: str, need_labels: bool
) -> tuple[str | None, list[str]]:
    """The grade of a subject's manifest rows, and what is wrong with it."""
    values = {(row.get(column) or "").strip() for row in rows} if column else {""}
    if not need_labels:
        values.discard("")
        if not values:
            return None, []
    if len(values) > 1:
        return None, [f"conflicting grades {sorted(values)} in {where}; keep one row"]
    (value,) = values
    grade = normalise_grade(value)
    if grade is None and need_labels:
        return None, [f"unknown grade {value!r} in {where}; use HGG or LGG"]
    return grade, []


def manifest_files(
    row: dict[str, str], lower: dict[str, str], path: Path
) -> tuple[dict[str, Path], list[str]]:
    """Each role's file of a manifest row (relative to the CSV), and the missing ones."""
    files, problems = {}, []
    for role in (*MODALITIES, SEG):
        value = (row.get(lower.get(role, ""), "") or "").strip()
        if value:
            file = (path.parent / value).resolve()
            files[role] = file
            if not file.is_file():
                problems.append(f"{role}: {value} not found (paths are relative to the CSV)")
        elif role != SEG:
            problems.append(f"{role}: no path given in {path.name}")
    return files, problems


MISSING = {"", "na", "n/a", "nan", "none", "null", "unknown", "not available", "-", "?"}
"""Cells that say "no value" rather than name a class (case-insensitive; TCGA's bracketed
``[Not Available]``, ``[Unknown]``, ``[Not Evaluated]`` too)."""


def is_missing(value: str) -> bool:
    """Whether a label cell means "no value" (see :data:`MISSING`)."""
    v = value.strip().lower()
    return v in MISSING or (v.startswith("[") and v.endswith("]") and v[1:-1] in MISSING | {
        "not applicable", "not evaluated", "not reported", "discrepancy"
    })  # fmt: skip


def read_target_column(
    path: Path | None, subject_ids: list[str], column: str
) -> tuple[dict[str, str], dict[str, list[str]], list[str], str]:
    """Each subject's value of ``column`` in a label CSV (``prepare --target COLUMN``).

    The id column is found as in :func:`read_label_csv`. A subject without a value (an empty
    cell, a cell such as ``NA`` or ``[Not Available]`` (:func:`is_missing`), or no row) is left
    out, and a note counts them: it is not a problem, the label is simply unknown for it.

    Returns:
        (values, problems, notes, header): value per subject that has one, conflicting values
        per subject, notes, and the column's name as the CSV spells it.
    """
    if path is None or not Path(path).is_file():
        raise DataError(
            f"{path or 'name_mapping.csv'}: label CSV not found; --target needs one (--labels)"
        )
    rows, columns = read_csv_rows(path)
    found = next((c for c in columns if c.strip().lower() == column.strip().lower()), None)
    if found is None:
        raise DataError(f"{path}: no column {column!r}; its columns are {', '.join(columns)}")
    wanted = set(subject_ids)
    every = values_by_id(rows, columns, found, wanted)
    known = {sid: {x for x in v if not is_missing(x)} for sid, v in every.items() if sid in wanted}
    seen = {sid: v for sid, v in known.items() if v}
    values = {sid: next(iter(v)) for sid, v in seen.items() if len(v) == 1}
    problems = {
        sid: [f"conflicting values {sorted(v)} of {column} in {Path(path).name}; keep one row"]
        for sid, v in seen.items()
        if len(v) > 1
    }
    missing = [sid for sid in subject_ids if sid not in seen]
    notes = []
    if missing:
        notes.append(
            f"{len(missing)} subjects have no {column} value in {Path(path).name} (empty, or "
            f"NA, unknown and the like) and are left out (e.g. {', '.join(missing[:3])})"
        )
    if not seen:
        raise DataError(
            f"{path}: no subject here has a {column} value (no id column matches the "
            f"{len(subject_ids)} subject folders); check the CSV's subject ids"
        )
    return values, problems, notes, found.strip()
