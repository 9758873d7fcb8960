"""Runs for tests: one built without training (random weights), for tests of how runs are
read; one trained briefly on a synthetic cohort's label column; and what such a cohort holds."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch


def fake_run(folder: Path, size: int = 32, folds: int = 2) -> Path:
    """A structurally complete run: config, frozen splits, fold weights, checksums, calibration."""
    from safetensors.torch import save_file

    from gliograde.model.network import GradeNet
    from gliograde.model.weights import sha256_of
    from gliograde.preprocess.slices import PrepareConfig
    from gliograde.run import RUN_FORMAT

    folder.mkdir(parents=True)
    options = vars(PrepareConfig(size=size, min_tumor_pixels=20))
    manifest = {"options": options, "slice_shape": [4, size, size], "subjects": ["A", "B"]}
    config = {
        "run_format": RUN_FORMAT,
        "store": "unused",
        "folds": None,
        "store_manifest": manifest,
    }
    (folder / "config.json").write_text(json.dumps(config, default=list))
    (folder / "splits.json").write_text(json.dumps([{"train": ["A"], "val": ["B"]}] * folds))
    checksums = {}
    torch.manual_seed(0)
    for k in range(folds):
        (folder / f"fold_{k}").mkdir()
        path = folder / f"fold_{k}" / "model.safetensors"
        state = {n: v.contiguous() for n, v in GradeNet(plain=True).state_dict().items()}
        save_file(state, path, metadata={"slice_size": str(size)})
        checksums[f"fold_{k}/model.safetensors"] = sha256_of(path)
    (folder / "checksums.json").write_text(json.dumps(checksums))
    rule = {"temperature": 1.0, "bias": 0.0, "applied": False, "threshold": 0.5}
    (folder / "calibration.json").write_text(json.dumps({"seg": rule, "noseg": rule}))
    return folder


def read_run(folder: Path) -> None:
    """Everything predict reads from a run before it sees a patient."""
    from gliograde.infer.models import load_models
    from gliograde.run import Run

    run = Run.open(folder)
    load_models(run.weights())
    run.calibration()
    run.splits()


def target_run(cohort: Path, root: Path, target: str) -> tuple[dict, Path, dict]:
    """A store of ``target`` (32×32 brain slices, 2 folds) and a run trained 2 epochs.

    Returns:
        (store manifest, run folder, out-of-fold metrics).
    """
    from gliograde.assess.crossval import train_and_evaluate
    from gliograde.preprocess.slices import PrepareConfig
    from gliograde.store.write import prepare
    from gliograde.train.config import TrainConfig

    config = PrepareConfig("brain", 20, 32, 2, target=target)
    manifest = prepare(cohort, root / "store", config, quiet=True)
    train = TrainConfig(store=str(root / "store"), out=str(root / "run"), epochs=2,
                        epoch_slices=64, batch_size=16, device="cpu", progress=False)  # fmt: skip
    return manifest, root / "run", train_and_evaluate(train)


def label_column(cohort: Path, column: str) -> dict[str, str]:
    """Each subject's value of ``column`` in the cohort's name_mapping.csv."""
    with open(cohort / "name_mapping.csv", newline="") as f:
        return {r["BraTS_2020_subject_ID"]: r[column] for r in csv.DictReader(f)}


def volume(folder: Path, subject: str, role: str) -> np.ndarray:
    """A subject's NIfTI volume of ``role`` (flair, t1ce, t1, t2, seg) as stored."""
    import nibabel as nib

    return np.asanyarray(nib.load(folder / subject / f"{subject}_{role}.nii.gz").dataobj)
