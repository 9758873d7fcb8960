"""``gliograde prepare``: NIfTI volumes → a slice store on disk, and reading it back.

A store is a folder::

    STORE/
      manifest.json          subjects, skipped {id: reason}, n_slices, options, source, versions
      index.csv              one row per slice: subject, grade, label, z, row, tumour/brain pixels
      splits.json            patient-level folds, nnU-Net's splits_final.json shape
      subjects/<id>/
        images.npy           float16 (n, 4, H, W), channels FLAIR, T1ce, T1, T2, z-scored
        seg.npy              uint8   (n, H, W), BraTS labels 0/1/2/4 (all 0 when no seg)
        subject.json         the subject's slices and their counts

``.npy`` files are uncompressed and memory-mappable: a slice is read without decompression and
without loading the rest. Each subject is written to a temporary folder and renamed when
complete, so an interrupted run never leaves a half-written subject that looks complete, and a
re-run skips subjects already done.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from gliograde import GRADES, MODALITIES
from gliograde.errors import DataError, GliogradeError, UsageError
from gliograde.layouts import SEG, Subject, discover
from gliograde.volumes import SubjectError, geometry_problems, load_subject, open_image

SLICE_MODES = ("tumor", "brain", "all")
MIN_BRAIN_FRACTION = 0.02
"""In ``brain`` mode a slice counts as brain when at least this share of it is brain."""
CLIP_PERCENTILES = (0.5, 99.5)
# Pixel counts in the index are at native resolution (before --size), from the segmentation.
INDEX_COLUMNS = ("subject", "grade", "label", "z", "row", "tumor_1", "tumor_2", "tumor_4",
                 "tumor", "brain")  # fmt: skip
STORE_VERSION = 1


@dataclass
class PrepareConfig:
    """Options of ``prepare``; recorded in the manifest and re-used by ``predict``."""

    slices: str = "tumor"
    min_tumor_pixels: int = 100
    size: int | None = None
    folds: int = 5
    seed: int = 0
    min_brain_fraction: float = MIN_BRAIN_FRACTION
    clip_percentiles: tuple[float, float] = CLIP_PERCENTILES

    def __post_init__(self):
        if self.slices not in SLICE_MODES:
            raise UsageError(f"--slices must be one of {', '.join(SLICE_MODES)}")
        if self.size is not None and not 8 <= self.size <= 1024:
            raise UsageError("--size must be between 8 and 1024 pixels")
        self.clip_percentiles = tuple(self.clip_percentiles)


@dataclass
class SubjectSlices:
    """A subject's selected slices, preprocessed, in memory."""

    images: np.ndarray  # float16 (n, 4, H, W)
    seg: np.ndarray  # uint8 (n, H, W), at the stored size
    z: np.ndarray  # int (n,)
    counts: dict[str, list[int]]  # tumor_1, tumor_2, tumor_4, brain per slice, native pixels
    warnings: list[str] = field(default_factory=list)


def zscore_brain(volume: np.ndarray, brain: np.ndarray, clip=CLIP_PERCENTILES) -> np.ndarray:
    """Z-score one modality over brain voxels, robust to outliers.

    Intensities are clipped to the brain's [0.5, 99.5] percentiles before the mean and standard
    deviation are taken (a few hot voxels then cannot dominate); outside the brain is 0.
    """
    return apply_zscore(volume, brain, brain_stats(volume, brain, clip))


def brain_stats(volume: np.ndarray, brain: np.ndarray, clip=CLIP_PERCENTILES) -> tuple:
    """(low, high, mean, std): the brain's clip percentiles, then mean and std after clipping.

    Integer volumes (BraTS stores int16) take an exact histogram path, several times faster
    than sorting the brain's voxels, with the same answer as ``np.percentile`` (linear).
    """
    if volume.dtype.kind in "iu" and volume.size:
        return integer_brain_stats(volume, brain, clip)
    values = volume[brain].astype(np.float64)
    lo, hi = np.percentile(values, clip)
    values = np.clip(values, lo, hi)
    return float(lo), float(hi), float(values.mean()), float(values.std())


