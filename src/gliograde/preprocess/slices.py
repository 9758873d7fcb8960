"""One subject → its selected axial slices, normalised and stacked ``(n, 4, H, W)``.

:func:`preprocess_subject` is the one path from NIfTI files to model input: ``prepare`` writes
its output to the store, ``predict`` and ``explain`` feed it to the models.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from gliograde import MODALITIES
from gliograde.core.errors import UsageError
from gliograde.io.cohort import SEG, Subject
from gliograde.io.consensus import brain_ml_each
from gliograde.io.volumes import SubjectError, load_subject, voxel_ml
from gliograde.preprocess.normalise import (
    CLIP_PERCENTILES,
    brain_box_zyx,
    brain_stats,
    zscore_slices,
)
from gliograde.preprocess.profile import subject_profile

SLICE_MODES = ("tumor", "brain", "all")
MIN_BRAIN_FRACTION = 0.02
"""In ``brain`` mode a slice counts as brain when at least this share of it is brain."""


@dataclass
class PrepareConfig:
    """Options of ``prepare``; recorded in the manifest and re-used by ``predict``."""

    slices: str = "brain"
    min_tumor_pixels: int = 100
    size: int | None = None
    folds: int = 5
    seed: int = 0
    min_brain_fraction: float = MIN_BRAIN_FRACTION
    clip_percentiles: tuple[float, float] = CLIP_PERCENTILES
    target: str | None = None  # a label CSV column to learn instead of the grade
    classes: tuple[str, ...] | None = None  # the target's classes in index order

    def __post_init__(self):
        if self.target is not None and self.target.strip().lower() == "grade":
            self.target = None  # the grade column is the default target, HGG as class 1
        self.classes = tuple(self.classes) if self.classes else None
        if self.classes and self.target is None:
            raise UsageError("--classes goes with --target COLUMN (the grade's are LGG,HGG)")
        if self.slices not in SLICE_MODES:
            raise UsageError(f"--slices must be one of {', '.join(SLICE_MODES)}")
        if self.size is not None and not 8 <= self.size <= 1024:
            raise UsageError("--size must be between 8 and 1024 pixels")
        low, high = self.clip_percentiles  # a list where read from a manifest
        self.clip_percentiles = (low, high)

    def to_dict(self) -> dict:
        """The options as the store's files record them (tuples as lists)."""
        out = asdict(self)
        out["clip_percentiles"] = list(self.clip_percentiles)
        out["classes"] = list(self.classes) if self.classes is not None else None
        return out

    @classmethod
    def from_dict(cls, data: dict) -> PrepareConfig:
        """The options a store's file recorded.

        Raises:
            TypeError: an option this version does not know.
        """
        return cls(**data)


@dataclass
class SubjectSlices:
    """A subject's selected slices, preprocessed, in memory."""

    images: np.ndarray  # float16 (n, 4, H, W)
    seg: np.ndarray  # uint8 (n, H, W), at the stored size
    z: np.ndarray  # int (n,)
    counts: dict[str, list[int]]  # tumor_1, tumor_2, tumor_4, brain per slice, native pixels
    warnings: list[str] = field(default_factory=list)
    profile: dict = field(default_factory=dict)  # see gliograde.preprocess.profile


def select_slices(
    tumor_per_z: np.ndarray, brain_per_z: np.ndarray, plane_pixels: int, config: PrepareConfig
) -> np.ndarray:
    """Indices z of the axial slices to keep."""
    if config.slices == "tumor":
        keep = tumor_per_z >= config.min_tumor_pixels
    elif config.slices == "brain":
        keep = brain_per_z >= config.min_brain_fraction * plane_pixels
    else:
        keep = np.ones_like(brain_per_z, dtype=bool)
    return np.flatnonzero(keep)


