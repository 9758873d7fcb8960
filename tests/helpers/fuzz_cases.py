"""Fuzz cases for the readers of NIfTI files, label CSVs and manifests, and run folders: each
``case(seed, scratch)`` mutates a clean input (made once per worker under ``scratch``) and reads
it as ``check``, ``prepare`` and ``predict`` do. Run by :func:`helpers.isolated.run_cases`;
a case ends well with a result or one ``GliogradeError`` line (see :mod:`helpers.isolated`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np

from helpers.fuzz import mutate, mutate_nifti_gz

ROLES = ("flair", "t1ce", "t1", "t2", "seg")


def write_subject(folder: Path, suffix: str) -> None:
    """A tiny, valid subject: a brain block with a tumour inside, 1 mm, LPS."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    shape = (24, 24, 12)
    brain = np.zeros(shape, bool)
    brain[4:20, 4:20, 2:10] = True
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    for role in ROLES[:4]:
        data = (rng.integers(100, 900, shape) * brain).astype(np.int16)
        nib.save(nib.Nifti1Image(data, affine), folder / f"S_{role}{suffix}")
    seg = np.zeros(shape, np.uint8)
    seg[8:14, 8:14, 4:8] = 2
    seg[10:12, 10:12, 5:7] = 4
    nib.save(nib.Nifti1Image(seg, affine), folder / f"S_seg{suffix}")


def read_subject(folder: Path) -> str:
    """What check, prepare and predict do with a subject folder."""
    from gliograde.io.layouts import subject_from_folder
    from gliograde.io.validate import check_subject
    from gliograde.preprocess.slices import PrepareConfig, preprocess_subject

    subject = subject_from_folder(folder)
    report = check_subject(subject)
    if not report.usable:
        return "refused"
    preprocess_subject(subject, PrepareConfig("brain"))
    return "read"


def nifti_case(seed: int, scratch: Path, suffix: str = ".nii.gz") -> str:
    """One subject file (any role) mutated inside or in its compressed bytes."""
    clean = scratch / f"clean{suffix}"
    if not clean.is_dir():
        write_subject(clean, suffix)
    rng = np.random.default_rng(seed)
    folder = scratch / "case"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(clean, folder)
    role = ROLES[int(rng.integers(0, len(ROLES)))]
    path = folder / f"S_{role}{suffix}"
    raw = path.read_bytes()
    path.write_bytes(mutate_nifti_gz(raw, rng) if suffix == ".nii.gz" else mutate(raw, rng, True))
    try:
        return read_subject(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def nii_case(seed: int, scratch: Path) -> str:
    return nifti_case(seed, scratch, ".nii")


def csv_case(seed: int, scratch: Path) -> str:
    """A label file or a manifest mutated, read with and without labels required."""
    from gliograde.io.layouts import discover

    cohort, manifest = scratch / "cohort", scratch / "manifest.csv"
    if not cohort.is_dir():
        write_subject(cohort / "S", ".nii.gz")
    (cohort / "name_mapping.csv").write_text("Grade,BraTS_2020_subject_ID\nHGG,S\nLGG,T\n")
    files = ",".join(f"cohort/S/S_{r}.nii.gz" for r in ("flair", "t1", "t1ce", "t2", "seg"))
    manifest.write_text(f"subject_id,grade,flair,t1,t1ce,t2,seg\nS,HGG,{files}\n")
    rng = np.random.default_rng(10_000 + seed)
    path = (cohort / "name_mapping.csv", manifest)[seed % 2]
    path.write_bytes(mutate(path.read_bytes(), rng))
    target = cohort if path.name == "name_mapping.csv" else manifest
    discover(target, None, False)
    discover(target, None, True)
    return "read"


RUN_FILES = (
    "config.json",
    "calibration.json",
    "checksums.json",
    "splits.json",
    "fold_0/model.safetensors",
)


def run_case(seed: int, scratch: Path) -> str:
    """One file of a run folder mutated, then read as predict reads a run."""
    import torch

    from helpers.runs import fake_run, read_run

    torch.set_num_threads(1)
    clean = scratch / "clean-run"
    if not clean.is_dir():
        fake_run(scratch / "making-run")
        (scratch / "making-run").rename(clean)
    run = scratch / "run"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(clean, run)
    rng = np.random.default_rng(20_000 + seed)
    name = RUN_FILES[seed % len(RUN_FILES)]
    (run / name).write_bytes(mutate((run / name).read_bytes(), rng))
    read_run(run)
    return "read"
