"""Fuzz cases for the DICOM path: a small SYNTHETIC exam (FLAIR, T1ce, T1, T2; in a third of
the cases the FLAIR as one enhanced multi-frame file), changed by one seeded mutation, then read
as ``preprocess`` and ``predict`` read a DICOM folder: found, series identified, each chosen
series checked and converted with dcm2niix.

A case ends well in one of three ways: volumes; one :class:`GliogradeError` line; or series set
aside (the subject then refused with its line). A volume is checked against an independent
reading of the mutated files' headers (pydicom, slices sorted along their normal): a volume
that differs from it, or that came from headers no regular stack fits, raises
:class:`WrongVolume`.

Run by :func:`helpers.isolated.run_cases` with ``helpers.fuzz_dicom:case``.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import numpy as np

from helpers.dicom_oracle import check_against_headers
from helpers.fuzz import mutate

SHAPE = (24, 20, 12)
# 0.9 × 0.9 × 3 mm, turned 10° about the superior axis and moved: an oblique axial exam
ANGLE = np.deg2rad(10)
TURN = np.array([[np.cos(ANGLE), -np.sin(ANGLE), 0], [np.sin(ANGLE), np.cos(ANGLE), 0], [0, 0, 1]])
AFFINE = np.eye(4)
AFFINE[:3, :3] = TURN @ np.diag([-0.9, -0.9, 3.0])
AFFINE[:3, 3] = [40.0, 60.0, -20.0]


class WrongRefusal(AssertionError):
    """A mutation that leaves the exam valid (file names, instance numbers) was refused."""


def clean_exports(scratch: Path) -> dict[str, Path]:
    """The two clean exams (classic files; FLAIR as one enhanced file), made once per worker."""
    import pydicom

    from gliograde.scans.simulate import SEQUENCES, write_enhanced_series, write_exam

    made = {"classic": scratch / "clean-classic", "enhanced": scratch / "clean-enhanced"}
    if all(p.is_dir() for p in made.values()):
        return made
    rng = np.random.default_rng(0)
    volumes = {
        r: rng.integers(0, 1000, SHAPE, dtype=np.int16) for r in ("flair", "t1ce", "t1", "t2")
    }
    for path in made.values():
        shutil.rmtree(path, ignore_errors=True)
    write_exam(made["classic"], volumes, AFFINE)
    study = write_exam(made["enhanced"], {r: volumes[r] for r in ("t1ce", "t1", "t2")}, AFFINE)
    description, timing, _ = SEQUENCES["flair"]
    write_enhanced_series(made["enhanced"], volumes["flair"], AFFINE, description,
                          timing=timing, study=study, number=9)  # fmt: skip
    for folder in made.values():  # names by series and instance: a seed picks the same file
        for f in list(folder.iterdir()):
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            f.rename(folder / f"{int(ds.SeriesNumber):02d}-{int(ds.get('InstanceNumber', 1)):03d}")
    return made


def case(seed: int, scratch: Path) -> str:
    """One fuzz case (see the module): ``volumes`` when a subject was converted (and its
    volumes checked), ``refused`` when every subject was refused with its line."""
    from gliograde.scans.cached import is_dicom_folder
    from gliograde.scans.inputs import converted, raw_subjects

    rng = np.random.default_rng(1_000_000 + seed)
    clean = clean_exports(scratch)
    folder = scratch / "case"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(clean["enhanced" if seed % 3 == 0 else "classic"], folder)
    try:
        harmless = apply_mutation(folder, rng) in HARMLESS
        is_dicom_folder(folder)
        subjects, _, _ = raw_subjects([folder])
        for subject in subjects:
            files = converted(subject, scratch / "work")
            for role, path in files.items():
                check_against_headers(path, subject.series[role].files)
        if harmless and not subjects:
            raise WrongRefusal("a valid exam (files renamed or renumbered) was refused")
        return "volumes" if subjects else "refused"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(scratch / "work", ignore_errors=True)


def corpus_case(index: int, scratch: Path) -> str:
    """pydicom's own test file number ``index`` (those its wheel ships), alone in a folder,
    read as preprocess reads a DICOM folder; then each series found converted on its own (a
    single file never makes a four-sequence subject, but its headers and pixels are checked
    and dcm2niix runs on it)."""
    from gliograde.core.errors import DataError
    from gliograde.scans.convert import series_to_nifti
    from gliograde.scans.dicom import scan_folder
    from gliograde.scans.inputs import raw_subjects

    files = corpus_files()
    folder = scratch / "corpus"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copy(files[index], folder / files[index].name)
    raw_subjects([folder])
    studies, _ = scan_folder(folder)
    made = 0
    for series in (s for study in studies for s in study.series):
        try:
            series_to_nifti(series, scratch / "work", "volume")
            made += 1
        except DataError:
            continue  # refused with its line: an outcome this case accepts
    shutil.rmtree(scratch / "work", ignore_errors=True)
    return "volumes" if made else "refused"


def corpus_files() -> list[Path]:
    """The DICOM test files inside the installed pydicom package (no download)."""
    import pydicom

    data = Path(pydicom.__file__).parent / "data"
    names = ("test_files", "charset_files")
    found = (p for n in names for p in (data / n).rglob("*") if p.is_file())
    return sorted(p for p in found if p.suffix not in (".py", ".pyc"))


def apply_mutation(folder: Path, rng: np.random.Generator):
    """One mutation; one that pydicom cannot write (a value it refuses to encode) leaves the
    file as far as it was written, which is a mutation too."""
    files = sorted(folder.iterdir())
    kind = MUTATIONS[int(rng.integers(0, len(MUTATIONS)))]
    # the harness's own step failing on an earlier change: nothing more to do
    with contextlib.suppress(
        ValueError, TypeError, OverflowError, OSError, AttributeError, KeyError
    ):
        kind(files, rng)
    return kind


# --- the mutations --------------------------------------------------------------------------


def header_field(files, rng):
    """One field set to an odd value, in one file or in every file of its series."""
    import pydicom

    target = files[int(rng.integers(0, len(files)))]
    ds = pydicom.dcmread(target)
    series = [f for f in files if series_uid(f) == ds.SeriesInstanceUID]
    chosen = series if rng.random() < 0.3 else [target]
    name = FIELDS[int(rng.integers(0, len(FIELDS)))]
    value = odd_value(name, rng)
    for f in chosen:
        ds = pydicom.dcmread(f)
        set_field(ds, name, value)
        ds.save_as(f)


FIELDS = [
    "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns",
    "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "TransferSyntaxUID",
    "NumberOfFrames", "RepetitionTime", "EchoTime", "InversionTime", "SeriesDescription",
    "SeriesNumber", "SliceThickness", "RescaleSlope", "PerFrameFunctionalGroupsSequence",
    "SharedFunctionalGroupsSequence", "SamplesPerPixel", "SeriesInstanceUID",
]  # fmt: skip

ODD_NUMBERS = [0, -1, 1, 2, 3, 7, 8, 12, 255, 256, 4096, 32767, -32768, 1e-30, 1e30]


def odd_value(name: str, rng):
    r = rng.random()
    if name in ("ImagePositionPatient",):
        if r < 0.5:
            return ("shift", rng.normal(0, 20, 3))
        return ("raw", [str(v) for v in rng.choice(["nan", "1e308", "-0", "abc", "0"], 3)])
    if name == "ImageOrientationPatient":
        if r < 0.4:
            return ("raw", [float(v) for v in rng.normal(0, 1, 6)])
        if r < 0.7:
            return ("raw", [1.0, 0.0, 0.0, 0.0, 0.0, -1.0])  # coronal
        return ("raw", [float(v) for v in rng.choice([0.0, 1.0, -1.0, 2.0], 6)])
    if name == "TransferSyntaxUID":
        uids = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.4.50",
                "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.5", "1.2.3.4", "garbage"]  # fmt: skip
        return ("raw", str(rng.choice(uids)))
    if name in ("SeriesDescription",):
        texts = ["", "localizer", "AX T1 POST", "ÄÖ\x00\x1b", "x" * 200, "T2 FLAIR DWI"]
        return ("raw", str(rng.choice(texts)))
    if name.endswith("FunctionalGroupsSequence"):
        return ("sequence", str(rng.choice(["delete", "empty", "drop one", "garble"])))
    if name == "SeriesInstanceUID":
        return ("raw", str(rng.choice(["1.2.3", "", "9" * 70])))
    if name in ("PixelSpacing",):
        return ("raw", [float(v) for v in rng.choice([0.0, -1.0, 1e-9, 1e9, 0.9, 3.0], 2)])
    if r < 0.15:
        return ("raw", str(rng.choice(["", "abc", "1e999", "nan"])))
    return ("number", float(rng.choice(ODD_NUMBERS)))


UNSIGNED_SHORTS = {
    "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
    "SamplesPerPixel",
}  # fmt: skip


def set_field(ds, name: str, value) -> None:
    how, v = value
    if name == "TransferSyntaxUID":
        ds.file_meta.TransferSyntaxUID = v
        return
    if how == "shift" and "ImagePositionPatient" in ds:
        ds.ImagePositionPatient = [float(a) + float(b) for a, b in zip(ds.ImagePositionPatient, v)]
        return
    if how == "sequence":
        set_sequence(ds, name, v)
        return
    if how == "number":
        if name in UNSIGNED_SHORTS:
            v = int(v) % 65536
        elif name in ("NumberOfFrames", "SeriesNumber"):
            v = str(int(v)) if abs(v) < 1e12 else "1"
    try:
        setattr(ds, name, v)
    except (ValueError, TypeError, OverflowError):
        ds.pop(name, None)  # a value pydicom will not even store: the field goes missing


def set_sequence(ds, name: str, how: str) -> None:
    if name not in ds:
        return
    if how == "delete":
        del ds[name]
    elif how == "empty":
        ds[name].value = []
    elif how == "drop one" and len(ds[name].value) > 1:
        del ds[name].value[len(ds[name].value) // 2]
    elif how == "garble":
        for item in ds[name].value[:1]:
            for element in list(item):
                if element.VR == "SQ":
                    for nested in element.value:
                        for keyword in ("ImagePositionPatient", "PixelSpacing"):
                            if keyword in nested:
                                setattr(nested, keyword, ["x", "1"])


def truncated(files, rng):
    f = files[int(rng.integers(0, len(files)))]
    data = f.read_bytes()
    f.write_bytes(data[: int(rng.integers(0, len(data)))])


def garbage(files, rng):
    f = files[int(rng.integers(0, len(files)))]
    f.write_bytes(mutate(f.read_bytes(), rng))


def duplicated(files, rng):
    """A slice twice: the same file under another name, or a new instance at its position."""
    import pydicom
    from pydicom.uid import generate_uid

    f = files[int(rng.integers(0, len(files)))]
    ds = pydicom.dcmread(f)
    if rng.random() < 0.5:
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(f.with_name(f.name + "-copy"))


def missing(files, rng):
    """A slice gone from the middle of a series (its files sorted by position)."""
    by_series = group_by_series(files)
    series = list(by_series.values())[int(rng.integers(0, len(by_series)))]
    if len(series) > 2:
        series[int(rng.integers(1, len(series) - 1))].unlink()


def mixed_orientation(files, rng):
    """One slice of a series written coronal (a second orientation inside the series)."""
    import pydicom

    f = files[int(rng.integers(0, len(files)))]
    ds = pydicom.dcmread(f)
    if "ImageOrientationPatient" in ds:
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 0.0, -1.0]
        ds.save_as(f)


def gantry_tilt(files, rng):
    """Each slice of a series moved along its column direction by k·tan(tilt)·step."""
    import pydicom

    by_series = group_by_series(files)
    series = list(by_series.values())[int(rng.integers(0, len(by_series)))]
    tilt = np.tan(np.deg2rad(float(rng.choice([2.0, 10.0, 20.0]))))
    for k, f in enumerate(series):
        ds = pydicom.dcmread(f)
        if "ImagePositionPatient" not in ds:
            return
        col = np.array([float(v) for v in ds.ImageOrientationPatient[3:]])
        ds.ImagePositionPatient = [
            float(v) for v in np.array(ds.ImagePositionPatient, float) + k * 3.0 * tilt * col
        ]
        ds.save_as(f)


def localizer_inside(files, rng):
    """A localizer written into a series: same SeriesInstanceUID, sagittal, its own size."""
    import pydicom
    from pydicom.uid import generate_uid

    f = files[int(rng.integers(0, len(files)))]
    ds = pydicom.dcmread(f)
    if "ImageOrientationPatient" not in ds or "PerFrameFunctionalGroupsSequence" in ds:
        return
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.ImageOrientationPatient = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]
    ds.Rows, ds.Columns = 16, 16
    ds.PixelData = np.zeros((16, 16), np.int16).tobytes()
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.save_as(f.with_name(f.name + "-localizer"))


def swapped_positions(files, rng):
    """Two slices of a series exchange positions (the images then stack in another order)."""
    import pydicom

    series = next(iter(group_by_series(files).values()))
    a, b = (series[int(i)] for i in rng.choice(len(series), 2, replace=False))
    da, db = pydicom.dcmread(a), pydicom.dcmread(b)
    if "ImagePositionPatient" in da and "ImagePositionPatient" in db:
        da.ImagePositionPatient, db.ImagePositionPatient = (
            db.ImagePositionPatient,
            da.ImagePositionPatient,
        )
        da.save_as(a)
        db.save_as(b)


def renamed(files, rng):
    """Every file under a new random name (the order a folder lists them in changes)."""
    for f in files:
        f.rename(f.with_name(f"x{int(rng.integers(0, 2**40)):011x}"))


def renumbered(files, rng):
    """Instance numbers shuffled within each series: DICOM orders slices by position."""
    import pydicom

    for series in group_by_series(files).values():
        numbers = rng.permutation(len(series)) + 1
        for f, n in zip(series, numbers, strict=True):
            ds = pydicom.dcmread(f)
            ds.InstanceNumber = int(n)
            ds.save_as(f)


HARMLESS = (renamed, renumbered)

MUTATIONS = [
    header_field, header_field, header_field, header_field, truncated, garbage, duplicated,
    missing, mixed_orientation, gantry_tilt, localizer_inside, swapped_positions, renamed,
    renumbered,
]  # fmt: skip


def series_uid(path: Path) -> str:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True).get("SeriesInstanceUID", ""))


def group_by_series(files) -> dict[str, list[Path]]:
    """Readable files by series, each series sorted by the slice's height (classic files)."""
    import pydicom

    groups: dict[str, list] = {}
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        groups.setdefault(str(ds.SeriesInstanceUID), []).append(
            (float(ds.ImagePositionPatient[2]) if "ImagePositionPatient" in ds else 0.0, f)
        )
    return {k: [f for _, f in sorted(v)] for k, v in groups.items()}
