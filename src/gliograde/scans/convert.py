"""DICOM series → NIfTI with dcm2niix, the field's converter (its binary ships in its wheel):
orientation, spacing and vendor quirks (mosaics, multi-frame, scaling) as dcm2niix handles
them, which a reader of our own would have to relearn."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from gliograde.core.errors import DataError
from gliograde.scans.series import Series

DCM2NIIX_S = 600
"""A series dcm2niix has not converted in this time is given up (a hostile file can hang it)."""


def series_to_nifti(series: Series, out: Path, name: str) -> Path:
    """Convert one series into ``out/NAME.nii.gz`` and return its path.

    The series' headers are checked first, and the volume against them after
    (:mod:`gliograde.scans.geometry`).

    Raises:
        DataError: the headers do not describe one regular stack; dcm2niix fails, or makes no
            volume or more than one (echoes, phases); or its volume is not where the headers
            put the images.
    """
    import dcm2niix

    from gliograde.scans.geometry import check_converted, planes_of, stack_of

    stack = stack_of(series.label(), planes_of(series.files))
    out.mkdir(parents=True, exist_ok=True)
    # The work folder lives inside `out`, so the last step is a rename on one filesystem:
    # a spool or cache on its own disk (tmpfs, a mount) would refuse a rename from /tmp.
    with tempfile.TemporaryDirectory(prefix=".dcm2niix-", dir=out) as tmp:
        inputs, made = Path(tmp) / "in", Path(tmp) / "out"
        inputs.mkdir()
        made.mkdir()
        for i, path in enumerate(series.files):  # this series only, whatever else is there
            (inputs / f"{i:05d}.dcm").symlink_to(Path(path).resolve())
        cmd = [dcm2niix.bin, "-z", "y", "-b", "n", "-f", "vol", "-o", str(made), str(inputs)]
        try:
            result = subprocess.run(
                cmd, capture_output=True, text=True, errors="replace", timeout=DCM2NIIX_S
            )
        except subprocess.TimeoutExpired:
            raise DataError(
                f"{series.label()}: dcm2niix did not finish in {DCM2NIIX_S} s; convert it by "
                "hand or leave it out"
            ) from None
        volumes = sorted(made.glob("*.nii.gz"))
        if result.returncode != 0 or len(volumes) != 1:
            raise DataError(
                f"{series.label()}: dcm2niix made {len(volumes)} volumes, not 1 "
                f"(exit {result.returncode}: {said(result)}); convert it by hand or leave it out"
            )
        check_converted(series.label(), stack, volumes[0])
        target = out / f"{name}.nii.gz"
        volumes[0].replace(target)
    return target


def said(result: subprocess.CompletedProcess) -> str:
    """dcm2niix's own reason: its last ``Error`` line, else its last line."""
    lines = (result.stderr + "\n" + result.stdout).strip().splitlines() or ["no output"]
    errors = [line for line in lines if line.lower().startswith("error")]
    return (errors or lines)[-1].strip()[:200]
