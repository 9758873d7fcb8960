"""Reading one NIfTI file: the reader's own documented errors become one line about the file;
a bug in our code is never reported as the user's corrupt data."""

import numpy as np
import pytest

from gliograde.core.errors import DataError
from gliograde.io import nifti
from helpers.data import save_nifti


def test_a_bug_in_our_code_is_not_called_corrupt_data(tmp_path, monkeypatch):
    path = save_nifti(tmp_path / "x_flair.nii.gz", np.ones((8, 8, 4), np.int16))
    img = nifti.open_image(path)

    def broken(img, path):  # inside read_array's try: only the reader's errors are caught
        raise ValueError("a bug in gliograde")

    monkeypatch.setattr(nifti, "read_gz_unscaled", broken)
    with pytest.raises(ValueError, match="a bug in gliograde"):
        nifti.read_array(img, path)


def test_an_impossible_data_offset_is_refused_before_nibabel_reads_it(tmp_path):
    import gzip
    import struct

    path = save_nifti(tmp_path / "x_flair.nii.gz", np.ones((8, 8, 4), np.int16))
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[108:112] = struct.pack("<f", float("inf"))
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match=r"x_flair\.nii\.gz: header declares an impossible data"):
        nifti.open_image(path)


def test_a_singular_affine_is_refused(tmp_path):
    import gzip
    import struct

    path = save_nifti(tmp_path / "x_t1.nii.gz", np.ones((8, 8, 4), np.int16))
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[252:256] = struct.pack("<hh", 0, 1)  # no qform: the sform is the affine
    raw[312:328] = struct.pack("<4f", 0.0, 0.0, 0.0, 0.0)  # its z row: all zero
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="affine is singular"):
        nifti.open_image(path)
