"""How well ``preprocess`` restores a real BraTS subject made raw-like (the test's figures, and
correlations at several smoothings).

    python scripts/restoration.py ../shared/data/brats2020-sample BraTS20_Training_007 /tmp/out

Preprocesses the subject as BraTS ships it and its raw-like version (each sequence turned,
moved and resampled to its own anisotropic grid), then compares the two outputs: brain-mask
Dice, brain centre distance, and each sequence's correlation inside both brains, unsmoothed
and at Gaussian σ = 1 and 2 voxels.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.ndimage import gaussian_filter

from gliograde import MODALITIES
from gliograde.scans.inputs import preprocess_inputs
from gliograde.scans.simulate import raw_like


def load(folder: Path, subject: str) -> dict[str, np.ndarray]:
    return {
        r: np.asanyarray(nib.load(folder / subject / f"{subject}_{r}.nii.gz").dataobj).astype(float)
        for r in MODALITIES
    }


def correlation(a: np.ndarray, b: np.ndarray, where: np.ndarray, sigma: float) -> float:
    if sigma:
        a, b = gaussian_filter(a, sigma), gaussian_filter(b, sigma)
    return float(np.corrcoef(a[where], b[where])[0, 1])


def main(sample: Path, subject: str, root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
    raw_like(sample / subject, root / "raw_nifti")
    started = time.perf_counter()
    records, errors, _ = preprocess_inputs([sample / subject, root / "raw_nifti"], root / "out")
    print(f"errors {errors}, {time.perf_counter() - started:.0f} s")
    original, restored = load(root / "out", subject), load(root / "out", "raw_nifti")
    a, b = original["t1"] > 0, restored["t1"] > 0
    print(f"brain-mask Dice {2 * (a & b).sum() / (a.sum() + b.sum()):.4f}")
    centres = [np.argwhere(m).mean(axis=0) for m in (a, b)]
    print(f"brain centres {np.linalg.norm(centres[0] - centres[1]):.2f} mm apart")
    for sigma in (0, 1, 2):
        r = {m: correlation(original[m], restored[m], a & b, sigma) for m in MODALITIES}
        print(f"correlation at sigma {sigma}: " + ", ".join(f"{m} {v:.3f}" for m, v in r.items()))
    print("brain mL", {k: v["brain_ml"] for k, v in records.items()})


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
