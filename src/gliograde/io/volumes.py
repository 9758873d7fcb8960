"""Read a subject's NIfTI volumes and validate them.

Like nnU-Net's image readers, :func:`load_subject` returns the images as channels in the order
FLAIR, T1ce, T1, T2 (four ``(x, y, z)`` volumes as they were read, not copied into one array),
plus the brain, the segmentation and the geometry. Every problem found is collected (not only
the first), each as one line naming the file and what is wrong, so that ``gliograde check`` can
list them all.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from gliograde import MODALITIES
from gliograde.core.errors import DataError
from gliograde.io.cohort import SEG, Subject
from gliograde.io.consensus import mask_lone_background, nonzero_anywhere
from gliograde.io.nifti import open_image, read_array, read_channel, reorient, reoriented_affine

MIN_BRAIN_VOXELS = 1000


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
        channels: the four ``(x, y, z)`` volumes, FLAIR, T1ce, T1, T2, raw intensities: integer
            as stored when all four share one integer type (BraTS: int16), else float32. Each
            is laid out as NIfTI stores it (x fastest), so an axial slice is contiguous; they
            are read-only unless this subject's loading changed them.
        seg: uint8 ``(x, y, z)`` with labels in {0, 1, 2, 4}, or None when not used.
        affine: the voxel-to-world matrix after reorientation.
        warnings: things worth telling that did not stop the load.
        brain: the voxels non-zero in any channel (BraTS volumes are skull-stripped, their
            background 0).
    """

    channels: list[np.ndarray]
    seg: np.ndarray | None
    affine: np.ndarray
    warnings: list[str]
    brain: np.ndarray


def load_subject(subject: Subject, use_seg: bool = True) -> SubjectVolumes:
    """Read and validate all volumes of a subject.

    Args:
        subject: as found by :mod:`gliograde.io.layouts`.
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
            opened[role] = (open_image(path, channels=role in subject.channels), path)
        except DataError as err:
            problems.append(str(err))
    problems += geometry_problems(opened)
    if problems:
        raise SubjectError(subject.subject_id, problems)

    images: list[np.ndarray] = []
    seg: np.ndarray | None = None
    read: dict[Path, np.ndarray] = {}
    for role, (img, path) in opened.items():
        try:
            data = role_data(subject, role, img, path, read)
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
    channels = common_type(images)
    affine = reoriented_affine(opened[MODALITIES[0]][0])
    brain = nonzero_anywhere(channels)
    masked = mask_lone_background(channels, voxel_ml(affine), brain)
    if masked:  # one sequence's background was not the others': the brain is theirs now
        brain = nonzero_anywhere(channels)
    return SubjectVolumes(channels, seg, affine, warnings + masked, brain)


def role_data(
    subject: Subject,
    role: str,
    img: nib.Nifti1Image,
    path: Path,
    read: dict[Path, np.ndarray] | None = None,
) -> np.ndarray:
    """One role's volume, reoriented to LPS: its channel of a 4D file (read once into ``read``,
    path → voxels, for its other channels), and a segmentation's labels in BraTS's codes (see
    :attr:`Subject.seg_labels`)."""
    if role in subject.channels and read is not None:
        if path not in read:
            read[path] = read_all_channels(img, path)
        data = reorient(read[path][..., subject.channels[role]], img.affine)
    elif role in subject.channels:
        data = read_channel(img, path, subject.channels[role])
    else:
        data = read_array(img, path)
    if role == SEG and subject.seg_labels:
        data = brats_labels(data, subject.seg_labels, path)
    return data


def read_all_channels(img: nib.Nifti1Image, path: Path) -> np.ndarray:
    """A 4D file's voxels, as stored."""
    try:
        return np.asanyarray(img.dataobj)
    except (OSError, EOFError, ValueError, zlib.error) as err:
        raise DataError(f"{path.name}: truncated or corrupt data ({err})") from err


def file_volume(subject: Subject, role: str) -> tuple[np.ndarray, np.ndarray]:
    """One role's volume as its file stores it (not reoriented), and the file's affine."""
    path = subject.files[role]
    img = open_image(path, channels=role in subject.channels)
    if role in subject.channels:
        data = np.asanyarray(img.dataobj[..., subject.channels[role]])
    else:
        data = np.asanyarray(img.dataobj).reshape(img.shape[:3])
    if role == SEG and subject.seg_labels:
        data = brats_labels(data, subject.seg_labels, path)
    return data, img.affine


def brats_labels(data: np.ndarray, codes: dict[int, int], path: Path) -> np.ndarray:
    """A segmentation's labels turned into BraTS's through ``codes`` (file label → BraTS)."""
    if data.dtype.kind == "f" and not (
        np.all(np.isfinite(data)) and np.array_equal(data, np.round(data))
    ):
        raise DataError(f"{path.name}: segmentation has labels that are not whole numbers")
    found = set(np.unique(data).astype(int).tolist())
    unknown = sorted(found - set(codes))
    if unknown:
        raise DataError(
            f"{path.name}: label {unknown[0]} is not among those dataset.json names "
            f"({', '.join(map(str, sorted(codes)))})"
        )
    lookup = np.zeros(max(codes) + 1, dtype=np.uint8)
    for label, brats in codes.items():
        lookup[label] = brats
    return lookup[np.asarray(data).astype(np.int64)]


def voxel_ml(affine: np.ndarray) -> float:
    return float(np.prod(np.linalg.norm(np.asarray(affine)[:3, :3], axis=0))) / 1000.0


def common_type(volumes: list[np.ndarray]) -> list[np.ndarray]:
    """The volumes as they are when all share one integer type (BraTS: int16; half the memory
    of float32, and prepare's statistics take a faster exact path on them), else each made
    float32 (a volume already float32 is not copied)."""
    dtypes = {v.dtype for v in volumes}
    if len(dtypes) == 1 and next(iter(dtypes)).kind in "iu":
        return list(volumes)
    return [v.astype(np.float32, copy=False) for v in volumes]


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
                f"{ref_img.shape[:3]}; all volumes must share one grid (raw scans: run "
                "`gliograde preprocess` first)"
            )
        elif not np.allclose(img.affine, ref_img.affine, atol=1e-3):
            problems.append(
                f"{path.name}: affine differs from {ref_path.name}; "
                "all volumes must share one grid (raw scans: run `gliograde preprocess` first)"
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
