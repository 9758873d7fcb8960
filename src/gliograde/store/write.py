"""``gliograde prepare``: NIfTI volumes → a slice store on disk.

A store is a folder::

    STORE/
      manifest.json          subjects, skipped {id: reason}, n_slices, options, source, versions
      index.csv              one row per slice: subject, grade, label, z, row, tumour/brain pixels
      splits.json            patient-level folds, nnU-Net's splits_final.json shape
      subjects/<id>/
        images.npy           float16 (n, 4, H, W), channels FLAIR, T1ce, T1, T2, z-scored
        seg.npy              uint8   (n, H, W), BraTS labels 0/1/2/4 (all 0 when no seg)
        subject.json         the subject's slices and their counts

``.npy`` files are uncompressed: a slice is read with one ``pread``, without decompression and
without loading the rest. Each subject is written to a temporary folder and renamed when
complete, so an interrupted run never leaves a half-written subject that looks complete, and a
re-run skips subjects already done.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from gliograde import MODALITIES
from gliograde.core.errors import DataError, GliogradeError
from gliograde.core.files import fsync_dir, package_versions, read_json, save_npy, write_json
from gliograde.core.lock import LOCK_NAME, folder_lock
from gliograde.io.cohort import SEG, Cohort, Subject
from gliograde.io.layouts import discover
from gliograde.io.nifti import open_image
from gliograde.io.volumes import SubjectError, geometry_problems
from gliograde.preprocess.profile import profile_range
from gliograde.preprocess.slices import PrepareConfig, SubjectSlices, preprocess_subject
from gliograde.store.index import write_index
from gliograde.store.manifest import STORE_VERSION, StoreManifest
from gliograde.store.splits import write_splits

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


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
        "grade": subject.label,
        "z": slices.z.tolist(),
        **slices.counts,
        "shape": list(slices.images.shape),
        "profile": slices.profile,
    }
    write_json(tmp / "subject.json", record)
    fsync_dir(tmp)
    if final.exists():  # a stale folder from an older, incomplete layout
        shutil.rmtree(final)
    tmp.rename(final)


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
    if subject.label is None and not problems:
        problems.append("grade unknown")
    if need_seg and SEG not in subject.files:
        problems.append(
            "no segmentation: training needs one for every subject (it says which slices show "
            "tumour); predict grades subjects without one"
        )
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
) -> StoreManifest:
    """Build (or complete) a slice store from a data folder.

    Without ``skip_bad``, a cohort with any bad subject is refused: header-level problems are
    found before anything is written, and a subject found bad while its voxels are read makes
    the run remove the subjects it wrote, so the store is left as it was. A full disk does the
    same. One process writes a store at a time (a lock file says who).

    Returns:
        The manifest (also written to ``out/manifest.json``).

    Raises:
        DataError: bad subjects without ``skip_bad`` (the message lists each), no usable one,
            or no space left on the disk.
        FolderBusy: another process is writing the store.
    """
    config = config or PrepareConfig()
    cohort = discover(Path(data), labels, target=config.target, classes=config.classes)
    out = Path(out)
    check_store_options(out, config)
    early = header_level_problems(cohort, out, config)
    if early and not skip_bad:
        raise DataError(bad_cohort_message(early))
    todo = [s for s in cohort.subjects if s.subject_id not in early]
    existed = out.exists()
    with folder_lock(out, "gliograde prepare"):
        before = StoreState.of(out, existed)
        try:
            job = PrepareJob(Path(data), out, cohort, config, workers, skip_bad, quiet)
            return write_store(job, todo, early)
        except OSError as err:
            if err.errno not in DISK_FULL:
                raise
            before.restore(out)
            raise DataError(
                f"{out}: no space left on the disk while writing the store; it was left as it "
                "was before; free some space (or choose another --out) and run again"
            ) from None


def header_level_problems(cohort: Cohort, out: Path, config: PrepareConfig) -> dict:
    """Each subject's problems found without reading voxels (layout, headers, grid)."""
    early = {s.subject_id: header_problems(s, need_seg=True) for s in cohort.subjects}
    if config.size is None:  # at native size every slice must have the same shape
        for sid, problem in in_plane_problems(cohort, out).items():
            early[sid].append(problem)
    return {sid: p for sid, p in early.items() if p}


