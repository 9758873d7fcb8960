"""Where a series' slices are, from their headers, and whether a converted volume agrees.

dcm2niix stacks what it is given; its users report series it stacked wrongly or not at all
(dcm2niix#140: a localizer or a second orientation mixed in; #248, #539: uneven slice
distance; #637, #1015: slice order and a flipped superior/inferior axis). So before a series
is used, its headers are checked (one orientation, positions along its normal, no two slices at
one position, even spacing, no gantry tilt), and after conversion the volume's shape and the
world position of its corners must be those the headers give. A series that fails either is
refused with one line, never passed on as a volume that may be wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gliograde.core.errors import DataError
from gliograde.scans.pixels import fingerprint

TOLERANCE_MM = 0.1  # two slices closer than this along the normal are at one position
ROUNDING_MM = 0.1  # what exports round positions to (some write one decimal)
SPACING_SPREAD = 0.05  # slice steps may differ by 5 % of their mean, or twice the rounding


@dataclass
class Plane:
    """One image's place: position of its first pixel (LPS, mm), row and column directions,
    pixel spacing (between rows, between columns) and size (rows, columns)."""

    position: np.ndarray
    orientation: np.ndarray  # 6 values: row direction, column direction
    spacing: tuple[float, float]
    size: tuple[int, int]
    fingerprint: np.ndarray | None = None  # see gliograde.scans.pixels.fingerprint


@dataclass
class Stack:
    """A series' slices in order along their normal: what its volume must be."""

    planes: list[Plane]
    step: float  # mm between slices

    def affine(self) -> np.ndarray:
        """The volume's NIfTI (RAS) affine, its axes columns, rows and slices in order."""
        first = self.planes[0]
        row, col = first.orientation[:3], first.orientation[3:]
        lps = np.eye(4)
        lps[:3, 0] = row * first.spacing[1]  # along a row: from column to column
        lps[:3, 1] = col * first.spacing[0]
        lps[:3, 2] = np.cross(row, col) * self.step
        lps[:3, 3] = first.position
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps

    def grid(self) -> dict:
        """The volume's grid as SimpleITK places it (LPS): size (columns, rows, slices), the
        first pixel's position, spacing and direction (row, column, slice axes as columns),
        in :func:`gliograde.scans.space.geometry`'s form. Voxel (i, j, k) of it is column i,
        row j of the k-th plane in order."""
        first = self.planes[0]
        row, col = first.orientation[:3], first.orientation[3:]
        axes = np.stack([row, col, np.cross(row, col)], axis=1)
        return {
            "size": [int(n) for n in self.shape],
            "origin": [float(v) for v in first.position],
            "spacing": [float(first.spacing[1]), float(first.spacing[0]), float(self.step)],
            "direction": [float(v) for v in axes.ravel()],
        }

    @property
    def shape(self) -> tuple[int, int, int]:
        rows, cols = self.planes[0].size
        return cols, rows, len(self.planes)


def planes_of(files: list[Path]) -> list[Plane]:
    """Each image's :class:`Plane`: one per file, or one per frame of a multi-frame file, with
    its pixels checked (:mod:`gliograde.scans.pixels`) and fingerprinted.

    Raises:
        DataError: a file that is not readable, or without a usable position, orientation,
            spacing, size or pixel description.
    """
    from gliograde.scans.dicom import UnreadableDicom, read_dicom
    from gliograde.scans.pixels import check_pixels, fingerprints

    planes = []
    for path in files:
        try:
            ds = read_dicom(path, pixels=True)
        except UnreadableDicom as err:
            raise DataError(f"{path}: not readable ({err}); leave this series out") from None
        check_pixels(ds, path)
        try:
            found = frames_of(ds)
        except ValueError as err:  # a number field that is not a number, or not enough values
            said = " ".join(str(err).split())[:120]
            raise DataError(f"{path}: unusable position or orientation ({said}); leave this "
                            "series out") from None  # fmt: skip
        for p, mark in zip(found, fingerprints(ds), strict=False):
            p.fingerprint = mark
        planes += found
    return planes


