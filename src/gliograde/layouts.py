"""Find subjects, their files and their grades in the folder layouts users have.

Three layouts are recognised, in this order:

* a CSV manifest (``subject_id,grade,flair,t1,t1ce,t2[,seg]``, paths relative to the CSV);
* BraTS 2018/2019: the grade is the parent folder, ``DATA/HGG/<id>/`` and ``DATA/LGG/<id>/``;
* BraTS 2020 (and anything shaped like it): one folder per subject, grades from a label CSV
  (``name_mapping.csv`` in DATA, or ``--labels``).

Nothing here reads image data: problems found while listing (missing files, unknown grades)
are attached to the subject so that ``check`` can report every one of them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from gliograde import MODALITIES
from gliograde.errors import DataError, UsageError

NIFTI_SUFFIXES = (".nii.gz", ".nii")
SEG = "seg"

# Last token of a file name (after the subject id) → role. BraTS 2023 names are accepted too.
_ROLE_BY_TOKEN = {
    "flair": "flair",
    "t2f": "flair",
    "t1ce": "t1ce",
    "t1c": "t1ce",
    "t1gd": "t1ce",
    "t1": "t1",
    "t1n": "t1",
    "t2": "t2",
    "t2w": "t2",
    "seg": SEG,
}
_GRADE_NAMES = {"HGG": "HGG", "LGG": "LGG"}


@dataclass
class Subject:
    """One patient: where its files are and what its grade is.

    Attributes:
        subject_id: the id the layout gives (the folder name for BraTS layouts).
        grade: "HGG", "LGG" or None when unknown.
        files: role ("flair", "t1ce", "t1", "t2", "seg") → path. "seg" may be absent.
        problems: what is wrong with the subject, one line each, found without reading images.
        warnings: things worth telling that do not make the subject unusable.
    """

    subject_id: str
    grade: str | None
    files: dict[str, Path]
    folder: Path | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def label(self) -> int:
        """0 for LGG, 1 for HGG."""
        if self.grade not in _GRADE_NAMES:
            raise DataError(f"{self.subject_id}: grade is unknown; give it in the label CSV")
        return 1 if self.grade == "HGG" else 0


@dataclass
class Cohort:
    """Subjects found in a data folder, and how they were found."""

    root: Path
    layout: str
    subjects: list[Subject]
    notes: list[str] = field(default_factory=list)


def is_nifti(path: Path) -> bool:
    """True when the file name ends in .nii or .nii.gz (any case)."""
    name = path.name.lower()
    return path.is_file() and name.endswith(NIFTI_SUFFIXES)


def strip_nifti_suffix(name: str) -> str:
    """``BraTS20_Training_001_flair.nii.gz`` → ``BraTS20_Training_001_flair``."""
    lower = name.lower()
    for suffix in NIFTI_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def role_of(path: Path) -> str | None:
    """The modality (or "seg") a file holds, from the last ``_``/``-`` token of its name."""
    stem = strip_nifti_suffix(path.name).lower().replace("-", "_")
    return _ROLE_BY_TOKEN.get(stem.rsplit("_", 1)[-1])


def find_subject_files(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """Map each role to its file in a subject folder.

    A segmentation whose name does not follow the convention (BraTS20_Training_355 ships
    ``W39_1998.09.19_Segm.nii``) is found as the one remaining NIfTI with "seg" in its name.

    Returns:
        (files, problems): problems names missing or ambiguous files.
    """
    niftis = sorted(p for p in folder.iterdir() if is_nifti(p))
    by_role: dict[str, list[Path]] = {}
    unassigned = []
    for path in niftis:
        role = role_of(path)
        if role is None:
            unassigned.append(path)
        else:
            by_role.setdefault(role, []).append(path)
    if SEG not in by_role:
        seg_like = [p for p in unassigned if "seg" in p.name.lower()]
        if seg_like:
            by_role[SEG] = seg_like
    problems = []
    files = {}
    for role in (*MODALITIES, SEG):
        paths = by_role.get(role, [])
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            problems.append(f"{role}: several files could be it ({names}); keep one")
        elif paths:
            files[role] = paths[0]
        elif role != SEG:
            problems.append(f"{role}: file missing (expected a name ending in _{role}.nii.gz)")
    return files, problems


def normalise_grade(value: str) -> str | None:
    """ "hgg" → "HGG"; None for anything that is not a grade we know."""
    return _GRADE_NAMES.get(value.strip().upper())


def discover(data: Path, labels: Path | None = None) -> Cohort:
    """Find the subjects under ``data`` in whichever layout it uses.

    Args:
        data: a data folder, or a CSV manifest file.
        labels: a label CSV for the BraTS 2020 layout (default: ``data/name_mapping.csv``).

    Raises:
        DataError: the path does not exist or holds no subject in any known layout.
    """
    data = Path(data)
    if not data.exists():
        raise UsageError(f"{data}: no such file or folder; give the folder holding the subjects")
    if data.is_file():
        if data.suffix.lower() != ".csv":
            raise DataError(f"{data}: expected a folder of subjects or a CSV manifest")
        return read_manifest(data)
    if (data / "HGG").is_dir() or (data / "LGG").is_dir():
        return discover_grade_folders(data)
    return discover_subject_folders(data, labels)


def discover_grade_folders(data: Path) -> Cohort:
    """BraTS 2018/2019: ``data/HGG/<id>/`` and ``data/LGG/<id>/``."""
    subjects = []
    for grade in ("HGG", "LGG"):
        parent = data / grade
        if parent.is_dir():
            for folder in subject_folders(parent):
                files, problems = find_subject_files(folder)
                subjects.append(Subject(folder.name, grade, files, folder, problems))
    if not subjects:
        raise DataError(f"{data}: HGG/ and LGG/ hold no subject folder with NIfTI files")
    return Cohort(data, "brats2019", sort_subjects(subjects))


def subject_folders(parent: Path) -> list[Path]:
    """Folders directly under ``parent`` that hold at least one NIfTI file; others are ignored."""
    return sorted(
        p for p in parent.iterdir() if p.is_dir() and any(is_nifti(f) for f in p.iterdir())
    )


def sort_subjects(subjects: list[Subject]) -> list[Subject]:
    return sorted(subjects, key=lambda s: s.subject_id)


def discover_subject_folders(data: Path, labels: Path | None) -> Cohort:
    """BraTS 2020: one folder per subject, grades from a label CSV."""
    folders = subject_folders(data)
    if not folders:
        raise DataError(
            f"{data}: no subject folder with NIfTI files found; expected DATA/<subject>/"
            "<subject>_flair.nii.gz (BraTS 2020), DATA/HGG|LGG/<subject>/ (BraTS 2019) or a CSV"
        )
    labels = labels or default_label_csv(data)
    grades, label_problems, label_notes = read_label_csv(labels, [f.name for f in folders])
    subjects = []
    for folder in folders:
        files, problems = find_subject_files(folder)
        grade = grades.get(folder.name)
        problems += label_problems.get(folder.name, [])
        if grade is None and folder.name not in label_problems:
            where = labels.name if labels else "a label CSV (name_mapping.csv or --labels)"
            problems.append(f"grade unknown: no row for this subject in {where}")
        subjects.append(Subject(folder.name, grade, files, folder, problems))
    return Cohort(data, "brats2020", sort_subjects(subjects), label_notes)


def default_label_csv(data: Path) -> Path | None:
    path = data / "name_mapping.csv"
    return path if path.is_file() else None


def read_label_csv(
    path: Path | None, subject_ids: list[str]
) -> tuple[dict[str, str], dict[str, list[str]], list[str]]:
    """Read grades for ``subject_ids`` from a label CSV.

    The CSV needs a ``Grade`` column; the id column is the one whose values match the most
    subject folders (``BraTS_2020_subject_ID`` for name_mapping.csv, or any other).

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
    if grade_col is None:
        raise DataError(f"{path}: no 'Grade' column; the label CSV needs one (HGG or LGG)")
    wanted = set(subject_ids)
    id_col = max(
        (c for c in columns if c != grade_col),
        key=lambda c: sum(r.get(c, "").strip() in wanted for r in rows),
        default=None,
    )
    seen: dict[str, set[str]] = {}
    for row in rows:
        sid = (row.get(id_col) or "").strip()
        if sid:
            seen.setdefault(sid, set()).add((row.get(grade_col) or "").strip())
    grades, problems = {}, {}
    for sid in subject_ids:
        values = seen.get(sid)
        if not values:
            continue
        known = {normalise_grade(v) for v in values}
        if len(values) > 1:
            problems[sid] = [f"conflicting grades {sorted(values)} in {path.name}; keep one row"]
        elif None in known:
            (value,) = values
            problems[sid] = [f"unknown grade {value!r} in {path.name}; use HGG or LGG"]
        else:
            grades[sid] = known.pop()
    unmatched = len(set(seen) - wanted)
    notes = []
    if unmatched:
        notes.append(
            f"{unmatched} rows of {path.name} have no subject folder here (normal for a subset)"
        )
    return grades, problems, notes


