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

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gliograde.core.errors import DataError

TOLERANCE_MM = 0.1  # positions; DICOM stores them as decimal strings of ~16 characters
SPACING_SPREAD = 0.05  # slice steps may differ by 5 % of their mean (rounding, tables)


@dataclass
class Plane:
    """One image's place: position of its first pixel (LPS, mm), row and column directions,
    pixel spacing (between rows, between columns) and size (rows, columns)."""

    position: np.ndarray
    orientation: np.ndarray  # 6 values: row direction, column direction
    spacing: tuple[float, float]
    size: tuple[int, int]
    rescale: tuple[float, float] = (1.0, 0.0)  # slope, intercept


@dataclass
class Stack:
    """A series' slices in order along their normal: what its volume must be."""

    planes: list[Plane]
    step: float  # mm between slices

    def corners(self) -> np.ndarray:
        """The world (LPS) centres of the volume's 8 corner voxels."""
        first, last = self.planes[0], self.planes[-1]
        row, col = first.orientation[:3], first.orientation[3:]
        rows, cols = first.size
        dr, dc = first.spacing
        points = []
        for p in (first.position, last.position):
            for i in (0, cols - 1):
                for j in (0, rows - 1):
                    points.append(p + i * dc * row + j * dr * col)
        return np.array(points)

    @property
    def shape(self) -> tuple[int, int, int]:
        rows, cols = self.planes[0].size
        return cols, rows, len(self.planes)


def planes_of(files: list[Path]) -> list[Plane]:
    """Each image's :class:`Plane`: one per file, or one per frame of a multi-frame file.

    Raises:
        DataError: a file without a readable position, orientation, spacing or size.
    """
    from pydicom.errors import BytesLengthException, InvalidDicomError

    from gliograde.scans.dicom import read_dicom

    planes = []
    for path in files:
        try:
            ds = read_dicom(path, pixels=True)
        except (InvalidDicomError, BytesLengthException, OSError, EOFError, ValueError,
                struct.error) as err:  # fmt: skip
            raise DataError(f"{path}: not readable ({type(err).__name__}); leave this series "
                            "out") from None  # fmt: skip
        try:
            check_pixels(ds, path)
            slope_intercept = rescale_of(ds)
            for p in frames_of(ds):
                p.rescale = slope_intercept
                planes.append(p)
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as err:
            said = " ".join(f"{type(err).__name__}: {err}".split())[:120]
            raise DataError(
                f"{path}: unusable image header ({said}); leave this series out"
            ) from None
    return planes


UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}


def check_pixels(ds, path: Path) -> None:
    """Refuse pixel data whose description is not one a converter can trust: one grey sample
    per pixel, 8, 16 or 32 bits allocated and no more stored, signed or unsigned, one rescale
    that is a finite non-zero number, and (uncompressed) exactly the bytes the rows, columns
    and frames need, each value within the bits stored (dcm2niix reads all the bits allocated,
    the standard only those stored).

    Raises:
        DataError: the line names the file and what is inconsistent.
    """
    problem = pixel_problem(ds)
    if problem:
        raise DataError(f"{path}: {problem}; leave this series out")


