"""Raw inputs → subjects with four identified sequences, and ``preprocess`` over all of them.

An input is a folder of NIfTI files (one subject; sequences named by their file names), a
folder of DICOM files in any order and nesting (one subject per patient and study), or a CSV
manifest of either (subjects named by the user, a series map per subject). A subject
that cannot be made is one line under ``errors``, and the others are written.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from gliograde.core.errors import DataError, UsageError
from gliograde.io.layouts import is_nifti
from gliograde.scans.series import Series, assign_roles


@dataclass
class RawSubject:
    """A subject's identified sequences: NIfTI files, or DICOM series still to convert; and,
    for the record, which series each role came from and how sure the identification was."""

    subject_id: str
    files: dict[str, Path] | None = None
    series: dict[str, Series] | None = None
    chosen: dict[str, dict] | None = None
    dicom_folder: Path | None = None  # the export the series were read from


def provenance(chosen: dict[str, Series], identities: dict) -> dict[str, dict]:
    """Role → the series used: its number, UID (or file), description and identification."""
    out = {}
    for role, s in chosen.items():
        identity = identities[s.key]
        out[role] = {"series": s.number, "uid": s.key, "description": s.description}
        out[role] |= {"confidence": identity.confidence, "why": identity.why}
    return out


def raw_subjects(
    inputs: list[Path], series_map: dict[str, str] | None = None
) -> tuple[list[RawSubject], dict[str, str], list[str]]:
    """Every subject the inputs hold, one line for each input or subject that cannot be, and
    notes (files that were not read). An input is a folder or a CSV manifest
    (:func:`manifest_subjects`)."""
    found = Found()
    for path in map(Path, inputs):
        if path.is_file() and path.suffix.lower() == ".csv":
            manifest_subjects(path, series_map, found)
        elif path.is_dir():
            folder_subjects(path, series_map, found)
        else:
            found.errors[str(path)] = "not a folder or a CSV; give DICOM or NIfTI folders"
    return found.subjects, found.errors, found.notes


@dataclass
class Found:
    """What the inputs gave so far: subjects, a line per subject not made, notes."""

    subjects: list[RawSubject] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, found: list[Series], series_map, dicom: Path | None = None) -> None:
        """Identify ``found``'s sequences: a subject named ``name``, or its line of problems.
        ``dicom``: the DICOM folder ``found``'s series were read from."""
        chosen, identities, problems = assign_roles(found, series_map)
        if problems:
            self.errors[name] = "; ".join(problems)
            return
        record = provenance(chosen, identities)
        if dicom:
            self.subjects.append(RawSubject(name, series=chosen, chosen=record, dicom_folder=dicom))
        else:
            files = {role: s.files[0] for role, s in chosen.items()}
            self.subjects.append(RawSubject(name, files=files, chosen=record))


def folder_subjects(folder: Path, series_map, found: Found, name: str | None = None) -> None:
    """A folder's subjects: its NIfTI files as one subject, or its DICOM studies, one each
    (``name``, from a manifest, names a folder's single subject)."""
    from gliograde.scans.dicom import scan_folder

    niftis = sorted(p for p in folder.iterdir() if is_nifti(p))
    if niftis:
        files = [Series(str(p), nifti_name(p), files=[p]) for p in niftis]
        found.add(name or folder.name, files, series_map)
        return
    studies, unreadable = scan_folder(folder)
    found.notes.extend(unreadable)
    if not studies:
        problem = f"no NIfTI and no DICOM image found ({len(unreadable)} files)"
        found.errors[name or folder.name] = problem
    elif name and len(studies) > 1:
        ids = ", ".join(s.subject_id for s in studies)
        found.errors[name] = f"{folder} holds {len(studies)} studies ({ids}); give one per row"
    else:
        for study in studies:
            found.add(name or study.subject_id, study.series, series_map, dicom=folder)


def nifti_name(path: Path) -> str:
    return path.name[: -len(".nii.gz")] if path.name.lower().endswith(".gz") else path.stem


