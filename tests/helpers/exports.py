"""A SYNTHETIC raw DICOM export, as a scanner's PACS would send it."""

from __future__ import annotations

from pathlib import Path


def synthetic_export(root: Path, tilt: float = 0.0) -> Path:
    """A SYNTHETIC head with its skull, turned and resampled per sequence, as a DICOM export
    (a series per sequence, one file per slice) under ``root/dicom``; with ``tilt`` (radians)
    each series is oblique (:func:`~gliograde.scans.simulate.raw_like`)."""
    from gliograde.io.synth import synth_cohort
    from gliograde.scans.simulate import raw_like, write_raw_export

    synth_cohort(root / "heads", subjects=2, seed=5, skull=True, quiet=True)
    head = min(p for p in (root / "heads").iterdir() if p.is_dir())
    return write_raw_export(raw_like(head, root / "raw", tilt), root / "dicom")


def restudied(export: Path, out: Path, tag: str) -> Path:
    """A copy of ``export`` as another study of another patient (new UIDs, same images)."""
    import pydicom
    from pydicom.uid import generate_uid

    out.mkdir(parents=True)
    for f in sorted(export.iterdir()):
        ds = pydicom.dcmread(f)
        for name in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            setattr(ds, name, generate_uid(entropy_srcs=[tag, str(getattr(ds, name))]))
        ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[tag, str(ds.FrameOfReferenceUID)])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientID = ds.PatientName = f"SYNTH-{tag}"
        ds.save_as(out / f.name)
    return out


def sample_export(subject: Path, out: Path) -> Path:
    """A real BraTS subject's four volumes written as they are (axial, 1 mm) as a DICOM export.
    Real anatomy, but not as a scanner exports it: BraTS volumes are already skull-stripped and
    on the atlas grid (``raw_like`` makes raw-like ones)."""
    from gliograde import MODALITIES
    from gliograde.scans.simulate import write_raw_export

    files = {role: subject / f"{subject.name}_{role}.nii.gz" for role in MODALITIES}
    return write_raw_export(files, out)


def dicom_route(export: Path, work: Path) -> dict:
    """The export's four sequences as the pipeline is given them: found and identified as
    ``preprocess`` finds them, converted by dcm2niix into ``work`` (role → NIfTI path)."""
    from gliograde.scans.inputs import converted, raw_subjects

    (subject,), errors, _ = raw_subjects([export])
    assert errors == {}
    return converted(subject, work)
