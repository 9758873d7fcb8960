"""A DICOM image's pixels as the standard defines them: checked before conversion, and a small
fingerprint of each image kept, so that the converted volume can be compared with the images
it was made from (a flipped or reordered volume has other fingerprints in its slices).

dcm2niix reads every bit allocated and one rescale per volume; the standard reads the bits
stored, and lets each image carry its rescale. A series where these readings differ is
refused: its volume would silently not be the images.
"""

from __future__ import annotations

import numpy as np

from gliograde.core.errors import DataError

NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
"""Uncompressed transfer syntaxes: implicit and explicit little endian, explicit big endian."""
GE_PRIVATE = "1.2.840.113619.5.2"  # GE's implicit little endian with big-endian pixels
BLOCKS = 4  # a fingerprint is the image's mean over a BLOCKS × BLOCKS grid


def pixel_problem(ds) -> str | None:
    """Why an image's pixel description cannot be trusted, or None: one grey sample per pixel,
    8, 16 or 32 bits allocated and no more stored, signed or unsigned, one finite rescale with a
    slope other than 0, a transfer syntax DICOM defines (or GE's private one), and, uncompressed,
    the bytes the rows, columns and frames need (with at most a row of padding: more means the
    size is wrong), each value within the bits stored."""
    from pydicom.uid import UID

    required = ("Rows", "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation",
                "SamplesPerPixel", "PhotometricInterpretation", "PixelData")  # fmt: skip
    for keyword in required:  # type 1 in the image pixel module: no default is safe
        if ds.get(keyword) in (None, ""):
            return f"no {keyword}"
    allocated, stored = int(ds.BitsAllocated), int(ds.BitsStored)
    signed = int(ds.get("PixelRepresentation") or 0)
    if int(ds.get("SamplesPerPixel") or 1) != 1 or ds.get("PhotometricInterpretation") not in (
        "MONOCHROME1", "MONOCHROME2"
    ):  # fmt: skip
        return "not a greyscale image (samples per pixel, photometric interpretation)"
    if allocated not in (8, 16, 32) or not 1 <= stored <= allocated or signed not in (0, 1):
        return f"{stored} bits stored in {allocated} allocated, representation {signed}"
    slopes = rescales(ds)
    if len(slopes) != 1:
        return "its frames have different rescale slopes or intercepts"
    slope, intercept = slopes[0]
    if not np.isfinite(slope) or slope == 0 or not np.isfinite(intercept):
        return f"rescale slope {slope}, intercept {intercept} (finite, the slope not 0)"
    syntax = str(getattr(ds, "file_meta", {}).get("TransferSyntaxUID", ""))
    if not (UID(syntax).is_transfer_syntax or syntax == GE_PRIVATE):
        return f"transfer syntax '{syntax[:64]}' is not one DICOM defines"
    values = native_values(ds)
    if isinstance(values, str):
        return values
    low, high = (-(2 ** (stored - 1)), 2 ** (stored - 1) - 1) if signed else (0, 2**stored - 1)
    if values is not None and values.size and (values.min() < low or values.max() > high):
        return f"pixel values outside the {stored} bits stored"
    return None


def native_values(ds) -> np.ndarray | str | None:
    """An uncompressed image's values as (frames, rows, columns); None for other transfer
    syntaxes (their decoder checks its own stream); a line when the bytes are too few."""
    syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
    if syntax not in NATIVE:
        return None
    frames = int(ds.get("NumberOfFrames") or 1)
    rows, cols, allocated = int(ds.Rows), int(ds.Columns), int(ds.BitsAllocated)
    needed = rows * cols * frames * allocated // 8
    padding = cols * allocated // 8  # up to a row of it is seen in exports (and pydicom's files)
    if not needed <= len(ds.PixelData) <= needed + max(padding, 1):
        return f"{len(ds.PixelData)} bytes of pixel data for {needed} ({rows}×{cols}×{frames})"
    big = syntax == "1.2.840.10008.1.2.2"
    signed = int(ds.get("PixelRepresentation") or 0)
    kind = np.dtype(f"{'>' if big else '<'}{'i' if signed else 'u'}{allocated // 8}")
    return np.frombuffer(ds.PixelData[:needed], dtype=kind).reshape(frames, rows, cols)


def rescales(ds) -> list[tuple[float, float]]:
    """The distinct (slope, intercept) of the image's frames: 1 and 0 when absent; an enhanced
    image's from its functional groups (shared, or each frame's), which must agree with any
    top-level value (a disagreement gives two entries).

    Raises:
        ValueError: a rescale present but empty, or not a number.
    """
    top = pair(ds)
    groups = [
        item.PixelValueTransformationSequence[0]
        for item in functional_items(ds)
        if "PixelValueTransformationSequence" in item and len(item.PixelValueTransformationSequence)
    ]
    if not groups:
        return [top]
    found = {pair(g) for g in groups}
    if "RescaleSlope" in ds or "RescaleIntercept" in ds:
        found.add(top)
    return sorted(found)


def functional_items(ds) -> list:
    """The shared functional group and each frame's (enhanced images), or none."""
    items = list(ds.get("SharedFunctionalGroupsSequence") or [])[:1]
    return items + list(ds.get("PerFrameFunctionalGroupsSequence") or [])


def pair(ds) -> tuple[float, float]:
    return number_of(ds, "RescaleSlope", 1.0), number_of(ds, "RescaleIntercept", 0.0)


def number_of(ds, keyword: str, default: float) -> float:
    if keyword not in ds:
        return default
    value = ds[keyword].value
    if value is None or value == "":
        raise ValueError(f"{keyword} present but empty")
    return float(value)


def fingerprints(ds) -> list[np.ndarray | None]:
    """Each frame's fingerprint (its rescaled mean over a coarse grid), None per frame where
    the pixels are compressed."""
    values = native_values(ds)
    frames = int(ds.get("NumberOfFrames") or 1)
    if values is None or isinstance(values, str):
        return [None] * frames
    slope, intercept = rescales(ds)[0]
    return [fingerprint(v.astype(np.float64) * slope + intercept) for v in values]


def fingerprint(image: np.ndarray) -> np.ndarray:
    """The mean of ``image`` (rows, columns) over a BLOCKS × BLOCKS grid of blocks."""
    rows = np.array_split(np.arange(image.shape[0]), BLOCKS)
    cols = np.array_split(np.arange(image.shape[1]), BLOCKS)
    return np.array([[image[np.ix_(r, c)].mean() if r.size and c.size else 0.0 for c in cols]
                     for r in rows])  # fmt: skip


def check_pixels(ds, where) -> None:
    """:func:`pixel_problem` as one line naming the file.

    Raises:
        DataError: the pixel description cannot be trusted.
    """
    try:
        problem = pixel_problem(ds)
    except ValueError as err:  # a number field that is not a number
        problem = " ".join(str(err).split())[:120]
    if problem:
        raise DataError(f"{where}: {problem}; leave this series out")