def integer_brain_stats(volume: np.ndarray, brain: np.ndarray, clip) -> tuple:
    vmin = int(volume.min())
    # order="K": NIfTI data is Fortran-ordered; a histogram does not care, a C ravel would copy.
    counts = np.bincount(np.subtract(volume, vmin, dtype=np.intp).ravel(order="K"))
    # Outside the brain every modality is 0 (that is how the brain is found): remove those.
    outside = volume.size - int(np.count_nonzero(brain))
    counts[-vmin] -= outside
    n = volume.size - outside
    values = np.arange(len(counts), dtype=np.float64) + vmin
    cumulative = np.cumsum(counts)

    def order_statistic(k: int) -> float:  # the k-th smallest brain value (0-based)
        return float(values[np.searchsorted(cumulative, k, side="right")])

    bounds = []
    for q in clip:
        pos = q / 100.0 * (n - 1)
        k = int(np.floor(pos))
        below, above = order_statistic(k), order_statistic(min(k + 1, n - 1))
        bounds.append(below + (pos - k) * (above - below))
    lo, hi = bounds
    clipped = np.clip(values, lo, hi)
    mean = float(np.dot(counts, clipped) / n)
    std = float(np.sqrt(np.dot(counts, (clipped - mean) ** 2) / n))
    return lo, hi, mean, std


def apply_zscore(volume: np.ndarray, brain: np.ndarray, stats: tuple) -> np.ndarray:
    """``(clip(volume, low, high) − mean) / std`` inside the brain, 0 outside; float32."""
    lo, hi, mean, std = stats
    out = np.clip(volume.astype(np.float32), lo, hi)
    out -= np.float32(mean)
    out /= np.float32(max(std, 1e-6))
    out[~brain] = 0.0
    return out


def brain_box_zyx(brain_zyx: np.ndarray, brain_per_z: np.ndarray) -> tuple[slice, ...]:
    """The smallest (z, y, x) box that holds the whole brain (one pass over the mask)."""
    plane = brain_zyx.any(axis=0)  # (y, x): brain anywhere along z

    def span(hits: np.ndarray) -> slice:
        return slice(int(hits[0]), int(hits[-1]) + 1) if len(hits) else slice(0, 0)

    return (span(np.flatnonzero(brain_per_z)), span(np.flatnonzero(plane.any(axis=1))),
            span(np.flatnonzero(plane.any(axis=0))))  # fmt: skip


def brain_mask(images: np.ndarray) -> np.ndarray:
    """Brain = voxels non-zero in any modality (BraTS volumes are skull-stripped, background 0)."""
    if images.dtype.kind in "iu":
        return np.bitwise_or.reduce(images, axis=0) != 0
    return np.any(images != 0, axis=0)


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
    images = volumes.images
    brain = brain_mask(images)
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
    # Statistics over the whole brain (its bounding box holds all of it), but only the kept
    # slices are normalised.
    box = brain_box_zyx(brain_zyx, brain_per_z)
    kept_brain = brain_zyx[zs]
    # Without a resize, float16 (the store's type) is written straight away: the cast then
    # happens in the same pass as the transposition below, not in a pass of its own.
    dtype = np.float16 if config.size is None else np.float32
    slices = np.empty((len(zs), len(MODALITIES), *brain.shape[:2]), dtype=dtype)
    for c in range(len(MODALITIES)):
        volume_zyx = images[c].T
        stats = brain_stats(volume_zyx[box], brain_zyx[box], config.clip_percentiles)
        # (n, y, x) → (n, x, y): the store keeps the (x, y) plane of the reoriented volume.
        slices[:, c] = apply_zscore(volume_zyx[zs], kept_brain, stats).transpose(0, 2, 1)
    del images
    seg_slices = np.ascontiguousarray(seg_zyx[zs].transpose(0, 2, 1))
    # Counts are taken at native resolution, so --min-tumor-pixels means the same at any --size.
    counts = {
        f"tumor_{k}": np.count_nonzero(seg_slices == k, axis=(1, 2)).tolist() for k in (1, 2, 4)
    }
    counts["brain"] = brain_per_z[zs].tolist()
    if config.size is not None:
        slices, seg_slices = resize_slices(slices, seg_slices, config.size)
    images16 = slices.astype(np.float16, copy=False)
    return SubjectSlices(images16, seg_slices, zs, counts, volumes.warnings)