def need(ds, keyword: str):
    """``keyword``'s value, present and not empty.

    Raises:
        ValueError: missing or empty.
    """
    value = ds.get(keyword) if ds is not None else None
    if value is None or value == "" or (hasattr(value, "__len__") and len(value) == 0):
        raise ValueError(f"no {keyword}")
    return value


def frames_of(ds) -> list[Plane]:
    """Each frame's :class:`Plane`, from the file's own attributes or an enhanced image's
    functional groups (each frame's, else the shared one).

    Raises:
        ValueError: an attribute missing, empty, not a number, or with the wrong count.
    """
    size = (int(need(ds, "Rows")), int(need(ds, "Columns")))
    if "PerFrameFunctionalGroupsSequence" not in ds:
        position = need(ds, "ImagePositionPatient")
        orientation = need(ds, "ImageOrientationPatient")
        return [plane(position, orientation, need(ds, "PixelSpacing"), size)]
    shared = (ds.get("SharedFunctionalGroupsSequence") or [None])[0]
    frames = []
    for item in ds.PerFrameFunctionalGroupsSequence:
        orientation = need(
            group(item, shared, "PlaneOrientationSequence"), "ImageOrientationPatient"
        )
        spacing = need(group(item, shared, "PixelMeasuresSequence"), "PixelSpacing")
        position = need(group(item, shared, "PlanePositionSequence"), "ImagePositionPatient")
        frames.append(plane(position, orientation, spacing, size))
    if len(frames) != int(ds.get("NumberOfFrames") or 1):
        raise ValueError("NumberOfFrames differs from the frames described")
    return frames


def group(item, shared, name: str):
    """A functional group's first item: the frame's own, else the shared one (None: absent)."""
    for source in (item, shared):
        if source is not None and name in source and len(source[name].value):
            return source[name].value[0]
    return None


def plane(position, orientation, spacing, size) -> Plane:
    """Raises ValueError for values that are not numbers, too few or too many, or not finite."""
    position = np.array([float(str(v)) for v in values(position)])
    orientation = np.array([float(str(v)) for v in values(orientation)])
    spacing = tuple(float(str(v)) for v in values(spacing))
    if position.shape != (3,) or orientation.shape != (6,) or len(spacing) != 2:
        raise ValueError("wrong number of values")
    if not (np.isfinite(position).all() and np.isfinite(orientation).all()):
        raise ValueError("not finite")
    if min(spacing) <= 0 or not np.isfinite(spacing).all() or min(size) <= 0:
        raise ValueError("spacing or size not positive")
    return Plane(position, orientation, spacing, size)


def values(value) -> list:
    """A DICOM value as a list (one number is a list of one)."""
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)


def stack_of(label: str, planes: list[Plane]) -> Stack:
    """The series' slices in order, once their headers agree on one regular stack.

    Raises:
        DataError: mixed orientations or sizes, an orientation that is not two orthogonal unit
            vectors, two slices at one position, uneven spacing, or gantry tilt; the line names
            the series.
    """
    first = planes[0]
    row, col = first.orientation[:3], first.orientation[3:]
    if abs(np.linalg.norm(row) - 1) > 1e-3 or abs(np.linalg.norm(col) - 1) > 1e-3:
        raise DataError(f"{label}: its orientation is not made of unit vectors; leave it out")
    if abs(row @ col) > 1e-3:
        raise DataError(f"{label}: its row and column directions are not orthogonal")
    odd = [p for p in planes if not np.allclose(p.orientation, first.orientation, atol=1e-3)]
    if odd or any(p.size != first.size or p.spacing != first.spacing for p in planes):
        raise DataError(
            f"{label}: its images have more than one orientation or size (a localizer or a "
            "reformat inside the series?); export it again without them, or leave it out"
        )
    normal = np.cross(row, col)
    ordered = sorted(planes, key=lambda p: float(p.position @ normal))
    if len(ordered) < 2:
        raise DataError(f"{label}: one image, not a volume; leave it out")
    heights = np.array([p.position @ normal for p in ordered])
    steps = np.diff(heights)
    if steps.min() < TOLERANCE_MM:
        raise DataError(f"{label}: two images at the same position (a duplicated slice?)")
    if steps.max() - steps.min() > max(SPACING_SPREAD * steps.mean(), 2 * ROUNDING_MM):
        raise DataError(
            f"{label}: uneven slice spacing ({steps.min():.2f} to {steps.max():.2f} mm; a "
            "missing slice?); export the whole series again"
        )
    check_straight(label, np.array([p.position - (p.position @ normal) * normal for p in ordered]))
    return Stack(ordered, float(steps.mean()))