def read_csv_rows(path: Path) -> tuple[list[dict[str, str]], list[str]]:
    """Rows of a CSV as dicts, with a clear error for an unreadable file."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            return rows, list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path}: cannot read CSV ({err})") from err


def read_manifest(path: Path) -> Cohort:
    """A CSV manifest: ``subject_id,grade,flair,t1,t1ce,t2[,seg]``, paths relative to the CSV."""
    rows, columns = read_csv_rows(path)
    lower = {c.strip().lower(): c for c in columns}
    missing = [c for c in ("subject_id", "grade", *MODALITIES) if c not in lower]
    if missing:
        raise DataError(f"{path}: manifest lacks column(s) {', '.join(missing)}")
    by_id: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_id.setdefault(row[lower["subject_id"]].strip(), []).append(row)
    subjects = []
    for sid, id_rows in by_id.items():
        row = id_rows[0]
        problems = []
        grades = {row[lower["grade"]].strip() for row in id_rows}
        grade = normalise_grade(next(iter(grades))) if len(grades) == 1 else None
        if len(grades) > 1:
            problems.append(f"conflicting grades {sorted(grades)} in {path.name}; keep one row")
        elif grade is None:
            problems.append(f"unknown grade {next(iter(grades))!r} in {path.name}; use HGG or LGG")
        files = {}
        for role in (*MODALITIES, SEG):
            value = (row.get(lower.get(role, ""), "") or "").strip()
            if value:
                file = (path.parent / value).resolve()
                files[role] = file
                if not file.is_file():
                    problems.append(f"{role}: {value} not found (paths are relative to the CSV)")
            elif role != SEG:
                problems.append(f"{role}: no path given in {path.name}")
        subjects.append(Subject(sid, grade, files, None, problems))
    if not subjects:
        raise DataError(f"{path}: manifest has no rows")
    return Cohort(path.parent, "manifest", sort_subjects(subjects))


def subject_from_folder(folder: Path) -> Subject:
    """One subject folder with no grade (for prediction on new patients)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder; give one folder per subject")
    files, problems = find_subject_files(folder)
    return Subject(folder.name, None, files, folder, problems)