@dataclass
class PrepareJob:
    """One ``prepare`` call: the cohort found in ``data``, the store to write, and how."""

    data: Path
    out: Path
    cohort: Cohort
    config: PrepareConfig
    workers: int = 1
    skip_bad: bool = False
    quiet: bool = False


def write_store(job: PrepareJob, todo: list[Subject], early: dict) -> StoreManifest:
    """Write the subjects, then the index, splits and manifest (see :func:`prepare`)."""
    from gliograde.core.parallel import map_with_progress

    out, config = job.out, job.config
    (out / "subjects").mkdir(parents=True, exist_ok=True)
    remove_leftovers(out)
    write_json(out / "options.json", store_options(config))
    work = partial(prepare_one, store=out, config=config)
    outcomes = list(map_with_progress(work, todo, job.workers, "prepare", quiet=job.quiet))
    bad = {o.subject_id: o.problems for o in outcomes if o.status == "bad"}
    if bad and not job.skip_bad:
        for o in outcomes:
            if o.status == "written":
                shutil.rmtree(subject_dir(out, o.subject_id))
        raise DataError(bad_cohort_message(bad))
    skipped = early | bad
    good = [s for s in todo if s.subject_id not in skipped]
    if not good:
        raise DataError(
            f"{job.data}: no usable subject; run `gliograde check {job.data}` for details"
        )
    warnings = {o.subject_id: o.warnings for o in outcomes if o.warnings}
    return write_manifest(job, good, skipped, warnings)


def write_manifest(
    job: PrepareJob, good: list[Subject], skipped: dict, warnings: dict
) -> StoreManifest:
    """The index, the patient-level splits and the manifest of a store's ``good`` subjects."""
    out, config, target = job.out, job.config, job.cohort.target
    index = write_index(out, good, target)
    splits, split_note = write_splits(out, good, config.folds, config.seed, target)
    labels = {}
    for s in good:
        if s.label is None:  # target.index refused it above
            raise DataError(f"{s.subject_id}: no {target.name}")
        labels[s.subject_id] = s.label
    manifest = StoreManifest(
        source=str(Path(job.data).resolve()),
        layout=job.cohort.layout,
        subjects=[s.subject_id for s in good],
        target=target,
        labels=labels,
        slice_shape=slice_shape(out, good[0].subject_id),
        options=config,
        n_slices=len(index),
        folds=len(splits),
        skipped={sid: "; ".join(p) for sid, p in sorted(skipped.items())},
        warnings=warnings,
        notes=[*job.cohort.notes, *([split_note] if split_note else [])],
        synthetic=is_synthetic_source(Path(job.data)),
        profile=profile_range([subject_record(out, s.subject_id)["profile"] for s in good]),
        versions=package_versions(),
    )
    write_json(out / "manifest.json", manifest.to_dict())
    return manifest


def in_plane_problems(cohort: Cohort, out: Path) -> dict[str, str]:
    """Subjects whose axial plane (after reorientation) differs from the store's or the cohort's.

    The reference is the store's slice shape when it already has subjects, else the shape most
    of the cohort has.
    """
    from collections import Counter

    from gliograde.io.nifti import to_lps

    shapes = {}
    for s in cohort.subjects:
        path = s.files.get(MODALITIES[0])
        if path is None:
            continue
        try:
            img = open_image(path)
        except DataError:
            continue  # already reported by header_problems
        lps = [0, 0, 0]
        for axis, (new, _) in enumerate(to_lps(img.affine)):
            lps[int(new)] = int(img.shape[axis])
        shapes[s.subject_id] = tuple(lps[:2])
    existing = stored_slice_shape(out)
    if existing:
        reference = tuple(existing[1:])
    elif shapes:
        reference = Counter(shapes.values()).most_common(1)[0][0]
    else:
        return {}
    return {
        sid: f"in-plane shape {shape[0]}×{shape[1]} differs from the store's {reference[0]}×"
        f"{reference[1]}; resample it, or prepare with --size to resize every subject"
        for sid, shape in shapes.items()
        if shape != reference
    }


