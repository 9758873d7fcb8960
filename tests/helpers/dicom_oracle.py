"""An independent reading of a DICOM series for the fuzz: pydicom's pixels, sorted along the
slices' normal, with their rescale; what a converted volume must equal. Its thresholds are its
own (it does not import gliograde's), so that a shared mistake would show."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np


class WrongVolume(AssertionError):
    """A volume was made that is not what the files' headers describe."""


class NoStack(Exception):
    """The headers describe no regular stack: the only right answer is a refusal."""


def frames(files: list[Path]) -> list[tuple]:
    """(position, orientation, spacing, pixels) per image, straight from pydicom."""
    import pydicom

    out = []
    for f in files:
        ds = pydicom.dcmread(io.BytesIO(f.read_bytes()))  # reads never beyond the file
        pixels = np.asarray(ds.pixel_array, dtype=float)
        if "PerFrameFunctionalGroupsSequence" not in ds:
            pixels = pixels * float(ds.get("RescaleSlope", 1) or 1)
            pixels = pixels + float(ds.get("RescaleIntercept", 0) or 0)
            out.append(
                (ds.ImagePositionPatient, ds.ImageOrientationPatient, ds.PixelSpacing, pixels)
            )
            continue
        shared = ds.SharedFunctionalGroupsSequence[0]
        for i, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
            position = from_groups(item, shared, "PlanePositionSequence", "ImagePositionPatient")
            turn = from_groups(item, shared, "PlaneOrientationSequence", "ImageOrientationPatient")
            spacing = from_groups(item, shared, "PixelMeasuresSequence", "PixelSpacing")
            # an enhanced image's rescale: the frame's own group, the shared one, or none
            scale = ds
            for source in (item, shared):
                if "PixelValueTransformationSequence" in source:
                    scale = source.PixelValueTransformationSequence[0]
                    break
            slope = float(scale.get("RescaleSlope", 1) or 1)
            frame = pixels[i] * slope + float(scale.get("RescaleIntercept", 0) or 0)
            out.append((position, turn, spacing, frame))
    return out


def from_groups(item, shared, sequence: str, keyword: str):
    source = item if sequence in item else shared
    return getattr(source[sequence].value[0], keyword)


def expected_volume(files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """The volume (columns, rows, slices) and its RAS affine the headers describe.

    Raises:
        NoStack: the headers describe no regular stack of one orientation and size.
    """
    try:
        found = frames(files)
        pos = np.array([[float(v) for v in f[0]] for f in found])
        ori = np.array([[float(v) for v in f[1]] for f in found])
        spacing = np.array([[float(v) for v in f[2]] for f in found])
    except Exception as err:  # the oracle's own reading failed: no expected volume
        raise NoStack(f"{type(err).__name__}: {err}") from None
    if (
        len({p.shape for *_, p in found}) != 1
        or np.ptp(ori, axis=0).max() > 1e-3
        or np.ptp(spacing, axis=0).max() > 0
    ):
        raise NoStack("mixed orientation, spacing or size")
    row, col = ori[0, :3], ori[0, 3:]
    if (
        abs(np.linalg.norm(row) - 1) > 1e-3
        or abs(np.linalg.norm(col) - 1) > 1e-3
        or abs(row @ col) > 1e-3
    ):
        raise NoStack("orientation not orthonormal")
    normal = np.cross(row, col)
    order = np.argsort(pos @ normal)
    heights = (pos @ normal)[order]
    steps = np.diff(heights)
    # A stack is one where no slice lies more than 1 mm from where an even stack puts it: a
    # volume from headers within that is judged on its voxels; beyond it, no volume is right.
    even = heights[0] + np.arange(len(heights)) * (steps.mean() if len(steps) else 0.0)
    if len(found) < 2 or steps.min() < 0.1 or np.abs(heights - even).max() > 1.0:
        raise NoStack("not a regular stack")
    in_plane = pos[order] - np.outer(heights, normal)
    if np.abs(in_plane - in_plane[0]).max() > 1.0:
        raise NoStack("tilted")
    data = np.stack([found[k][3].T for k in order], axis=2)  # (columns, rows, slices)
    lps = np.eye(4)
    lps[:3, 0] = row * spacing[0, 1]
    lps[:3, 1] = col * spacing[0, 0]
    lps[:3, 2] = normal * steps.mean()
    lps[:3, 3] = pos[order[0]]
    return data, np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def check_against_headers(nifti: Path, files: list[Path]) -> None:
    """Raise :class:`WrongVolume` unless ``nifti`` is the volume the headers describe."""
    import nibabel as nib

    try:
        want, affine = expected_volume(files)
    except NoStack as err:
        raise WrongVolume(
            f"{nifti.name}: a volume from headers that describe none ({err})"
        ) from None
    img = nib.load(nifti)
    got = np.asanyarray(img.dataobj).astype(float)
    turn = nib.orientations.ornt_transform(
        nib.io_orientation(img.affine), nib.io_orientation(affine)
    )
    got = nib.orientations.apply_orientation(got, turn)
    moved = img.affine @ nib.orientations.inv_ornt_aff(turn, img.shape)
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-5, atol=0.5):
        raise WrongVolume(f"{nifti.name}: voxels differ from the headers' images")
    if not np.allclose(moved, affine, atol=0.05):
        raise WrongVolume(
            f"{nifti.name}: affine differs from the headers' ({np.abs(moved - affine).max():.3f})"
        )
