"""Read one NIfTI file: its header checked before any voxel is read, its voxels in LPS.

``.nii.gz`` files are inflated in one go (ISA-L's inflate when the ``isal`` package is there),
never beyond the size their header declares.
"""

from __future__ import annotations

import gzip
import math
import struct
import types
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.arrayproxy import ArrayProxy
from nibabel.filebasedimages import ImageFileError
from nibabel.spatialimages import HeaderDataError

from gliograde.core.errors import DataError

MAX_DIM = 2048
MAX_VOXELS = 512**3
"""A header declaring more than this is refused before any memory is allocated for it."""

TARGET_ORIENTATION = ("L", "P", "S")
"""Every volume is brought to BraTS's own orientation, so the last axis is axial."""

_inflate: types.ModuleType  # either module: the same API
try:  # ISA-L's inflate: about twice as fast as zlib's, same API
    from isal import isal_zlib as _inflate
except ImportError:
    _inflate = zlib
_READ_ERRORS = (
    OSError,
    EOFError,
    zlib.error,
    _inflate.error,
    ImageFileError,
    HeaderDataError,
)


NIFTI_SUFFIXES = (".nii.gz", ".nii")


def is_nifti(path: Path) -> bool:
    """True when the file name ends in .nii or .nii.gz (any case)."""
    name = path.name.lower()
    return path.is_file() and name.endswith(NIFTI_SUFFIXES)