@dataclass
class SubjectOutcome:
    """What happened to one subject in ``prepare``."""

    subject_id: str
    status: str  # "written", "complete" (already there) or "bad"
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def subject_dir(store: Path, subject_id: str) -> Path:
    return store / "subjects" / subject_id


def is_complete(store: Path, subject_id: str) -> bool:
    """A subject folder exists only once renamed into place, after all its files were written."""
    return (subject_dir(store, subject_id) / "subject.json").is_file()


def write_subject(store: Path, subject: Subject, slices: SubjectSlices) -> None:
    """Write a subject's arrays and record to a temporary folder, then rename it into place."""
    final = subject_dir(store, subject.subject_id)
    tmp = final.parent / f".tmp-{subject.subject_id}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_npy(tmp / "images.npy", slices.images)
    save_npy(tmp / "seg.npy", slices.seg)
    record = {
        "subject": subject.subject_id,
        "grade": subject.grade,
        "z": slices.z.tolist(),
        **slices.counts,
        "shape": list(slices.images.shape),
    }
    write_json(tmp / "subject.json", record)
    fsync_dir(tmp)
    if final.exists():  # a stale folder from an older, incomplete layout
        shutil.rmtree(final)
    tmp.rename(final)


def save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, obj) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)


def prepare_one(subject: Subject, store: Path, config: PrepareConfig) -> SubjectOutcome:
    """Worker: preprocess and write one subject unless it is already complete."""
    if is_complete(store, subject.subject_id):
        return SubjectOutcome(subject.subject_id, "complete")
    try:
        slices = preprocess_subject(subject, config)
    except SubjectError as err:
        return SubjectOutcome(subject.subject_id, "bad", err.problems)
    write_subject(store, subject, slices)
    return SubjectOutcome(subject.subject_id, "written", warnings=slices.warnings)


def header_problems(subject: Subject, need_seg: bool) -> list[str]:
    """Problems found from the layout and the NIfTI headers alone (fast: no voxel data read)."""
    problems = list(subject.problems)
    if subject.grade is None and not problems:
        problems.append("grade unknown")
    if need_seg and SEG not in subject.files:
        problems.append("no segmentation: --slices tumor needs one (use --slices brain)")
    opened = {}
    for role, path in subject.files.items():
        try:
            opened[role] = (open_image(path), path)
        except DataError as err:
            problems.append(str(err))
    return problems + geometry_problems(opened)


def prepare(
    data: Path,
    out: Path,
    config: PrepareConfig | None = None,
    labels: Path | None = None,
    workers: int = 1,
    skip_bad: bool = False,
    quiet: bool = False,
) -> dict:
    """Build (or complete) a slice store from a data folder.

    Without ``skip_bad``, a cohort with any bad subject is refused: header-level problems are
    found before anything is written, and a subject found bad while its voxels are read makes
    the run remove the subjects it wrote, so the store is left as it was.

    Returns:
        The manifest (also written to ``out/manifest.json``).

    Raises:
        DataError: bad subjects without ``skip_bad`` (the message lists each), or no usable one.
    """
    from gliograde.parallel import map_with_progress

    config = config or PrepareConfig()
    cohort = discover(Path(data), labels)
    out = Path(out)
    check_store_options(out, config)
    need_seg = config.slices == "tumor"
    early = {s.subject_id: header_problems(s, need_seg) for s in cohort.subjects}
    early = {sid: p for sid, p in early.items() if p}
    if early and not skip_bad:
        raise DataError(bad_cohort_message(early))
    todo = [s for s in cohort.subjects if s.subject_id not in early]
    (out / "subjects").mkdir(parents=True, exist_ok=True)
    remove_leftovers(out)
    write_json(out / "options.json", {"store_version": STORE_VERSION, **asdict(config)})
    work = partial(prepare_one, store=out, config=config)
    outcomes = list(map_with_progress(work, todo, workers, "prepare", quiet=quiet))
    bad = {o.subject_id: o.problems for o in outcomes if o.status == "bad"}
    if bad and not skip_bad:
        for o in outcomes:
            if o.status == "written":
                shutil.rmtree(subject_dir(out, o.subject_id))
        raise DataError(bad_cohort_message(bad))
    skipped = early | bad
    good = [s for s in todo if s.subject_id not in skipped]
    if not good:
        raise DataError(f"{data}: no usable subject; run `gliograde check {data}` for details")
    index = write_index(out, good)
    splits, split_note = write_splits(out, good, config.folds, config.seed)
    manifest = {
        "store_version": STORE_VERSION,
        "source": str(Path(data).resolve()),
        "layout": cohort.layout,
        "subjects": [s.subject_id for s in good],
        "grades": {s.subject_id: s.grade for s in good},
        "skipped": {sid: "; ".join(p) for sid, p in sorted(skipped.items())},
        "warnings": {o.subject_id: o.warnings for o in outcomes if o.warnings},
        "n_slices": len(index),
        "slice_shape": list(slice_shape(out, good[0].subject_id)),
        "channels": list(MODALITIES),
        "options": asdict(config),
        "folds": len(splits),
        "notes": [*cohort.notes, *([split_note] if split_note else [])],
        "synthetic": is_synthetic_source(Path(data)),
        "versions": package_versions(),
    }
    write_json(out / "manifest.json", manifest)
    return manifest