def manifest_subjects(path: Path, series_map, found: Found) -> None:
    """A CSV manifest, one subject per row, paths relative to the CSV, columns ``subject_id``
    and either ``path`` (a DICOM or NIfTI folder; an optional ``series_map`` column, such as
    ``flair=7 t2=9``, for that subject alone) or ``flair,t1ce,t1,t2`` (NIfTI files, roles
    given)."""
    from gliograde import MODALITIES
    from gliograde.io.labels import read_csv_rows
    from gliograde.scans.dicom import safe

    rows, columns = read_csv_rows(path)
    lower = {c.strip().lower(): c for c in columns}
    if "subject_id" not in lower or not ("path" in lower or set(MODALITIES) <= set(lower)):
        raise DataError(
            f"{path}: a raw-scan manifest needs subject_id and either path or flair,t1ce,t1,t2"
        )
    for line, row in enumerate(rows, start=2):
        cells = {k: (row.get(c) or "").strip() for k, c in lower.items()}
        where = f"{path.name} line {line}"
        if not cells["subject_id"]:
            found.errors[where] = "no subject_id"
            continue
        name = safe(cells["subject_id"])
        if name in found.errors or any(s.subject_id == name for s in found.subjects):
            found.errors[f"{name} ({where})"] = "subject_id given twice"
        elif cells.get("path"):
            try:
                own = parse_series_map(cells.get("series_map", "").replace(";", " ").split())
            except UsageError as err:
                found.errors[name] = f"{where}: {err}"
                continue
            manifest_folder(path.parent / cells["path"], name, own or series_map, found)
        elif all(cells.get(r) for r in MODALITIES):
            manifest_files({r: path.parent / cells[r] for r in MODALITIES}, name, where, found)
        else:
            found.errors[name] = f"{where}: give a path, or the four files flair,t1ce,t1,t2"


def manifest_files(given: dict[str, Path], name: str, where: str, found: Found) -> None:
    """Four NIfTI files whose roles the manifest gives."""
    missing = [f"{r} ({p})" for r, p in given.items() if not is_nifti(p)]
    if missing:
        found.errors[name] = f"{where}: no NIfTI file for {', '.join(missing)}"
        return
    chosen = {r: {"file": str(p), "confidence": "given"} for r, p in given.items()}
    found.subjects.append(RawSubject(name, files=given, chosen=chosen))


def manifest_folder(folder: Path, name: str, series_map, found: Found) -> None:
    if not folder.is_dir():
        found.errors[name] = f"{folder}: no such folder"
    else:
        folder_subjects(folder, series_map, found, name)


def parse_series_map(items: list[str] | None) -> dict[str, str]:
    """``ROLE=SERIES`` items (``flair=7``) as a dict; one clear line for a malformed one."""
    from gliograde import MODALITIES

    out = {}
    for item in items or []:
        role, sep, value = item.partition("=")
        if not sep or role.lower() not in MODALITIES or not value:
            raise UsageError(
                f"--series-map {item}: write ROLE=SERIES, ROLE one of flair, t1ce, t1, t2"
            )
        out[role.lower()] = value
    return out


# What a library may raise on one subject's data (SimpleITK: RuntimeError; deepbet: an
# AssertionError when it finds no foreground; nibabel and dcm2niix: ValueError, OSError): that
# subject gets the message as its line, and the others are still made.
SUBJECT_FAILURES = (DataError, RuntimeError, AssertionError, ValueError, OSError)


def preprocess_inputs(
    inputs: list[Path], out: Path, series_map: dict[str, str] | None = None
) -> tuple[dict[str, dict], dict[str, str], list[str]]:
    """``gliograde preprocess``: each subject to ``out/SUBJECT`` in BraTS 2020 layout.

    Returns:
        (records, errors, notes): each written subject's ``preprocess.json`` content, a line
        for each subject not written, and a line for each file not read.
    """
    from gliograde.scans.pipeline import preprocess_volumes

    out = Path(out)
    subjects, errors, notes = raw_subjects(inputs, series_map)
    records = {}
    for subject in subjects:
        work = out / ".work" / subject.subject_id
        try:
            started = time.perf_counter()
            files = subject.files or converted(subject, work)
            seconds = {} if subject.files else {"dicom to nifti": time.perf_counter() - started}
            seconds = {k: round(v, 2) for k, v in seconds.items()}
            record = preprocess_volumes(
                files, out, subject.subject_id, subject.chosen, seconds, subject.dicom_folder
            )
            records[subject.subject_id] = record
        except SUBJECT_FAILURES as err:
            message = str(err) if isinstance(err, DataError) else f"{type(err).__name__}: {err}"
            errors[subject.subject_id] = " ".join(message.split())[:300]
        finally:
            shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(Path(out) / ".work", ignore_errors=True)
    return records, errors, notes


def converted(subject: RawSubject, work: Path) -> dict[str, Path]:
    """The subject's DICOM series as NIfTI files under ``work``."""
    from gliograde.scans.convert import series_to_nifti

    if subject.series is None:  # Found.add gives each subject its files or its series
        raise TypeError(f"{subject.subject_id}: neither NIfTI files nor DICOM series")
    return {role: series_to_nifti(s, work, role) for role, s in subject.series.items()}