def strip_nifti_suffix(name: str) -> str:
    """``BraTS20_Training_001_flair.nii.gz`` → ``BraTS20_Training_001_flair``."""
    lower = name.lower()
    for suffix in NIFTI_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def open_image(path: Path, channels: bool = False) -> nib.Nifti1Image:
    """Open a NIfTI file and check its header; no voxel data is read yet.

    Args:
        channels: the file may hold several volumes along a 4th axis (one per sequence).

    Raises:
        DataError: unreadable file, not 3D (or 4D with ``channels``), or absurd dimensions.
    """
    try:
        if path.stat().st_size == 0:
            raise DataError(f"{path.name}: empty file (0 bytes); copy it again")
        check_raw_header(path)
        img = load_nifti(path)
    except DataError:
        raise
    except _READ_ERRORS as err:
        raise DataError(f"{path.name}: not a readable NIfTI file ({one_line(err)})") from err
    shape = tuple(int(d) for d in img.shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3 and not (channels and len(shape) == 4):
        raise DataError(f"{path.name}: expected a 3D volume, found shape {shape}")
    if max(shape) > MAX_DIM or int(np.prod(shape, dtype=np.int64)) > MAX_VOXELS:
        raise DataError(f"{path.name}: header declares absurd dimensions {shape}; file is corrupt")
    axes = img.affine[:3, :3]
    if not np.all(np.isfinite(axes)) or np.linalg.matrix_rank(axes) < 3:
        raise DataError(
            f"{path.name}: header's affine is singular (no voxel geometry); file is corrupt"
        )
    return img


def load_nifti(path: Path) -> nib.Nifti1Image:
    """``nib.load`` of a NIfTI file (NIfTI-1 or NIfTI-2: both are a ``Nifti1Image``).

    Raises:
        ImageFileError: nibabel read the file as another kind of image (CIFTI, say).
    """
    img = nib.load(path)
    if not isinstance(img, nib.Nifti1Image):
        raise ImageFileError(f"not a NIfTI image: nibabel reads it as a {type(img).__name__}")
    return img


def check_raw_header(path: Path) -> None:
    """Refuse a NIfTI-1 header whose numbers cannot be true, before nibabel parses it.

    nibabel reads such headers too (it warns and fixes what it can), but a data offset of
    infinity or 1e30, or a non-finite voxel size or affine, makes its checks and ours fail in
    ways that would not name the file. NIfTI-2 and other headers are left to nibabel.

    Raises:
        DataError: an impossible data offset, voxel size or affine.
    """
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as f:
        header = f.read(348)
    if len(header) < 348:
        raise DataError(f"{path.name}: not a readable NIfTI file (header cut short); copy it again")
    for order in "<>":
        if struct.unpack_from(f"{order}i", header, 0)[0] == 348:
            break
    else:
        return  # not NIfTI-1: nibabel decides
    offset = struct.unpack_from(f"{order}f", header, 108)[0]
    if not (math.isfinite(offset) and 0 <= offset < 2**31):
        raise DataError(
            f"{path.name}: header declares an impossible data offset ({offset}); file is corrupt"
        )
    numbers = struct.unpack_from(f"{order}8f", header, 76) + struct.unpack_from(
        f"{order}18f", header, 256
    )
    if not all(math.isfinite(v) for v in numbers):
        raise DataError(
            f"{path.name}: header declares a non-finite voxel size or affine; file is corrupt"
        )


def read_array(img: nib.Nifti1Image, path: Path) -> np.ndarray:
    """Voxel data of an opened image, reoriented to LPS, as stored (int16 stays int16)."""
    try:
        data = read_gz_unscaled(img, path) if path.name.endswith(".gz") else None
        if data is None:
            data = np.asanyarray(img.dataobj)
    except _READ_ERRORS as err:
        raise DataError(f"{path.name}: truncated or corrupt data ({one_line(err)})") from err
    data = data.reshape(data.shape[:3])
    return reorient(data, img.affine)


def read_channel(img: nib.Nifti1Image, path: Path, index: int) -> np.ndarray:
    """Volume ``index`` of a 4D image's last axis, reoriented to LPS."""
    if len(img.shape) != 4 or not 0 <= index < img.shape[3]:
        raise DataError(f"{path.name}: no volume {index} (shape {tuple(img.shape)})")
    try:
        data = np.asanyarray(img.dataobj[..., index])
    except _READ_ERRORS as err:
        raise DataError(f"{path.name}: truncated or corrupt data ({one_line(err)})") from err
    return reorient(data, img.affine)


def read_gz_unscaled(img: nib.Nifti1Image, path: Path) -> np.ndarray | None:
    """The voxels of a ``.nii.gz`` without intensity scaling (BraTS), straight from its bytes.

    Returns None when the header scales intensities: nibabel then reads it (its rules).
    """
    proxy = file_proxy(img)
    slope, inter = float(proxy.slope), float(proxy.inter)
    if (slope, inter) != (1.0, 0.0):
        return None
    raw = gunzip_image(path, img)
    n = int(np.prod(img.shape, dtype=np.int64))
    data = np.frombuffer(raw, dtype=img.get_data_dtype(), count=n, offset=int(proxy.offset))
    return data.reshape(img.shape, order="F")


def gunzip_image(path: Path, img: nib.Nifti1Image) -> bytes:
    """A ``.nii.gz`` file's bytes, decompressed in one go, at most as many as its header declares.

    About twice as fast as nibabel's streaming read (with ISA-L's inflate when the ``isal``
    package is there, else zlib's), and a file that inflates beyond its header's size (a
    "gzip bomb") cannot fill the memory.

    Raises:
        EOFError: the stream ends before the header's data does (truncated file).
    """
    n_voxels = int(np.prod(img.shape, dtype=np.int64))
    expected = int(file_proxy(img).offset) + n_voxels * img.get_data_dtype().itemsize
    raw = _inflate.decompressobj(wbits=31).decompress(path.read_bytes(), expected)
    if len(raw) < expected:
        raise EOFError(f"the data ends after {len(raw)} of {expected} bytes")
    return raw


def file_proxy(img: nib.Nifti1Image) -> ArrayProxy:
    """The image's voxels as nibabel left them on disk (scaling, data offset): a loaded image's.

    Raises:
        TypeError: the image's voxels are in memory (an image made, not loaded).
    """
    proxy = img.dataobj
    if not isinstance(proxy, ArrayProxy):
        raise TypeError(f"the image's voxels are in memory ({type(proxy).__name__}), not a file's")
    return proxy


def to_lps(affine: np.ndarray) -> np.ndarray:
    """The axis permutation and flips (nibabel orientation transform) that bring data to LPS."""
    current = nib.orientations.io_orientation(affine)
    return nib.orientations.ornt_transform(
        current, nib.orientations.axcodes2ornt(TARGET_ORIENTATION)
    )


def reorient(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Flip/transpose ``data`` so that its axes run L, P, S (a no-op for BraTS files)."""
    transform = to_lps(affine)
    if np.array_equal(transform, [[0, 1], [1, 1], [2, 1]]):
        return data
    return nib.orientations.apply_orientation(data, transform)


def reoriented_affine(img: nib.Nifti1Image) -> np.ndarray:
    return img.affine @ nib.orientations.inv_ornt_aff(to_lps(img.affine), img.shape[:3])


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text[:160]
