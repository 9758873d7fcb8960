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
