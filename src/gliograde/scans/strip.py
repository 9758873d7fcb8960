"""Skull stripping with deepbet (MIT; its two TorchScript models ship inside its wheel, so
nothing is downloaded), on the CPU.

On the four real BraTS 2020 subjects of this project's sample, deepbet's mask of T1 and FLAIR
matched BraTS's brain with Dice 0.97–0.98 and kept 99.7–100 % of each tumour inside (measured
while choosing it). Those volumes were already skull-stripped: how it does on heads with their
skull was not measured here (no raw head scan is in the sample)."""

from __future__ import annotations

import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def to_nifti(image):
    """A SimpleITK image as a nibabel image (same voxels, RAS affine)."""
    import nibabel as nib

    from gliograde.scans.register import as_array

    direction = np.array(image.GetDirection()).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = LPS_TO_RAS @ direction @ np.diag(image.GetSpacing())
    affine[:3, 3] = LPS_TO_RAS @ np.array(image.GetOrigin())
    return nib.Nifti1Image(as_array(image).astype(np.float32), affine)


def brain_mask(image):
    """deepbet's brain mask of a T1-weighted ``image`` (uint8 SimpleITK image, same grid)."""
    import SimpleITK as sitk
    from deepbet.bet import BrainExtraction

    _, mask, _ = BrainExtraction(no_gpu=True).run(to_nifti(image))
    out = sitk.GetImageFromArray(np.asanyarray(mask.dataobj).astype(np.uint8).T)
    out.CopyInformation(image)
    return out
