"""Data the tests make or read: NIfTI files, label CSVs and manifests, the real sample's path."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import nibabel as nib
import numpy as np

REPO = Path(__file__).resolve().parents[2]
SAMPLE = Path(os.environ.get("GLIOGRADE_SAMPLE", REPO.parent / "shared/data/brats2020-sample"))
SMALL_SHAPE = (64, 64, 40)


def save_nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) if affine is None else affine
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


def read_lps(path: Path) -> np.ndarray:
    """Voxel data as float, straight from nibabel (the synthetic and BraTS files are LPS)."""
    img = nib.load(path)
    assert nib.aff2axcodes(img.affine) == ("L", "P", "S")
    return img.get_fdata()


def zscore_brain(volume: np.ndarray, brain: np.ndarray, clip=(0.5, 99.5)) -> np.ndarray:
    """One modality z-scored over the brain as prepare does it (statistics, then apply)."""
    from gliograde.preprocess.normalise import apply_zscore, brain_stats

    return apply_zscore(volume, ~brain, brain_stats(volume, brain, clip))


def write_manifest(path, cohort, subjects, grade=None):
    """A CSV manifest of ``subjects`` of ``cohort`` (their grades, or ``grade`` for all)."""
    lines = ["subject_id,grade,flair,t1,t1ce,t2,seg"]
    for s in subjects:
        g = grade or ("HGG" if s in hgg_of(cohort) else "LGG")
        files = [f"{cohort.name}/{s}/{s}_{m}.nii.gz" for m in ("flair", "t1", "t1ce", "t2", "seg")]
        lines.append(",".join([s, g, *files]))
    path.write_text("\n".join(lines) + "\n")
    return path


def hgg_of(cohort):
    with open(cohort / "name_mapping.csv", newline="") as f:
        return {r["BraTS_2020_subject_ID"] for r in csv.DictReader(f) if r["Grade"] == "HGG"}


def label_column(cohort: Path, column: str) -> dict[str, str]:
    """Each subject's value of ``column`` in the cohort's name_mapping.csv."""
    with open(cohort / "name_mapping.csv", newline="") as f:
        return {r["BraTS_2020_subject_ID"]: r[column] for r in csv.DictReader(f)}


def volume(folder: Path, subject: str, role: str) -> np.ndarray:
    """A subject's NIfTI volume of ``role`` (flair, t1ce, t1, t2, seg) as stored."""
    return np.asanyarray(nib.load(folder / subject / f"{subject}_{role}.nii.gz").dataobj)
