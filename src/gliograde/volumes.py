"""Read a subject's NIfTI volumes and validate them.

Like nnU-Net's image readers, :func:`load_subject` returns the images as one array
``(channels, x, y, z)`` in the channel order FLAIR, T1ce, T1, T2, plus the segmentation and the
geometry. Every problem found is collected (not only the first), each as one line naming the
file and what is wrong, so that ``gliograde check`` can list them all.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.spatialimages import HeaderDataError

from gliograde import MODALITIES
from gliograde.errors import DataError
from gliograde.layouts import SEG, Subject

SEG_LABELS = (0, 1, 2, 4)
"""BraTS labels: background, necrotic/non-enhancing core, edema, enhancing tumour."""

MAX_DIM = 2048
MAX_VOXELS = 512**3
"""A header declaring more than this is refused before any memory is allocated for it."""

MIN_BRAIN_VOXELS = 1000
TARGET_ORIENTATION = ("L", "P", "S")
"""Every volume is brought to BraTS's own orientation, so the last axis is axial."""

try:  # ISA-L's inflate: about twice as fast as zlib's, same API
    from isal import isal_zlib as _inflate
except ImportError:
    _inflate = zlib
_READ_ERRORS = (OSError, EOFError, zlib.error, _inflate.error, ValueError, ImageFileError,
                HeaderDataError)  # fmt: skip


class SubjectError(DataError):
    """A subject whose files cannot be used; ``problems`` lists every reason, one line each."""

    def __init__(self, subject_id: str, problems: list[str]):
        self.subject_id = subject_id
        self.problems = problems
        super().__init__(f"{subject_id}: " + "; ".join(problems))


@dataclass
class SubjectVolumes:
    """A subject's volumes, validated and in a common orientation.

    Attributes:
        images: ``(4, x, y, z)``, channels FLAIR, T1ce, T1, T2, raw intensities: integer as stored
            when all four share one integer type (BraTS: int16), else float32.
        seg: uint8 ``(x, y, z)`` with labels in {0, 1, 2, 4}, or None when not used.
        affine: the voxel-to-world matrix after reorientation.
        warnings: things worth telling that did not stop the load.
    """

    images: np.ndarray
    seg: np.ndarray | None
    affine: np.ndarray
    warnings: list[str] = field(default_factory=list)


