"""Raw-like scans made from a real BraTS subject: each sequence turned and moved (a patient
lying differently for each), resampled to its own anisotropic grid, as a hospital exports it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gliograde import MODALITIES

POSES = {  # role: (rotation about x, y, z in radians; shift in mm; voxel spacing in mm)
    "flair": ((0.05, -0.03, 0.08), (3.0, -4.0, 2.0), (0.9, 0.9, 4.0)),
    "t1ce": ((-0.04, 0.02, -0.06), (-2.0, 3.0, -3.0), (1.0, 1.0, 2.0)),
    "t1": ((0.03, 0.05, 0.04), (4.0, 2.0, 1.0), (1.0, 1.0, 3.0)),
    "t2": ((-0.06, -0.02, 0.1), (-3.0, -2.0, 4.0), (0.8, 0.8, 4.0)),
}


def raw_like(subject: Path, out: Path) -> dict[str, Path]:
    """Write ``out/raw_ROLE.nii.gz`` for each sequence of the BraTS ``subject`` folder."""
    import SimpleITK as sitk

    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for role in MODALITIES:
        image = sitk.ReadImage(str(next(subject.glob(f"*_{role}.nii.gz"))), sitk.sitkFloat32)
        angles, shift, spacing = POSES[role]
        centre = image.TransformContinuousIndexToPhysicalPoint(
            [(n - 1) / 2 for n in image.GetSize()]
        )
        pose = sitk.Euler3DTransform(centre, *angles, shift)
        extent = np.array(image.GetSize()) * np.array(image.GetSpacing())
        grid = sitk.Image([int(e / s) for e, s in zip(extent, spacing)], sitk.sitkFloat32)
        grid.SetSpacing(spacing)
        grid.SetOrigin(image.GetOrigin())
        grid.SetDirection(image.GetDirection())
        moved = sitk.Resample(image, grid, pose, sitk.sitkLinear, 0.0)
        written[role] = out / f"raw_{role}.nii.gz"
        sitk.WriteImage(sitk.Cast(sitk.Round(moved), sitk.sitkInt16), str(written[role]))
    return written