def remove_leftovers(store: Path) -> None:
    """Remove temporary folders an interrupted run left (one prepare per store at a time)."""
    for tmp in (store / "subjects").glob(".tmp-*"):
        shutil.rmtree(tmp)


def bad_cohort_message(bad: dict[str, list[str]]) -> str:
    lines = [f"{sid}: {p}" for sid, problems in sorted(bad.items()) for p in problems]
    head = f"{len(bad)} subject(s) cannot be used; nothing was written. "
    return head + "Fix them or pass --skip-bad to prepare the others:\n  " + "\n  ".join(lines)


def check_store_options(out: Path, config: PrepareConfig) -> None:
    """Refuse to mix subjects prepared with other options into one store."""
    path = out / "options.json"
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    new = json.loads(json.dumps({"store_version": STORE_VERSION, **asdict(config)}))
    differ = sorted(k for k in new if old.get(k) != new[k] and k not in ("folds", "seed"))
    if differ:
        raise GliogradeError(
            f"{out}: this store was prepared with other options ({', '.join(differ)}); "
            "use a new --out folder"
        )


def slice_shape(store: Path, subject_id: str) -> tuple[int, ...]:
    record = json.loads((subject_dir(store, subject_id) / "subject.json").read_text())
    return tuple(record["shape"][1:])


def is_synthetic_source(data: Path) -> bool:
    root = data if data.is_dir() else data.parent
    return (root / "SYNTHETIC.txt").is_file()


def write_index(store: Path, subjects: list[Subject]) -> list[dict]:
    """Write ``index.csv``: one row per slice, subjects in sorted order (deterministic)."""
    rows = []
    for subject in sorted(subjects, key=lambda s: s.subject_id):
        record = json.loads((subject_dir(store, subject.subject_id) / "subject.json").read_text())
        for row, z in enumerate(record["z"]):
            counts = {k: record[k][row] for k in ("tumor_1", "tumor_2", "tumor_4", "brain")}
            rows.append(
                {
                    "subject": subject.subject_id,
                    "grade": subject.grade,
                    "label": GRADES.index(subject.grade),
                    "z": z,
                    "row": row,
                    **counts,
                    "tumor": counts["tumor_1"] + counts["tumor_2"] + counts["tumor_4"],
                }
            )
    tmp = store / ".index.csv.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=INDEX_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(store / "index.csv")
    return rows


def write_splits(store: Path, subjects: list[Subject], folds: int, seed: int):
    """Write ``splits.json``; see :func:`gliograde.splits.make_splits`."""
    from gliograde.splits import make_splits

    ids = [s.subject_id for s in subjects]
    labels = [s.label for s in subjects]
    splits, note = make_splits(ids, labels, folds, seed)
    write_json(store / "splits.json", splits)
    return splits, note


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("gliograde", "numpy", "nibabel", "torch", "monai", "lightning"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out
