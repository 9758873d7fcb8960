"""A folder of DICOM files, as a PACS exports it (any names, any order, any nesting), read into
patients, studies and series, without reading pixel data.

A file that is not a readable DICOM image is named with why, and nothing else is lost. A folder
holding several patients (or several studies of one) gives one subject per patient and study.
Enhanced multi-frame images (one file per series, as recent Siemens, Philips and GE scanners
export) are read too: their timing lives in functional groups, which :func:`attribute` searches.
"""

from __future__ import annotations

import io
import os
import struct
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from gliograde.scans.series import Series, has_agent

MIN_IMAGES = 10
"""Series with fewer images than this are localizers or single-slice views: set aside."""


@dataclass
class Study:
    """One patient's study: the subject that ``preprocess`` makes of it."""

    patient: str
    study: str
    series: list[Series] = field(default_factory=list)

    @property
    def subject_id(self) -> str:
        return f"{safe(self.patient)}_{self.study[-8:].replace('.', '')}"


def safe(text: str) -> str:
    kept = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(text).strip())
    return kept or "anonymous"


class Bounded(io.BufferedReader):
    """A file whose reads never ask for more than it holds: a corrupt length field (4 GB
    claimed in a 2 kB file) then reads short, and the reader says the file is truncated,
    instead of allocating the 4 GB first."""

    def __init__(self, path: Path):
        super().__init__(io.FileIO(path))
        self.size = os.fstat(self.fileno()).st_size

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and size > 0:
            size = min(size, max(0, self.size - self.tell()))
        return super().read(size)


class UnreadableDicom(Exception):
    """A file pydicom cannot read: the reader's error, by kind, in one place."""


def read_dicom(path: Path, pixels: bool = False):
    """``pydicom.dcmread`` through :class:`Bounded` (headers only unless ``pixels``), every
    element decoded at once, so that a corrupt one fails here and not later, where it is used.

    Raises:
        UnreadableDicom: not a DICOM file, cut short, or an element that cannot be decoded.
    """
    import pydicom
    from pydicom.errors import BytesLengthException, InvalidDicomError

    try:
        with Bounded(path) as f:
            ds = pydicom.dcmread(f, stop_before_pixels=not pixels)
            for _ in ds.iterall():  # decodes each element (sequences' items included)
                pass
    except (
        InvalidDicomError,
        BytesLengthException,
        OSError,
        EOFError,
        ValueError,
        KeyError,
        NotImplementedError,  # an unknown value representation
        struct.error,  # a value cut short inside the header
    ) as err:
        raise UnreadableDicom(type(err).__name__) from err
    return ds


def scan_folder(folder: Path) -> tuple[list[Study], list[str]]:
    """Every study under ``folder`` with its series, and a line for each file not used.

    Returns:
        (studies, problems), the studies sorted by patient and study.
    """

    groups: dict[tuple, dict[str, Series]] = defaultdict(dict)
    problems = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        try:
            ds = read_dicom(path)
        except UnreadableDicom as err:
            problems.append(f"{path}: not a readable DICOM file ({type(err).__name__}); skipped")
            continue
        if "SeriesInstanceUID" not in ds or not positioned(ds):
            problems.append(f"{path}: not a DICOM image with a position; skipped")
            continue
        frames = whole_number(ds.get("NumberOfFrames") or 1)
        if frames is None or frames < 1:
            problems.append(f"{path}: its number of frames is not a count; skipped")
            continue
        key = (str(ds.get("PatientID", "")), str(ds.get("StudyInstanceUID", "")))
        uid = str(ds.SeriesInstanceUID)
        if uid not in groups[key]:
            groups[key][uid] = series_of(ds)
        groups[key][uid].files.append(path)
        groups[key][uid].images += frames
    studies = [Study(p, s, list(found.values())) for (p, s), found in sorted(groups.items())]
    for study in studies:
        for series in study.series:
            series.localizer = series.localizer or series.images < MIN_IMAGES
    return studies, problems


def positioned(ds) -> bool:
    """Whether an image says where it is: per file, or per frame of a multi-frame file."""
    return "ImagePositionPatient" in ds or attribute(ds, "ImagePositionPatient") is not None


def attribute(ds, keyword: str):
    """``keyword``'s value in the file, or in an enhanced image's shared or first per-frame
    functional groups (and the items of their sequences); None when absent or empty."""
    if ds.get(keyword) not in (None, ""):
        return ds.get(keyword)
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for item in (ds.get(groups) or [])[:1]:
            for element in item:
                for nested in element.value if element.VR == "SQ" else []:
                    if nested.get(keyword) not in (None, ""):
                        return nested.get(keyword)
    return None


def series_of(ds) -> Series:
    """A :class:`Series` from one file's header (timing in ms, as DICOM stores it)."""
    image_type = [str(v).upper() for v in ds.get("ImageType", [])]
    derived = {"DERIVED", "SECONDARY", "MPR", "SUBTRACT", "PROJECTION IMAGE"} & set(image_type)
    return Series(
        key=str(ds.SeriesInstanceUID),
        description=str(ds.get("SeriesDescription", "") or ds.get("ProtocolName", "")),
        number=whole_number(ds.get("SeriesNumber")),
        tr_ms=number(attribute(ds, "RepetitionTime")),
        te_ms=number(attribute(ds, "EchoTime") or attribute(ds, "EffectiveEchoTime")),
        ti_ms=number(attribute(ds, "InversionTime") or first(attribute(ds, "InversionTimes"))),
        contrast_agent=has_agent(attribute(ds, "ContrastBolusAgent")),
        localizer="LOCALIZER" in image_type or bool(derived),  # reformats and maps set aside
    )


def whole_number(value) -> int | None:
    """A series number or frame count, when it is a whole number (exports hold '1A', '' and
    3.0 too); None otherwise."""
    found = number(value)
    return int(found) if found is not None and found.is_integer() else None


def first(value):
    """The first of a multi-valued attribute (or the value itself)."""
    if value is None or isinstance(value, (str, int, float)):
        return value
    return next(iter(value), None)


def number(value) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None
