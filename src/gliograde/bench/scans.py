"""f. From a DICOM export to a grade: ``gliograde predict RUN DICOM_DIR`` on one raw-like head.

The head is a SYNTHETIC phantom with skull and scalp (``synth --skull``), each sequence turned,
moved and resampled to its own anisotropic grid, and written as a DICOM export
(:mod:`gliograde.scans.simulate`). ``predict`` runs in a fresh process with an empty cache, so
the time includes process start, DICOM conversion, N4, co-registration, skull stripping, the
atlas, and grading with a 5-fold ensemble; each step's time comes from its ``preprocess.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def raw_export(root: Path) -> Path:
    """A SYNTHETIC head as a DICOM export (reused when already there)."""
    import nibabel as nib
    import numpy as np

    from gliograde import MODALITIES
    from gliograde.io.synth import make_subject
    from gliograde.scans.simulate import raw_like, write_raw_export

    export, done = root / "raw-dicom", root / "raw-dicom.done"
    if done.is_file():
        return export
    shutil.rmtree(export, ignore_errors=True)
    head = root / "head"
    head.mkdir(parents=True, exist_ok=True)
    images, _ = make_subject("HGG", np.random.default_rng(7), skull=True)
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])  # LPS, as synth writes
    for role, volume in zip(MODALITIES, images):
        nib.save(nib.Nifti1Image(volume, affine), head / f"SYNTHETIC_head_{role}.nii.gz")
    write_raw_export(raw_like(head, root / "raw-nifti"), export)
    done.write_text("")
    return export


def bench_raw_scan(root: Path, run: Path) -> dict:
    """Wall time of ``predict`` from the DICOM export, and each preprocessing step's time."""
    export = raw_export(root)
    cache = root / "raw-cache"
    shutil.rmtree(cache, ignore_errors=True)
    cmd = [sys.executable, "-m", "gliograde", "predict", str(run), str(export), "--json"]
    env = os.environ | {"GLIOGRADE_CACHE": str(cache)}
    started = time.perf_counter()
    result = subprocess.run([*cmd, "--force"], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"predict of the DICOM export failed:\n{result.stderr[-2000:]}")
    (answer,) = json.loads(result.stdout)
    record = json.loads((Path(answer["qc"]).parent / "preprocess.json").read_text())
    files = sum(1 for p in export.iterdir())
    return {
        "wall_s": wall,
        "steps_s": record["seconds"],
        "preprocess_s": sum(record["seconds"].values()),
        "dicom_files": files,
        "brain_ml": record["brain_ml"],
    }
