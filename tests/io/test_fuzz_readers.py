"""Fuzzed inputs through every reader: NIfTI files (headers and data) and CSVs (label files and
manifests). Each case ends in a result or one clear ``GliogradeError``, never another exception
or a hang. ``make fuzz`` runs 10,000 cases (``GLIOGRADE_FUZZ_CASES``); CI a few hundred."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest

from gliograde.io.layouts import discover, subject_from_folder
from gliograde.io.validate import check_subject
from gliograde.preprocess.slices import PrepareConfig, preprocess_subject
from helpers.fuzz import CASES, mutate, mutate_nifti_gz, outcome

ROLES = ("flair", "t1ce", "t1", "t2", "seg")


def write_subject(folder, suffix: str) -> None:
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


def read_subject(folder) -> None:
    """What check, prepare and predict do with a subject folder."""
    subject = subject_from_folder(folder)
    report = check_subject(subject)
    if report.usable:
        preprocess_subject(subject, PrepareConfig("brain"))


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_fuzzed_nifti_files_give_an_answer_or_one_clear_line(tmp_path, suffix):
    clean = tmp_path / "clean"
    write_subject(clean, suffix)
    failures = []
    for case in range(CASES // 4):
        rng = np.random.default_rng(case)
        folder = tmp_path / f"case{case}"
        shutil.copytree(clean, folder)
        role = ROLES[int(rng.integers(0, len(ROLES)))]
        path = folder / f"S_{role}{suffix}"
        raw = path.read_bytes()
        path.write_bytes(
            mutate_nifti_gz(raw, rng) if suffix == ".nii.gz" else mutate(raw, rng, True)
        )
        problem = outcome(lambda f=folder: read_subject(f))
        if problem:
            failures.append(f"case {case} ({role}): {problem}")
        shutil.rmtree(folder)
    assert failures == [], "\n".join(failures[:3])


def test_fuzzed_label_csvs_and_manifests_give_an_answer_or_one_clear_line(tmp_path):
    cohort = tmp_path / "cohort"
    write_subject(cohort / "S", ".nii.gz")
    (cohort / "name_mapping.csv").write_text("Grade,BraTS_2020_subject_ID\nHGG,S\nLGG,T\n")
    manifest = tmp_path / "manifest.csv"
    files = ",".join(f"cohort/S/S_{r}.nii.gz" for r in ("flair", "t1", "t1ce", "t2", "seg"))
    manifest.write_text(f"subject_id,grade,flair,t1,t1ce,t2,seg\nS,HGG,{files}\n")
    originals = {p: p.read_bytes() for p in (cohort / "name_mapping.csv", manifest)}
    failures = []
    for case in range(CASES // 4):
        rng = np.random.default_rng(10_000 + case)
        path = list(originals)[case % 2]
        path.write_bytes(mutate(originals[path], rng))
        target = cohort if path.name == "name_mapping.csv" else manifest
        for need_labels in (True, False):
            problem = outcome(lambda t=target, n=need_labels: discover(t, None, n))
            if problem:
                failures.append(f"case {case} ({path.name}): {problem}")
        path.write_bytes(originals[path])
    assert failures == [], "\n".join(failures[:3])