def pixel_problem(ds) -> str | None:
    from pydicom.uid import UID

    allocated, stored = int(ds.BitsAllocated), int(ds.BitsStored)
    signed = int(ds.get("PixelRepresentation", 0))
    if int(ds.get("SamplesPerPixel", 1)) != 1 or ds.get("PhotometricInterpretation") not in (
        "MONOCHROME1", "MONOCHROME2"
    ):  # fmt: skip
        return "not a greyscale image (samples per pixel, photometric interpretation)"
    if allocated not in (8, 16, 32) or not 1 <= stored <= allocated or signed not in (0, 1):
        return f"{stored} bits stored in {allocated} allocated, representation {signed}"
    slope, intercept = rescale_of(ds)
    if not np.isfinite(slope) or slope == 0 or not np.isfinite(intercept):
        return f"rescale slope {slope}, intercept {intercept} (finite, the slope not 0)"
    if "PixelData" not in ds:
        return "no pixel data"
    syntax = str(getattr(ds, "file_meta", {}).get("TransferSyntaxUID", ""))
    if not UID(syntax).is_transfer_syntax:
        return f"transfer syntax '{syntax[:64]}' is not one DICOM defines"
    if syntax not in UNCOMPRESSED:
        return None  # compressed: the decoder checks its own stream
    frames = int(ds.get("NumberOfFrames") or 1)
    needed = int(ds.Rows) * int(ds.Columns) * frames * allocated // 8
    if len(ds.PixelData) not in (needed, needed + 1):  # a pad byte keeps the length even
        size = f"{ds.Rows}×{ds.Columns}×{frames}"
        return f"{len(ds.PixelData)} bytes of pixel data for {needed} ({size})"
    big = str(ds.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.2"
    kind = np.dtype(f"{'>' if big else '<'}{'i' if signed else 'u'}{allocated // 8}")
    values = np.frombuffer(ds.PixelData[:needed], dtype=kind)
    low, high = (-(2 ** (stored - 1)), 2 ** (stored - 1) - 1) if signed else (0, 2**stored - 1)
    if values.size and (values.min() < low or values.max() > high):
        return f"pixel values outside the {stored} bits stored"
    return None


def rescale_of(ds) -> tuple[float, float]:
    """The file's (slope, intercept): 1 and 0 when absent; an enhanced image's from its
    functional groups, which must agree with any top-level value.

    Raises:
        ValueError: present but empty or not a number, or the two places disagree.
    """
    top = [value_of(ds, k, d) for k, d in (("RescaleSlope", 1.0), ("RescaleIntercept", 0.0))]
    shared = ds.get("SharedFunctionalGroupsSequence", [None])[0]
    if shared is None or "PixelValueTransformationSequence" not in shared:
        return top[0], top[1]
    item = shared.PixelValueTransformationSequence[0]
    grouped = [value_of(item, k, d) for k, d in (("RescaleSlope", 1.0), ("RescaleIntercept", 0.0))]
    explicit = "RescaleSlope" in ds or "RescaleIntercept" in ds
    if explicit and grouped != top:
        raise ValueError("rescale given twice, with two values")
    return grouped[0], grouped[1]


def value_of(ds, keyword: str, default: float) -> float:
    if keyword not in ds:
        return default
    value = ds[keyword].value
    if value is None or value == "":
        raise ValueError(f"{keyword} present but empty")
    return float(value)


def frames_of(ds) -> list[Plane]:
    size = (int(ds.Rows), int(ds.Columns))
    if "PerFrameFunctionalGroupsSequence" not in ds:
        return [plane(ds.ImagePositionPatient, ds.ImageOrientationPatient, ds.PixelSpacing, size)]
    shared = ds.get("SharedFunctionalGroupsSequence", [None])[0]
    frames = []
    for item in ds.PerFrameFunctionalGroupsSequence:
        orientation = group(item, shared, "PlaneOrientationSequence").ImageOrientationPatient
        spacing = group(item, shared, "PixelMeasuresSequence").PixelSpacing
        position = group(item, shared, "PlanePositionSequence").ImagePositionPatient
        frames.append(plane(position, orientation, spacing, size))
    if len(frames) != int(ds.get("NumberOfFrames") or 1):
        raise ValueError("NumberOfFrames differs from the frames described")
    return frames


def group(item, shared, name: str):
    """A functional group's first item: the frame's own, else the shared one."""
    for source in (item, shared):
        if source is not None and name in source and len(source[name].value):
            return source[name].value[0]
    raise KeyError(name)


def plane(position, orientation, spacing, size) -> Plane:
    position = np.array([float(v) for v in position])
    orientation = np.array([float(v) for v in orientation])
    spacing = tuple(float(v) for v in spacing)
    if position.shape != (3,) or orientation.shape != (6,) or len(spacing) != 2:
        raise ValueError("wrong number of values")
    if not (np.isfinite(position).all() and np.isfinite(orientation).all()):
        raise ValueError("not finite")
    if min(spacing) <= 0 or not np.isfinite(spacing).all() or min(size) <= 0:
        raise ValueError("spacing or size not positive")
    return Plane(position, orientation, spacing, size)


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
    if any(p.rescale != first.rescale for p in planes):
        raise DataError(
            f"{label}: its images have different rescale slopes or intercepts (one volume has "
            "one); convert it by hand, or leave it out"
        )
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
    if steps.max() - steps.min() > SPACING_SPREAD * steps.mean():
        raise DataError(
            f"{label}: uneven slice spacing ({steps.min():.2f} to {steps.max():.2f} mm; a "
            "missing slice?); export the whole series again"
        )
    drift = np.diff([p.position - (p.position @ normal) * normal for p in ordered], axis=0)
    if np.abs(drift).max() > TOLERANCE_MM:
        raise DataError(
            f"{label}: its slices are not stacked along their normal (gantry tilt); "
            "convert it with tilt correction by hand, or leave it out"
        )
    return Stack(ordered, float(steps.mean()))


def check_converted(label: str, stack: Stack, nifti: Path) -> None:
    """Refuse a converted volume whose shape or corners are not the headers'.

    Raises:
        DataError: the volume and the headers disagree (the line says how).
    """
    import nibabel as nib

    img = nib.load(nifti)
    if sorted(img.shape[:3]) != sorted(stack.shape) or (len(img.shape) > 3 and img.shape[3] > 1):
        raise DataError(
            f"{label}: converted to a {'×'.join(map(str, img.shape))} volume, but its headers "
            f"describe {'×'.join(map(str, stack.shape))}; leave it out"
        )
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ img.affine  # NIfTI's world is RAS
    i, j, k = (np.array([0, n - 1]) for n in img.shape[:3])
    grid = np.array([[a, b, c, 1.0] for a in i for b in j for c in k])
    got, want = (lps @ grid.T).T[:, :3], stack.corners()
    apart = np.linalg.norm(got[:, None, :] - want[None, :, :], axis=2)
    far = float(max(apart.min(axis=0).max(), apart.min(axis=1).max()))  # Hausdorff distance
    if far > max(0.5, 0.05 * stack.step):
        raise DataError(
            f"{label}: the converted volume lies up to {far:.1f} mm from where its headers "
            "put the images (slice order or orientation lost in conversion); leave it out"
        )