def check_straight(label: str, offsets: np.ndarray) -> None:
    """Refuse slices whose in-plane offsets (``offsets``: one row per slice, in order) move
    along the stack (gantry tilt) or jump off its line (one slice misplaced): dcm2niix places
    each slice by the first's offset and the normal.

    Raises:
        DataError: the line names the series.
    """
    line = offsets[0] + np.outer(np.linspace(0, 1, len(offsets)), offsets[-1] - offsets[0])
    if np.abs(offsets - line).max() > 2 * ROUNDING_MM:
        raise DataError(f"{label}: a slice lies off the stack's line (its position is wrong?); "
                        "export the series again, or leave it out")  # fmt: skip
    if np.linalg.norm(offsets[-1] - offsets[0]) > 5 * ROUNDING_MM:
        raise DataError(
            f"{label}: its slices are not stacked along their normal (gantry tilt); "
            "convert it with tilt correction by hand, or leave it out"
        )


def check_converted(label: str, stack: Stack, nifti: Path) -> None:
    """Refuse a converted volume that is not the images: its shape, its place (the affine,
    brought to the headers' axis order) and each slice's fingerprint, in order, must be the
    headers' and the images' (so a flip or a reordering is caught, not only a shift).

    Raises:
        DataError: the volume and the headers disagree (the line says how).
    """
    import nibabel as nib

    from gliograde.io.nifti import load_nifti

    img = load_nifti(nifti)
    want = stack.affine()
    turn = nib.orientations.ornt_transform(nib.io_orientation(img.affine), nib.io_orientation(want))
    data = (
        nib.orientations.apply_orientation(np.asanyarray(img.dataobj), turn)
        if img.ndim == 3
        else None
    )
    if data is None or data.shape != stack.shape:
        raise DataError(
            f"{label}: converted to a {'×'.join(map(str, img.shape))} volume, but its headers "
            f"describe {'×'.join(map(str, stack.shape))}; leave it out"
        )
    placed = img.affine @ nib.orientations.inv_ornt_aff(turn, img.shape)
    extent = np.array([*stack.shape]) - 1
    far = float(
        np.abs((placed[:3, :3] - want[:3, :3]) @ extent).max()
        + np.abs(placed[:3, 3] - want[:3, 3]).max()
    )
    if far > max(0.5, 0.05 * stack.step):
        raise DataError(
            f"{label}: the converted volume lies up to {far:.1f} mm from where its headers "
            "put the images (orientation lost in conversion); leave it out"
        )
    for k, p in enumerate(stack.planes):
        if p.fingerprint is None:
            continue  # compressed pixels: their place is checked, not their values
        got = fingerprint(np.asarray(data[:, :, k], dtype=np.float64).T)
        scale = max(1.0, float(np.abs(p.fingerprint).max()))
        if not np.allclose(got, p.fingerprint, rtol=1e-3, atol=1e-3 * scale):
            raise DataError(
                f"{label}: slice {k + 1} of the converted volume is not the image the headers "
                "put there (flipped, reordered or rescaled in conversion); leave it out"
            )
