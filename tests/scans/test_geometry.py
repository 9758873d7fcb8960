"""A series' headers checked before conversion, and the converted volume against them: valid
exports convert (oblique, slices listed in any order, sagittal, enhanced), each hazard dcm2niix's
users report is refused with a line, and a flipped or reordered volume is caught."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pydicom
import pytest

from gliograde.core.errors import DataError
from gliograde.scans.convert import series_to_nifti
from gliograde.scans.dicom import scan_folder
from gliograde.scans.geometry import check_converted, planes_of, stack_of
from gliograde.scans.simulate import write_enhanced_series, write_series


def turned(degrees: float, axis: int = 2, spacing=(0.9, 0.9, 3.0)) -> np.ndarray:
    """A RAS affine turned by ``degrees`` about ``axis``, with ``spacing``."""
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    turns = {
        2: [[c, -s, 0], [s, c, 0], [0, 0, 1]],
        0: [[1, 0, 0], [0, c, -s], [0, s, c]],
    }
    affine = np.eye(4)
    affine[:3, :3] = np.array(turns[axis]) @ np.diag([-spacing[0], -spacing[1], spacing[2]])
    affine[:3, 3] = [30.0, 50.0, -10.0]
    return affine


def one_series(tmp_path, affine, shape=(20, 16, 10), seed=0):
    rng = np.random.default_rng(seed)
    volume = rng.integers(0, 1000, shape, dtype=np.int16)
    write_series(tmp_path / "export", volume, affine, "AX T1")
    (study,), _ = scan_folder(tmp_path / "export")
    return study.series[0], volume


def lps_data(path, affine):
    """The converted volume, brought to the written volume's axes."""
    img = nib.load(path)
    turn = nib.orientations.ornt_transform(
        nib.io_orientation(img.affine), nib.io_orientation(affine)
    )
    return nib.orientations.apply_orientation(np.asanyarray(img.dataobj), turn)


@pytest.mark.parametrize(
    "affine",
    [turned(0), turned(30), turned(20, axis=0), turned(0, spacing=(1.0, 1.0, 1.0))],
    ids=["axial", "oblique 30°", "tilted plane 20°", "1 mm"],
)
def test_valid_series_convert_to_the_written_volume(tmp_path, affine):
    series, volume = one_series(tmp_path, affine)
    assert np.array_equal(lps_data(series_to_nifti(series, tmp_path / "out", "t1"), affine), volume)


def test_slices_listed_in_reverse_and_numbered_backwards_convert(tmp_path):
    series, volume = one_series(tmp_path, turned(10))
    for k, path in enumerate(
        reversed(sorted(series.files, key=lambda p: pydicom.dcmread(p).InstanceNumber))
    ):
        ds = pydicom.dcmread(path)
        ds.InstanceNumber = k + 1
        ds.save_as(path)
    series.files.reverse()
    assert np.array_equal(
        lps_data(series_to_nifti(series, tmp_path / "out", "t1"), turned(10)), volume
    )


def test_an_enhanced_series_with_positions_per_frame_converts(tmp_path):
    rng = np.random.default_rng(2)
    volume = rng.integers(0, 1000, (20, 16, 10), dtype=np.int16)
    write_enhanced_series(tmp_path / "export", volume, turned(15), "AX FLAIR")
    (study,), _ = scan_folder(tmp_path / "export")
    path = series_to_nifti(study.series[0], tmp_path / "out", "flair")
    assert np.array_equal(lps_data(path, turned(15)), volume)


def move(path, by):
    ds = pydicom.dcmread(path)
    ds.ImagePositionPatient = [float(v) + d for v, d in zip(ds.ImagePositionPatient, by)]
    ds.save_as(path)


def by_height(series):
    return sorted(series.files, key=lambda p: float(pydicom.dcmread(p).ImagePositionPatient[2]))


def duplicated(series, tmp_path):
    a, b = by_height(series)[:2]
    ds = pydicom.dcmread(b)
    ds.ImagePositionPatient = pydicom.dcmread(a).ImagePositionPatient
    ds.save_as(b)
    return "two images at the same position"


def missing(series, tmp_path):
    path = by_height(series)[4]
    series.files.remove(path)
    return "uneven slice spacing"


def tilted(series, tmp_path):
    for k, path in enumerate(by_height(series)):
        move(path, (0.0, 3.0 * np.tan(np.deg2rad(10)) * k, 0.0))
    return "gantry tilt"


def one_off_its_line(series, tmp_path):
    move(by_height(series)[5], (2.0, 0.0, 0.0))
    return "off the stack's line"


def localizer(series, tmp_path):
    ds = pydicom.dcmread(series.files[0])
    ds.ImageOrientationPatient = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]
    ds.save_as(series.files[0])
    return "more than one orientation or size"


def bits(series, tmp_path):
    ds = pydicom.dcmread(series.files[3])
    ds.BitsStored = 8  # the values need 10 bits
    ds.save_as(series.files[3])
    return "pixel values outside the 8 bits stored"


def rescale(series, tmp_path):
    ds = pydicom.dcmread(series.files[3])
    ds.RescaleSlope = ""
    ds.save_as(series.files[3])
    return "RescaleSlope present but empty"


@pytest.mark.parametrize(
    "hazard", [duplicated, missing, tilted, one_off_its_line, localizer, bits, rescale],
    ids=lambda f: f.__name__,
)  # fmt: skip
def test_each_hazard_is_refused_with_a_line(tmp_path, hazard):
    series, _ = one_series(tmp_path, turned(10))
    expected = hazard(series, tmp_path)
    with pytest.raises(DataError, match=expected) as caught:
        series_to_nifti(series, tmp_path / "out", "t1")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("how", ["data flipped", "slices reversed", "affine mirrored"])
def test_a_volume_not_the_images_is_caught_after_conversion(tmp_path, how):
    """What dcm2niix#637 and #1015 describe (slice order lost, an axis flipped): the check on
    each slice's fingerprint and on the volume's place sees it."""
    series, _ = one_series(tmp_path, turned(10))
    stack = stack_of("series 1 'AX T1'", planes_of(series.files))
    path = series_to_nifti(series, tmp_path / "out", "t1")
    img = nib.load(path)
    data, affine = np.asanyarray(img.dataobj), img.affine.copy()
    if how == "data flipped":
        data = data[::-1]
    elif how == "slices reversed":
        data = data[:, :, ::-1]
    else:
        affine[:, 0] *= -1
    nib.save(nib.Nifti1Image(data, affine, img.header), path)
    with pytest.raises(DataError, match=r"not the image the headers put there|lies up to"):
        check_converted("series 1 'AX T1'", stack, path)
