"""Where a preprocessed subject lies in its original scan: the rigid atlas transform that
``preprocess`` saves (``atlas.tfm``, with both grids in ``preprocess.json``), and a volume on
the preprocessed grid sent back onto the original T1ce's grid through it.

The preprocessed grid's voxel (i, j, k) is voxel (i, j, k) of the written NIfTI files; its
physical frame is the template's. The transform maps those points onto the T1ce's (after the
other sequences were registered to T1ce, which is why T1ce's grid is the one a map returns to).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

TRANSFORM = "atlas.tfm"
RECORD_KEY = "atlas"


def geometry(image) -> dict:
    """A SimpleITK image's grid: size, origin, spacing and direction (LPS, mm)."""
    return {
        "size": [int(n) for n in image.GetSize()],
        "origin": [float(v) for v in image.GetOrigin()],
        "spacing": [float(v) for v in image.GetSpacing()],
        "direction": [float(v) for v in image.GetDirection()],
    }


def empty_image(grid: dict):
    """A float32 SimpleITK image on ``grid`` (as :func:`geometry` gives it)."""
    import SimpleITK as sitk

    image = sitk.Image(grid["size"], sitk.sitkFloat32)
    image.SetOrigin(grid["origin"])
    image.SetSpacing(grid["spacing"])
    image.SetDirection(grid["direction"])
    return image


def save_atlas_transform(folder: Path, transform, grid, t1ce) -> dict:
    """Write ``folder/atlas.tfm``; returns what ``preprocess.json`` records of it."""
    import SimpleITK as sitk

    sitk.WriteTransform(transform, str(Path(folder) / TRANSFORM))
    return {"transform": TRANSFORM, "grid": geometry(grid), "t1ce_grid": geometry(t1ce)}


def original_grid_missing(folder: Path) -> str | None:
    """Why a volume of the subject in ``folder`` cannot go back to its original T1ce grid (None
    when it can): not preprocessed by gliograde, or before the transform was kept."""
    record = Path(folder) / "preprocess.json"
    if not record.is_file():
        return "not made by preprocess (its grid is its own)"
    if RECORD_KEY not in json.loads(record.read_text()) or not (folder / TRANSFORM).is_file():
        return (
            f"{folder.name} was preprocessed before gliograde kept the atlas transform; "
            "preprocess it again to have the map in the original T1ce's grid"
        )
    return None


def to_original_t1ce(volume: np.ndarray, folder: Path, out: Path) -> Path:
    """``volume`` (x, y, z on the preprocessed grid) resampled onto the original T1ce's grid
    (linear), written as ``out`` (NIfTI, float32, with that scan's own orientation)."""
    import SimpleITK as sitk

    record = json.loads((Path(folder) / "preprocess.json").read_text())[RECORD_KEY]
    back = onto_grid(volume, folder, record["t1ce_grid"])
    sitk.WriteImage(back, str(out), useCompression=True)
    return Path(out)


def onto_grid(volume: np.ndarray, folder: Path, grid: dict):
    """``volume`` (x, y, z on the preprocessed grid of the subject ``preprocess`` wrote in
    ``folder``) resampled (linear, 0 outside) onto ``grid``, a grid in the original T1ce's
    physical frame (:func:`geometry`'s form: the T1ce's own, or a DICOM series' of the same
    Frame of Reference); a float32 SimpleITK image."""
    import SimpleITK as sitk

    record = json.loads((Path(folder) / "preprocess.json").read_text())[RECORD_KEY]
    moving = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(volume, np.float32).T))
    moving.CopyInformation(empty_image(record["grid"]))
    to_atlas = sitk.ReadTransform(str(Path(folder) / record["transform"]))
    # Resample pulls each output point from the input: it needs T1ce → atlas, the inverse.
    return sitk.Resample(moving, empty_image(grid), to_atlas.GetInverse(), sitk.sitkLinear, 0.0)


def into_preprocessed(image, folder: Path) -> np.ndarray:
    """The inverse of :func:`onto_grid`: a SimpleITK ``image`` in the original T1ce's frame
    resampled (linear) onto the preprocessed grid; an array (x, y, z) like its NIfTI files'."""
    import SimpleITK as sitk

    record = json.loads((Path(folder) / "preprocess.json").read_text())[RECORD_KEY]
    to_atlas = sitk.ReadTransform(str(Path(folder) / record["transform"]))
    moved = sitk.Resample(
        sitk.Cast(image, sitk.sitkFloat32), empty_image(record["grid"]), to_atlas,
        sitk.sitkLinear, 0.0,
    )  # fmt: skip
    return sitk.GetArrayFromImage(moved).T