def resize_slices(images: np.ndarray, seg: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize (n, C, H, W) images (bilinear, antialiased) and (n, H, W) labels (nearest)."""
    import torch
    import torch.nn.functional as F

    if images.shape[-2:] == (size, size):
        return images, seg
    with torch.no_grad():
        x = F.interpolate(
            torch.from_numpy(np.ascontiguousarray(images)),
            size=(size, size),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )
        s = F.interpolate(
            torch.from_numpy(np.ascontiguousarray(seg))[:, None].float(),
            size=(size, size),
            mode="nearest-exact",
        )
    return x.numpy(), s[:, 0].to(torch.uint8).numpy()


def preprocess_subject(
    subject: Subject, config: PrepareConfig, use_seg: bool = True
) -> SubjectSlices:
    """Load, validate, normalise and slice one subject (what ``prepare`` and ``predict`` share).

    Raises:
        SubjectError: the subject's files cannot be used.
    """
    has_seg = use_seg and SEG in subject.files
    if config.slices == "tumor" and not has_seg:
        raise SubjectError(
            subject.subject_id,
            subject.problems + ["no segmentation: --slices tumor needs one (use --slices brain)"],
        )
    volumes = load_subject(subject, use_seg=has_seg)
    brain = volumes.brain
    seg = volumes.seg if volumes.seg is not None else np.zeros(brain.shape, dtype=np.uint8)
    # NIfTI stores x fastest, so an axial plane is contiguous: work on (z, y, x) views (.T),
    # where taking slices is a copy of whole planes, not a gather of scattered voxels.
    brain_zyx, seg_zyx = brain.T, seg.T
    n_z = brain_zyx.shape[0]
    tumor_per_z = np.count_nonzero(seg_zyx.reshape(n_z, -1), axis=1)
    brain_per_z = np.count_nonzero(brain_zyx.reshape(n_z, -1), axis=1)
    zs = select_slices(tumor_per_z, brain_per_z, brain.shape[0] * brain.shape[1], config)
    if len(zs) == 0:
        what = "tumour" if config.slices == "tumor" else "brain"
        raise SubjectError(subject.subject_id, [f"no slice with enough {what} to keep"])
    slices, stats = normalised_slices(volumes.channels, brain_zyx, brain_per_z, zs, config)
    each = brain_ml_each(volumes.channels, voxel_ml(volumes.affine))
    profile = subject_profile(brain.shape, volumes.affine, int(brain_per_z.sum()), stats, each)
    seg_slices = np.ascontiguousarray(seg_zyx[zs].transpose(0, 2, 1))
    # Counts are taken at native resolution, so --min-tumor-pixels means the same at any --size.
    counts = {
        f"tumor_{k}": np.count_nonzero(seg_slices == k, axis=(1, 2)).tolist() for k in (1, 2, 4)
    }
    counts["brain"] = brain_per_z[zs].tolist()
    if config.size is not None:
        slices, seg_slices = resize_slices(slices, seg_slices, config.size)
    images16 = slices.astype(np.float16, copy=False)
    return SubjectSlices(images16, seg_slices, zs, counts, volumes.warnings, profile)


def normalised_slices(
    channels: list[np.ndarray],
    brain_zyx: np.ndarray,
    brain_per_z: np.ndarray,
    zs: np.ndarray,
    config: PrepareConfig,
) -> tuple[np.ndarray, list[tuple]]:
    """The kept slices ``(n, 4, x, y)``, each modality z-scored over the whole brain, and each
    modality's brain statistics ``(low, high, mean, std)``.

    Statistics cover the whole brain (its bounding box holds all of it), but only the kept
    slices are normalised.
    """
    box = brain_box_zyx(brain_zyx, brain_per_z)
    brain_in_box = brain_zyx[box]
    n_brain = int(np.count_nonzero(brain_in_box))
    # (n, y, x) → (n, x, y): the store keeps the (x, y) plane of the reoriented volume. The
    # mask and each channel's stored integers (int16: half float32's bytes) are transposed
    # once, so that the z-scoring runs on contiguous memory.
    outside = np.ascontiguousarray(~brain_zyx[zs].transpose(0, 2, 1))
    # Without a resize, float16 (the store's type) is written straight away.
    dtype = np.float16 if config.size is None else np.float32
    n_x, n_y = brain_zyx.shape[2], brain_zyx.shape[1]
    slices = np.empty((len(zs), len(MODALITIES), n_x, n_y), dtype=dtype)
    all_stats = []
    for c in range(len(MODALITIES)):
        volume_zyx = channels[c].T
        stats = brain_stats(volume_zyx[box], brain_in_box, config.clip_percentiles, n_brain)
        kept = np.ascontiguousarray(volume_zyx[zs].transpose(0, 2, 1))
        slices[:, c] = zscore_slices(kept, outside, stats, dtype)
        all_stats.append(stats)
    return slices, all_stats
