"""Runs for tests: the one short training config, a run built without training (random
weights) for tests of how runs are read, and runs trained briefly on a synthetic cohort."""

from __future__ import annotations

from pathlib import Path

import torch


def train_config(store, out, **changes):
    """The tests' training: CPU, 1 epoch of 32 slices in batches of 16, no progress bar
    (``changes`` override any option, e.g. ``epochs=2, epoch_slices=64``)."""
    from gliograde.run.config import TrainConfig

    options = {
        "epochs": 1,
        "epoch_slices": 32,
        "batch_size": 16,
        "device": "cpu",
        "progress": False,
    }
    return TrainConfig(str(store), str(out), **(options | changes))


def trained_run(cohort: Path, root: Path, target: str | None = None) -> tuple:
    """A store of ``cohort`` (32×32 brain slices, 2 folds; ``target``: a label column instead
    of the grade) and a run trained on it for 2 epochs of 64 slices, then evaluated.

    Returns:
        (store manifest, run folder, out-of-fold metrics as ``metrics.json`` holds them).
    """
    from gliograde.experiment import train_and_evaluate
    from gliograde.preprocess.slices import PrepareConfig
    from gliograde.store.write import prepare

    config = PrepareConfig("brain", 20, 32, 2, target=target)
    manifest = prepare(cohort, root / "store", config, quiet=True)
    metrics = train_and_evaluate(
        train_config(root / "store", root / "run", epochs=2, epoch_slices=64)
    )
    return manifest, root / "run", metrics.to_dict()


def copy_run(run: Path, dst: Path) -> Path:
    """A copy of a run folder as predict, evaluate and report read it: without Lightning's
    checkpoints and logs (hundreds of MB that none of them reads)."""
    import shutil

    return Path(shutil.copytree(run, dst, ignore=shutil.ignore_patterns("checkpoints", "logs")))


def fake_run(folder: Path, size: int = 32, folds: int = 2) -> Path:
    """A structurally complete run: config, frozen splits, fold weights, checksums, calibration."""
    from safetensors.torch import save_file

    from gliograde.io.target import GRADE
    from gliograde.model.network import GradeNet
    from gliograde.preprocess.slices import PrepareConfig
    from gliograde.run import Run
    from gliograde.run.calibration import Calibration, CalibrationRule
    from gliograde.run.config import RunConfig
    from gliograde.store.manifest import StoreManifest

    options = PrepareConfig(size=size, min_tumor_pixels=20)
    manifest = StoreManifest(
        "unused", "brats2020", ["A", "B"], GRADE, {"A": "LGG", "B": "HGG"}, (4, size, size),
        options, n_slices=0, folds=folds,
    )  # fmt: skip
    run = Run.create(folder, RunConfig(train_config("unused", folder, folds=None), manifest))
    run.write_splits([{"train": ["A"], "val": ["B"]}] * folds)
    torch.manual_seed(0)
    for k in range(folds):
        path = run.fold_dir(k) / "model.safetensors"
        path.parent.mkdir()
        state = {n: v.contiguous() for n, v in GradeNet().state_dict().items()}
        save_file(state, path, metadata={"slice_size": str(size)})
        run.record_weights(path)
    rule = CalibrationRule(threshold=0.5)
    run.write_calibration(Calibration({"seg": rule, "noseg": rule}, GRADE))
    return folder


def read_run(folder: Path) -> None:
    """Everything predict reads from a run before it sees a patient."""
    from gliograde.infer.models import load_models
    from gliograde.run import Run

    run = Run.open(folder)
    load_models(run.weights())
    run.calibration()
    run.splits()