class StoreState:
    """What a store folder held before a ``prepare``, to put it back after a failed write.

    Subjects are never rewritten (a complete one is skipped), so their names suffice; the
    top-level files (index, splits, options, manifest: a few hundred kB) are kept byte for byte.
    """

    def __init__(self, existed: bool, subjects: set[str], files: dict[str, bytes]):
        self.existed, self.subjects, self.files = existed, subjects, files

    @classmethod
    def of(cls, out: Path, existed: bool) -> StoreState:
        subjects = {p.name for p in (out / "subjects").glob("*") if p.is_dir()}
        files = {
            p.name: p.read_bytes() for p in out.glob("*") if p.is_file() and p.name != LOCK_NAME
        }
        return cls(existed, subjects, files)

    def restore(self, out: Path) -> None:
        """Remove what the failed call added and put back what it overwrote."""
        if not self.existed:
            shutil.rmtree(out, ignore_errors=True)
            return
        for folder in (out / "subjects").glob("*"):
            if folder.name not in self.subjects:
                shutil.rmtree(folder, ignore_errors=True)
        for path in out.glob("*"):
            if path.is_file() and path.name not in self.files and path.name != LOCK_NAME:
                path.unlink()
        for name, data in self.files.items():
            if not (out / name).is_file() or (out / name).read_bytes() != data:
                (out / name).write_bytes(data)  # the disk has room again: what was freed


def remove_leftovers(store: Path) -> None:
    """Remove temporary folders an interrupted run left (one prepare per store at a time)."""
    for tmp in (store / "subjects").glob(".tmp-*"):
        shutil.rmtree(tmp)


def bad_cohort_message(bad: dict[str, list[str]]) -> str:
    lines = [f"{sid}: {p}" for sid, problems in sorted(bad.items()) for p in problems]
    head = f"{len(bad)} subject(s) cannot be used; nothing was written. "
    return head + "Fix them or pass --skip-bad to prepare the others:\n  " + "\n  ".join(lines)


def check_store_options(out: Path, config: PrepareConfig) -> None:
    """Refuse to mix subjects prepared with other options into one store, and to re-split it.

    A store's folds are fixed once written: runs trained on it (and their held-out figures)
    rely on which patients each fold held out.
    """
    path = out / "options.json"
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    new = store_options(config)
    differ = sorted(k for k in new if old.get(k) != new[k] and k not in ("folds", "seed"))
    resplit = any(old.get(k) != new[k] for k in ("folds", "seed"))
    if resplit and not differ and (out / "splits.json").is_file():
        raise GliogradeError(
            f"{out}: this store is already split into folds (--folds {old.get('folds')} --seed "
            f"{old.get('seed')}); runs trained on it rely on them. To split otherwise, prepare "
            "a new store with a new --out folder"
        )
    if differ:
        raise GliogradeError(
            f"{out}: this store was prepared with other options ({', '.join(differ)}); "
            "use a new --out folder"
        )


def store_options(config: PrepareConfig) -> dict:
    """``options.json``: the store's version and the options its slices were prepared with (as
    the manifest records them)."""
    return {"store_version": STORE_VERSION, **config.to_dict()}


def subject_record(store: Path, subject_id: str) -> dict:
    """A stored subject's ``subject.json``."""
    return json.loads((subject_dir(store, subject_id) / "subject.json").read_text())


def slice_shape(store: Path, subject_id: str) -> tuple[int, int, int]:
    """``(channels, height, width)`` of a subject's stored slices."""
    channels, height, width = subject_record(store, subject_id)["shape"][1:]
    return channels, height, width


def stored_slice_shape(out: Path) -> tuple[int, ...] | None:
    """The slice shape of the store already at ``out`` (None when there is none yet)."""
    path = out / "manifest.json"
    return StoreManifest.from_dict(read_json(path), path).slice_shape if path.is_file() else None


def is_synthetic_source(data: Path) -> bool:
    root = data if data.is_dir() else data.parent
    return (root / "SYNTHETIC.txt").is_file()
