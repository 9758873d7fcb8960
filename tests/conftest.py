"""Shared fixtures: tiny synthetic NIfTI cohorts, and the real BraTS sample when present."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = Path(os.environ.get("GLIOGRADE_SAMPLE", REPO.parent / "shared/data/brats2020-sample"))
SMALL_SHAPE = (64, 64, 40)


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The four real BraTS 2020 subjects; tests using it skip where the folder is absent."""
    if not (SAMPLE / "name_mapping.csv").is_file():
        pytest.skip(f"real BraTS sample not found at {SAMPLE}")
    return SAMPLE


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory) -> Path:
    """A SYNTHETIC cohort of 10 small subjects (64×64×40), BraTS 2020 layout. Do not modify."""
    from gliograde.io.synth import synth_cohort

    out = tmp_path_factory.mktemp("synth") / "cohort"
    synth_cohort(out, subjects=10, lgg_fraction=0.4, seed=3, shape=SMALL_SHAPE, quiet=True)
    return out


@pytest.fixture
def cohort_copy(synth_small, tmp_path) -> Path:
    """A private, modifiable copy of the small synthetic cohort."""
    dst = tmp_path / "cohort"
    shutil.copytree(synth_small, dst)
    return dst


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

    return apply_zscore(volume, brain, brain_stats(volume, brain, clip))


@pytest.fixture(scope="session")
def tiny_run(synth_small, tmp_path_factory):
    """A SYNTHETIC store (32×32 brain slices, 2 folds) and a run trained on it for 2 epochs.

    Do not modify: copy what a test changes.
    """
    from gliograde.assess.crossval import train_and_evaluate
    from gliograde.preprocess.slices import PrepareConfig
    from gliograde.store.write import prepare
    from gliograde.train.config import TrainConfig

    root = tmp_path_factory.mktemp("pipeline")
    config = PrepareConfig(slices="brain", size=32, min_tumor_pixels=20, folds=2)
    prepare(synth_small, root / "store", config, quiet=True)
    train = TrainConfig(
        store=str(root / "store"),
        out=str(root / "run"),
        epochs=2,
        epoch_slices=64,
        batch_size=16,
        device="cpu",
        progress=False,
    )
    metrics = train_and_evaluate(train)
    return root / "store", root / "run", metrics


@contextlib.contextmanager
def lock_held_elsewhere(folder: Path, what: str):
    """Another process holding ``folder``'s lock while the block runs; yields its pid."""
    import subprocess
    import sys

    code = (
        "import sys, time; from gliograde.core.lock import folder_lock\n"
        "with folder_lock(sys.argv[1], sys.argv[2]):\n"
        "    print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(folder), what], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()


def write_manifest(path, cohort, subjects, grade=None):
    lines = ["subject_id,grade,flair,t1,t1ce,t2,seg"]
    for s in subjects:
        g = grade or ("HGG" if s in hgg_of(cohort) else "LGG")
        files = [f"{cohort.name}/{s}/{s}_{m}.nii.gz" for m in ("flair", "t1", "t1ce", "t2", "seg")]
        lines.append(",".join([s, g, *files]))
    path.write_text("\n".join(lines) + "\n")
    return path


def hgg_of(cohort):
    import csv

    with open(cohort / "name_mapping.csv", newline="") as f:
        return {r["BraTS_2020_subject_ID"] for r in csv.DictReader(f) if r["Grade"] == "HGG"}


def cpu_train_config(store, out, **changes):
    """A short CPU training: 1 epoch of 32 slices in batches of 16, no progress bar."""
    from gliograde.train.config import TrainConfig

    options = {
        "epochs": 1,
        "epoch_slices": 32,
        "batch_size": 16,
        "device": "cpu",
        "progress": False,
    }
    return TrainConfig(str(store), str(out), **(options | changes))