def open_image(path: Path) -> nib.Nifti1Image:
    """Open a NIfTI file and check its header; no voxel data is read yet.

    Raises:
        DataError: unreadable file, not 3D, or absurd dimensions.
    """
    try:
        if path.stat().st_size == 0:
            raise DataError(f"{path.name}: empty file (0 bytes); copy it again")
        img = nib.load(path)
    except DataError:
        raise
    except _READ_ERRORS as err:
        raise DataError(f"{path.name}: not a readable NIfTI file ({one_line(err)})") from err
    shape = tuple(int(d) for d in img.shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3:
        raise DataError(f"{path.name}: expected a 3D volume, found shape {shape}")
    if max(shape) > MAX_DIM or int(np.prod(shape, dtype=np.int64)) > MAX_VOXELS:
        raise DataError(f"{path.name}: header declares absurd dimensions {shape}; file is corrupt")
    return img


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


def read_gz_unscaled(img: nib.Nifti1Image, path: Path) -> np.ndarray | None:
    """The voxels of a ``.nii.gz`` without intensity scaling (BraTS), straight from its bytes.

    Returns None when the header scales intensities: nibabel then reads it (its rules).
    """
    proxy = img.dataobj
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
    expected = int(img.dataobj.offset) + n_voxels * img.get_data_dtype().itemsize
    raw = _inflate.decompressobj(wbits=31).decompress(path.read_bytes(), expected)
    if len(raw) < expected:
        raise EOFError(f"the data ends after {len(raw)} of {expected} bytes")
    return raw


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


def load_subject(subject: Subject, use_seg: bool = True) -> SubjectVolumes:
    """Read and validate all volumes of a subject.

    Args:
        subject: as found by :mod:`gliograde.layouts`.
        use_seg: read and validate the segmentation when the subject has one.

    Raises:
        SubjectError: with every problem found (layout problems included).
    """
    problems = list(subject.problems)
    warnings = list(subject.warnings)
    opened: dict[str, tuple[nib.Nifti1Image, Path]] = {}
    roles = [*MODALITIES, SEG] if use_seg else list(MODALITIES)
    for role in roles:
        path = subject.files.get(role)
        if path is None:
            continue
        try:
            opened[role] = (open_image(path), path)
        except DataError as err:
            problems.append(str(err))
    problems += geometry_problems(opened)
    if problems:
        raise SubjectError(subject.subject_id, problems)

    images, seg = [], None
    for role, (img, path) in opened.items():
        try:
            data = read_array(img, path)
        except DataError as err:
            problems.append(str(err))
            continue
        if role == SEG:
            seg, seg_problems, seg_warnings = validate_seg(data, path)
            problems += seg_problems
            warnings += seg_warnings
        else:
            problems += intensity_problems(data, path)
            images.append(data)
    if problems:
        raise SubjectError(subject.subject_id, problems)
    stacked = stack_channels(images)
    affine = reoriented_affine(opened[MODALITIES[0]][0])
    return SubjectVolumes(stacked, seg, affine, warnings)


def stack_channels(volumes: list[np.ndarray]) -> np.ndarray:
    """``(C, x, y, z)`` from C volumes, each channel laid out in memory as NIfTI stores it.

    NIfTI data is Fortran-ordered (x varies fastest): a plain ``np.stack`` would transpose
    every voxel; here each channel is one contiguous copy, and an axial slice ``[..., z]`` is
    contiguous too. Integer volumes (BraTS: int16) stay integer (half the memory; prepare's
    statistics take a faster exact path on them); mixed or float volumes become float32.
    """
    dtypes = {v.dtype for v in volumes}
    dtype = dtypes.pop() if len(dtypes) == 1 and next(iter(dtypes)).kind in "iu" else np.float32
    shape = volumes[0].shape
    out = np.empty((len(volumes), *shape[::-1]), dtype=dtype).transpose(0, 3, 2, 1)
    for c, v in enumerate(volumes):
        out[c] = v
    return out


def geometry_problems(opened: dict[str, tuple[nib.Nifti1Image, Path]]) -> list[str]:
    """Shapes and affines must match the FLAIR's (or the first file's)."""
    if not opened:
        return []
    ref_role = MODALITIES[0] if MODALITIES[0] in opened else next(iter(opened))
    ref_img, ref_path = opened[ref_role]
    problems = []
    for _, (img, path) in opened.items():
        if img.shape[:3] != ref_img.shape[:3]:
            problems.append(
                f"{path.name}: shape {img.shape[:3]} differs from {ref_path.name} "
                f"{ref_img.shape[:3]}; all volumes must share one grid"
            )
        elif not np.allclose(img.affine, ref_img.affine, atol=1e-3):
            problems.append(
                f"{path.name}: affine differs from {ref_path.name}; "
                "all volumes must share one grid (co-register them first)"
            )
    return problems


def intensity_problems(data: np.ndarray, path: Path) -> list[str]:
    if data.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(data)))
        if bad:
            return [f"{path.name}: {bad} voxels are NaN or infinite"]
    brain = int(np.count_nonzero(data))
    if brain < MIN_BRAIN_VOXELS:
        return [f"{path.name}: no brain ({brain} non-zero voxels); the volume is empty"]
    return []


def label_set(data: np.ndarray) -> np.ndarray:
    """The distinct labels of a segmentation (fast for the usual uint8 with labels ≤ 4)."""
    if data.dtype == np.uint8:
        top = int(data.max())
        if top <= 4:  # the usual case: test each possible label instead of sorting voxels
            return np.array([v for v in range(top + 1) if v == top or (data == v).any()])
        return np.flatnonzero(np.bincount(data.ravel(order="K"), minlength=256))
    return np.unique(data)


def validate_seg(data: np.ndarray, path: Path) -> tuple[np.ndarray | None, list[str], list[str]]:
    """Check a segmentation's labels; label 3 (BraTS 2023's enhancing tumour) becomes 4."""
    if data.dtype.kind == "f":
        if not np.all(np.isfinite(data)):
            return None, [f"{path.name}: segmentation has NaN or infinite voxels"], []
        if not np.array_equal(data, np.round(data)):
            return None, [f"{path.name}: segmentation has non-integer labels"], []
    labels = label_set(data)
    unexpected = sorted(set(labels.tolist()) - {0, 1, 2, 3, 4})
    if unexpected:
        shown = ", ".join(str(int(v)) for v in unexpected[:5])
        return None, [f"{path.name}: unexpected labels {shown}; BraTS uses 0, 1, 2, 4"], []
    seg = data.astype(np.uint8)
    warnings = []
    if 3 in labels:
        seg[seg == 3] = 4
        warnings.append(f"{path.name}: label 3 read as 4 (enhancing tumour, BraTS 2023 code)")
    if not np.any(seg):
        return None, [f"{path.name}: segmentation is empty (no tumour voxel)"], warnings
    return seg, [], warnings
