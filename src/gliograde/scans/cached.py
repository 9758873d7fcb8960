"""Raw scans given to ``predict``: DICOM folders, and NIfTI folders not on a BraTS-like grid,
preprocessed once into a cache and graded from there; a changed export is preprocessed again.
The cache folder is an argument (``predict``'s command line takes it from ``GLIOGRADE_CACHE``,
the node uses its spool's), by default ``~/.cache/gliograde``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RawInputs:
    """Raw inputs among predict's inputs, preprocessed: where each subject's QC is, the DICOM
    folder and series each DICOM subject came from, and the subjects that could not be made."""

    qc: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    sources: dict[str, tuple[Path, set[str]]] = field(default_factory=dict)

    def about(self, subject_id: str) -> dict:
        if subject_id not in self.qc:
            return {}
        return {"preprocessed": True, "qc": self.qc[subject_id]}


def default_cache() -> Path:
    """The cache folder when none is given: ``~/.cache/gliograde``."""
    return Path.home() / ".cache" / "gliograde"


def cache_root(cache: Path | None = None) -> Path:
    """Where raw inputs are preprocessed to: ``CACHE/preprocessed`` (``cache`` None: the
    :func:`default_cache`)."""
    return Path(cache if cache is not None else default_cache()) / "preprocessed"


def is_dicom_folder(path: Path, look_at: int = 500) -> bool:
    """Whether a folder holds DICOM files: a ``DICOMDIR`` (a CD's index), or the ``DICM`` mark
    after the 128-byte preamble in one of its first ``look_at`` files (in name order; files
    that cannot be opened are passed over, the reader names them later)."""
    if not path.is_dir():
        return False
    files = sorted(p for p in path.rglob("*") if p.is_file())
    if any(f.name.upper() == "DICOMDIR" for f in files):
        return True
    for f in files[:look_at]:
        try:
            with open(f, "rb") as handle:
                if handle.read(132)[128:] == b"DICM":
                    return True
        except OSError:
            continue
    return False


def preprocess_raw_inputs(
    inputs: list[Path], cache: Path | None = None
) -> tuple[list[Path], RawInputs]:
    """Raw inputs (DICOM folders, :func:`is_raw_nifti_folder`) preprocessed as ``gliograde
    preprocess`` does, into their :func:`cache_folder` under ``cache`` (reused while the files
    are unchanged), and replaced by their BraTS-like subject folders; other inputs as they are.

    Args:
        inputs: ``predict``'s inputs, in order.
        cache: the cache folder (None: :func:`default_cache`).

    Returns:
        (the inputs, raw ones replaced by their subjects' folders; what became of the raw ones).
    """
    kept, raw = [], RawInputs()
    for path in map(Path, inputs):
        dicom = is_dicom_folder(path)
        if not (dicom or is_raw_nifti_folder(path)):
            kept.append(path)
            continue
        out = cache_folder(path, cache)
        records, errors = preprocessed(path, out)
        hint = "`gliograde preprocess FOLDER --out DIR --series-map`, then predict DIR:"
        raw.errors |= {k: v.replace("--series-map", hint, 1) for k, v in errors.items()}
        for subject, record in records.items():
            kept.append(out / subject)
            raw.qc[subject] = str(out / subject / "qc.png")
            if dicom:
                raw.sources[subject] = (path, {s["uid"] for s in record["series"].values()})
    return kept, raw


def is_raw_nifti_folder(path: Path) -> bool:
    """Whether a folder holds raw NIfTI scans: four or more NIfTI files, in more than one grid,
    not named as a BraTS subject's four (``…_flair``, ``…_t1ce``, ``…_t1``, ``…_t2``), such as
    a converter's ``3_AX_FLAIR.nii.gz``. Any other folder is read as a subject, with its grid
    checked and the run's guard applied (their messages point to ``gliograde preprocess``)."""
    import nibabel as nib
    import numpy as np
    from nibabel.filebasedimages import ImageFileError
    from nibabel.spatialimages import SpatialHeader

    from gliograde import MODALITIES
    from gliograde.io.layouts import find_subject_files, is_nifti

    if not path.is_dir():
        return False
    niftis = [p for p in path.iterdir() if is_nifti(p)]
    files, _ = find_subject_files(path)
    if len(niftis) < 4 or all(role in files for role in MODALITIES):
        return False
    try:
        headers = [nib.load(p).header for p in niftis]
    except (OSError, ValueError, ImageFileError):
        return False  # read as a subject folder, whose reader names what is wrong
    spatial = [h for h in headers if isinstance(h, SpatialHeader)]
    if len(spatial) != len(headers):  # NIfTI's headers always are
        return False
    grids = {(h.get_data_shape()[:3], np.round(h.get_best_affine(), 3).tobytes()) for h in spatial}
    return len(grids) > 1


def cache_folder(path: Path, cache: Path | None = None) -> Path:
    """Where a raw folder is preprocessed to: named by its path, its files' names, sizes and
    modification times, and the versions of gliograde and the scan libraries, so that a changed
    export, or an upgrade, preprocesses again."""
    import hashlib

    from gliograde.core.files import package_versions
    from gliograde.scans.pipeline import SCAN_PACKAGES

    digest = hashlib.sha256(str(path.resolve()).encode())
    digest.update(json.dumps(package_versions(("gliograde", *SCAN_PACKAGES))).encode())
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = f.stat()
        digest.update(f"{f.relative_to(path)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return cache_root(cache) / digest.hexdigest()[:16]


def preprocessed(path: Path, out: Path) -> tuple[dict, dict]:
    """``preprocess_inputs`` of one raw folder into the cache entry ``out``, or its earlier
    result there.

    Processes share the cache safely: one preprocesses an entry at a time (a lock per entry;
    the others wait, then use what it published, errors included); the entry is made in a
    temporary folder beside it and published by one rename, ``done.json`` inside, so no process
    sees half an entry, and a crash leaves only a temporary folder, removed by the next process
    that makes the entry. An entry whose subjects partly failed is made again by a later call
    (the failure may have been the disk); the new one replaces it by rename."""
    import time

    from gliograde.core.lock import waiting_lock

    earlier = finished(out)
    if earlier is not None:
        return earlier
    asked = time.time()
    with waiting_lock(out.parent / f".{out.name}.lock", f"preprocessing {path} into {out}"):
        earlier = finished(out, since=asked)  # published while this process waited
        if earlier is not None:
            return earlier
        return publish(path, out)


def finished(out: Path, since: float | None = None) -> tuple[dict, dict] | None:
    """A published entry's (records, errors): when complete and without error, or, with
    ``since``, any entry published after that time; else None."""
    done = out / "done.json"
    try:
        earlier = json.loads(done.read_text())
        fresh = since is not None and done.stat().st_mtime >= since
    except (FileNotFoundError, json.JSONDecodeError):  # none yet, or replaced as we read
        return None
    if (earlier["errors"] or not earlier["records"]) and not fresh:
        return None
    if not all((out / s / "preprocess.json").is_file() for s in earlier["records"]):
        return None
    return earlier["records"], earlier["errors"]


def publish(path: Path, out: Path) -> tuple[dict, dict]:
    """Preprocess ``path`` into a temporary folder beside ``out``, then rename it to ``out``
    (the entry's lock held); an earlier entry is renamed away first and then removed."""
    import os
    import shutil

    from gliograde.core.files import fsync_dir, write_json
    from gliograde.scans.inputs import preprocess_inputs

    for stale in out.parent.glob(f".{out.name}.tmp-*"):  # left by a crash
        shutil.rmtree(stale, ignore_errors=True)
    work = out.parent / f".{out.name}.tmp-{os.getpid()}"
    old = out.parent / f".{out.name}.tmp-{os.getpid()}-old"
    try:
        work.mkdir(parents=True)
        records, errors, _ = preprocess_inputs([path], work)
        write_json(work / "done.json", {"records": records, "errors": errors})
        if out.exists():
            out.rename(old)
        work.rename(out)
        fsync_dir(out.parent)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return records, errors


def recorded_dicom_source(folder: Path | None) -> tuple[Path, set[str]] | None:
    """The DICOM export and series a ``gliograde preprocess`` output folder was made from, as
    its ``preprocess.json`` records them, while that export is still there (so that ``predict
    --dicom-sr`` on a preprocessed folder refers to the images, as from the export itself)."""
    record = folder / "preprocess.json" if folder is not None else None
    if record is None or not record.is_file():
        return None
    try:
        data = json.loads(record.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # not ours to judge: the subject is graded from its volumes either way
    export = data.get("dicom_folder") if isinstance(data, dict) else None
    series = data.get("series") if isinstance(data, dict) else None
    if not isinstance(export, str) or not isinstance(series, dict) or not Path(export).is_dir():
        return None
    uids = {s["uid"] for s in series.values() if isinstance(s, dict) and "uid" in s}
    return (Path(export), uids) if len(uids) == len(series) else None
