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

_READ_ERRORS = (OSError, EOFError, zlib.error, ValueError, ImageFileError, HeaderDataError)


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
        images: float32 ``(4, x, y, z)``, channels FLAIR, T1ce, T1, T2, raw intensities.
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
        data = np.asanyarray(img.dataobj)
    except _READ_ERRORS as err:
        raise DataError(f"{path.name}: truncated or corrupt data ({one_line(err)})") from err
    data = data.reshape(data.shape[:3])
    return reorient(data, img.affine)


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
    stacked = np.stack(images).astype(np.float32, copy=False)
    affine = reoriented_affine(opened[MODALITIES[0]][0])
    return SubjectVolumes(stacked, seg, affine, warnings)


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


def validate_seg(data: np.ndarray, path: Path) -> tuple[np.ndarray | None, list[str], list[str]]:
    """Check a segmentation's labels; label 3 (BraTS 2023's enhancing tumour) becomes 4."""
    if data.dtype.kind == "f":
        if not np.all(np.isfinite(data)):
            return None, [f"{path.name}: segmentation has NaN or infinite voxels"], []
        if not np.array_equal(data, np.round(data)):
            return None, [f"{path.name}: segmentation has non-integer labels"], []
    labels = np.unique(data)
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
