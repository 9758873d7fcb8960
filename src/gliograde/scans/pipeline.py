"""Four raw volumes (any grids, skull on) → one BraTS-like subject, with its QC.

Steps, each timed: N4 bias correction of each sequence; rigid registration of FLAIR, T1 and T2
to T1ce; skull stripping (deepbet, on the registered T1); rigid registration of the brain to
the MNI152 template; resampling of the four sequences onto the BraTS-like grid (240×240×155,
1 mm, LPS); background set to 0. A result that fails a check is not written.

Rigid, not affine, to the template: MNI152 is larger than most brains, and an affine
registration enlarged the first real subject tried from 1,408 to 1,967 mL, far from the brains
BraTS-trained models saw; rigid keeps each brain's own size (1,396 mL on the grid).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from gliograde import MODALITIES
from gliograde.core.errors import DataError
from gliograde.scans.space import RECORD_KEY, save_atlas_transform

SCAN_PACKAGES = ("SimpleITK", "deepbet", "dcm2niix", "pydicom", "nilearn")
BRAIN_ML = (800.0, 2200.0)
BRIGHT = 4000.0  # the brain's 99.5th percentile in the written int16 volumes
SHIFTS = [(5, 0, 0), (-5, 0, 0), (0, 5, 0), (0, -5, 0), (0, 0, 5), (0, 0, -5)]
MIN_MARGIN = 0.0015
"""A registered sequence must sit at a peak of similarity with T1ce: its normalised mutual
information (NMI, on T1ce's Otsu mask) must exceed that of the same image moved 5 mm along any
axis by at least this much. Calibrated on the four real BraTS 2020 subjects (already aligned):
their 12 aligned pairs (FLAIR, T1, T2 against T1ce) had margins +0.0028 to +0.094; moved by
10 mm, all 12 were negative (−0.0015 to −0.018); turned by 10°, at most +0.0007. Raw NMI
alone could not tell them apart (aligned 1.012–1.139, moved 5 mm 1.004–1.042)."""


class Timer:
    """Seconds per named step."""

    def __init__(self):
        self.steps: dict[str, float] = {}

    def __call__(self, name: str, fn, *args, **kwargs):
        started = time.perf_counter()
        result = fn(*args, **kwargs)
        self.steps[name] = round(self.steps.get(name, 0.0) + time.perf_counter() - started, 2)
        return result


def preprocess_volumes(
    files: dict[str, Path],
    out: Path,
    subject_id: str,
    series: dict | None = None,
    seconds: dict[str, float] | None = None,
    dicom_folder: Path | None = None,
) -> dict:
    """Bring ``files`` (role → NIfTI path) to BraTS form in ``out/SUBJECT``; return the record
    (figures, step times) also written as ``preprocess.json``, beside ``qc.png``.
    ``series``: each role's series, ``dicom_folder``: the export they were read from, and
    ``seconds``: the times of steps taken before (DICOM conversion), for the record.

    Raises:
        DataError: brain volume or a registration outside what is plausible (nothing written).
    """
    from gliograde.scans.register import as_array, n4, read
    from gliograde.scans.strip import brain_mask

    timer = Timer()
    timer.steps |= seconds or {}
    images = {r: timer("n4", n4, timer("read", read, files[r])) for r in MODALITIES}
    in_t1ce, similarity = timer("coregister", coregister, images)
    mask = timer("skull strip", brain_mask, in_t1ce["t1"])
    brain_ml = float((as_array(mask) > 0).sum() * np.prod(mask.GetSpacing()) / 1000.0)
    check_figures(subject_id, brain_ml, similarity)
    volumes, grid_mask, placed = timer("atlas", to_atlas, in_t1ce, mask)
    record = {
        "subject": subject_id,
        "series": series or {r: {"file": str(p)} for r, p in files.items()},
        **({"dicom_folder": str(Path(dicom_folder).resolve())} if dicom_folder else {}),
        "brain_ml": round(brain_ml, 1),
        "registration_margin": {r: round(v, 4) for r, v in similarity.items()},
        "seconds": timer.steps,
    }
    transform, grid = placed
    record[RECORD_KEY] = save_atlas_transform(
        mkdir(out / subject_id), transform, grid, in_t1ce["t1ce"]
    )
    write_subject(out / subject_id, subject_id, volumes, grid_mask, record)
    return record


def mkdir(folder: Path) -> Path:
    """``folder``, made if missing."""
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def coregister(images: dict) -> tuple[dict, dict[str, float]]:
    """Each sequence rigidly onto T1ce's grid, and its peak margin (see :data:`MIN_MARGIN`)."""
    from gliograde.scans.register import register, resample

    fixed = images["t1ce"]
    moved = {"t1ce": fixed}
    margins = {}
    for role in ("flair", "t1", "t2"):
        moved[role] = resample(images[role], fixed, register(fixed, images[role], "rigid"))
        margins[role] = peak_margin(moved[role], fixed)
    return moved, margins


def peak_margin(moved, fixed) -> float:
    """NMI of ``moved`` with ``fixed`` minus the best NMI of ``moved`` shifted by 5 mm."""
    import SimpleITK as sitk

    from gliograde.scans.register import as_array, nmi, resample

    reference = as_array(fixed)
    mask = as_array(sitk.OtsuThreshold(fixed, 0, 1, 200)) > 0
    here = nmi(as_array(moved), reference, mask)
    around = [
        nmi(as_array(resample(moved, fixed, sitk.TranslationTransform(3, shift))), reference, mask)
        for shift in SHIFTS
    ]
    return here - max(around)


def check_figures(subject_id: str, brain_ml: float, similarity: dict[str, float]) -> None:
    low, high = BRAIN_ML
    if not low <= brain_ml <= high:
        raise DataError(
            f"{subject_id}: brain volume {brain_ml:.0f} mL after skull stripping, outside "
            f"{low:.0f}–{high:.0f} mL; look at the scans (a child, a resection, a failed strip?)"
        )
    bad = {r: v for r, v in similarity.items() if v < MIN_MARGIN}
    if bad:
        listed = ", ".join(f"{r.upper()} {v:+.4f}" for r, v in bad.items())
        raise DataError(
            f"{subject_id}: registration to T1ce failed for {listed} (not at a peak of "
            f"similarity: margin below {MIN_MARGIN}); check that the series belong together"
        )


def to_atlas(in_t1ce: dict, mask) -> tuple[dict[str, np.ndarray], np.ndarray, tuple]:
    """The four sequences and the mask on the BraTS-like grid (rigid registration of the
    skull-stripped T1 to the template), background 0; and the transform (grid → T1ce points)
    with the grid, which place the result in the original scan."""
    import SimpleITK as sitk

    from gliograde.scans.register import as_array, read, register, resample
    from gliograde.scans.template import brats_grid, template_path

    template = read(template_path())
    brain_t1 = sitk.Mask(in_t1ce["t1"], sitk.Cast(mask, sitk.sitkUInt8))
    transform = register(template, brain_t1, "rigid", sampling=0.2)  # see the module docstring
    grid = brats_grid(template)
    grid_mask = as_array(resample(mask, grid, transform, nearest=True)) > 0
    volumes = {}
    for role in MODALITIES:
        data = as_array(resample(in_t1ce[role], grid, transform))
        volumes[role] = to_int16(data, grid_mask)
    return volumes, grid_mask, (transform, grid)


def to_int16(data: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """int16 as BraTS stores it, the brain's 99.5th percentile scaled to :data:`BRIGHT` (so that
    float inputs in 0–1, or a vendor's large scale, keep their detail), background 0."""
    high = float(np.percentile(data[mask], 99.5)) if mask.any() else 0.0
    scale = BRIGHT / high if high > 0 else 1.0
    return np.where(mask, np.clip(np.rint(data * scale), 0, 32767), 0).astype(np.int16)


def write_subject(folder: Path, subject_id: str, volumes, mask, record: dict) -> None:
    """The four volumes in BraTS 2020 naming (LPS, 1 mm), ``preprocess.json`` and ``qc.png``."""
    import nibabel as nib

    from gliograde.core.files import RESULT_PACKAGES, package_versions, write_json
    from gliograde.scans.qc import write_qc

    folder.mkdir(parents=True, exist_ok=True)
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])  # LPS voxel axes, as BraTS writes them
    affine[1, 3] = mask.shape[1] - 1
    for role, data in volumes.items():
        nib.save(nib.Nifti1Image(data, affine), folder / f"{subject_id}_{role}.nii.gz")
    write_qc(folder / "qc.png", volumes, mask, subject_id)
    versions = package_versions(RESULT_PACKAGES + SCAN_PACKAGES)
    write_json(folder / "preprocess.json", record | {"versions": versions})
