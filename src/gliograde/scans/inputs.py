"""Raw inputs → subjects with four identified sequences, and ``preprocess`` over all of them.

An input is a folder of NIfTI files (one subject; sequences named by their file names) or a
folder of DICOM files in any order and nesting (one subject per patient and study). A subject
that cannot be made is one line under ``errors``, and the others are written.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from gliograde.core.errors import DataError, UsageError
from gliograde.scans.series import Series, assign_roles

NIFTI = (".nii", ".nii.gz")


@dataclass
class RawSubject:
    """A subject's identified sequences: NIfTI files, or DICOM series still to convert; and,
    for the record, which series each role came from and how sure the identification was."""

    subject_id: str
    files: dict[str, Path] | None = None
    series: dict[str, Series] | None = None
    chosen: dict[str, dict] | None = None


def provenance(chosen: dict[str, Series], identities: dict) -> dict[str, dict]:
    """Role → the series used: its number, UID (or file), description and identification."""
    out = {}
    for role, s in chosen.items():
        identity = identities[s.key]
        out[role] = {"series": s.number, "uid": s.key, "description": s.description}
        out[role] |= {"confidence": identity.confidence, "why": identity.why}
    return out


def is_nifti(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(NIFTI)


def raw_subjects(
    inputs: list[Path], series_map: dict[str, str] | None = None
) -> tuple[list[RawSubject], dict[str, str], list[str]]:
    """Every subject the inputs hold, one line for each input or subject that cannot be, and
    notes (files that were not read)."""
    from gliograde.scans.dicom import scan_folder

    subjects, errors, notes = [], {}, []
    for folder in map(Path, inputs):
        if not folder.is_dir():
            errors[str(folder)] = "not a folder; give a folder of DICOM or NIfTI files"
            continue
        niftis = sorted(p for p in folder.iterdir() if is_nifti(p))
        if niftis:
            names = [
                p.name[: -len(".nii.gz")] if p.name.endswith(".gz") else p.stem for p in niftis
            ]
            found = [Series(str(p), n, files=[p]) for p, n in zip(niftis, names)]
            chosen, identities, problems = assign_roles(found, series_map)
            if problems:
                errors[folder.name] = "; ".join(problems)
            else:
                files = {role: s.files[0] for role, s in chosen.items()}
                record = provenance(chosen, identities)
                subjects.append(RawSubject(folder.name, files=files, chosen=record))
            continue
        studies, unreadable = scan_folder(folder)
        notes.extend(unreadable)
        for study in studies:
            chosen, identities, problems = assign_roles(study.series, series_map)
            if problems:
                errors[study.subject_id] = "; ".join(problems)
            else:
                record = provenance(chosen, identities)
                subjects.append(RawSubject(study.subject_id, series=chosen, chosen=record))
        if not studies:
            errors[folder.name] = f"no NIfTI and no DICOM image found ({len(unreadable)} files)"
    return subjects, errors, notes


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

    subjects, errors, notes = raw_subjects(inputs, series_map)
    records = {}
    for subject in subjects:
        work = Path(out) / ".work" / subject.subject_id
        try:
            files = subject.files or converted(subject, work)
            record = preprocess_volumes(files, Path(out), subject.subject_id, subject.chosen)
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

    return {role: series_to_nifti(s, work, role) for role, s in subject.series.items()}
