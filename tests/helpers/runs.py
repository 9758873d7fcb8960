"""Runs for tests: the one short training config, a run built without training (random
weights) for tests of how runs are read and used, and runs trained briefly on a synthetic cohort
(only tests marked ``slow`` may train: ``tests/conftest.py`` fails any other that does)."""

from __future__ import annotations

import functools
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


def prepare_tiny(cohort: Path, store: Path, target: str | None = None):
    """The store the tests' runs are trained on: ``cohort`` as 32×32 brain slices in 2 folds
    (``target``: a label column instead of the grade). Returns its manifest."""
    from gliograde.preprocess.slices import PrepareConfig
    from gliograde.store.write import prepare

    return prepare(cohort, store, PrepareConfig("brain", 20, 32, 2, target=target), quiet=True)


def train_tiny(store: Path, run: Path) -> dict:
    """A run trained on ``store`` for 2 epochs of 64 slices, then evaluated (slow: about half a
    minute on 2 cores). Returns its out-of-fold metrics."""
    from gliograde.experiment import train_and_evaluate

    return train_and_evaluate(train_config(store, run, epochs=2, epoch_slices=64)).to_dict()


def trained_run(cohort: Path, root: Path, target: str | None = None) -> tuple:
    """A store of ``cohort`` (:func:`prepare_tiny`, in ``root/store``) and a run trained on it
    (:func:`train_tiny`, in ``root/run``).

    Returns:
        (store manifest, run folder, out-of-fold metrics as ``metrics.json`` holds them).
    """
    manifest = prepare_tiny(cohort, root / "store", target)
    return manifest, root / "run", train_tiny(root / "store", root / "run")


def copy_run(run: Path, dst: Path) -> Path:
    """A copy of a run folder as predict, evaluate and report read it: without Lightning's
    checkpoints and logs (hundreds of MB that none of them reads)."""
    import shutil

    return Path(shutil.copytree(run, dst, ignore=shutil.ignore_patterns("checkpoints", "logs")))


FAKE_GRID = 32
"""A fake 3D run's grid: the smallest a 3D network takes."""


@functools.cache
def random_weights(folds: int, backbone: str = "resnet18") -> tuple[dict, ...]:
    """Each fold's weights for :func:`fake_run`: networks as built after ``torch.manual_seed(0)``
    (built once per process: a ResNet18's initialisation is a tenth of a second)."""
    from gliograde.model.backbones import Backbone
    from gliograde.model.network import GradeNet

    torch.manual_seed(0)
    spec = Backbone.named(backbone, grid=FAKE_GRID if backbone.endswith("-3d") else None)
    return tuple(
        {
            n: v.contiguous()
            for n, v in GradeNet(backbone=spec.name, context=spec.context, grid=spec.grid)
            .state_dict()
            .items()
        }
        for _ in range(folds)
    )


def fake_run(
    folder: Path,
    size: int = 32,
    folds: int = 2,
    store: Path | None = None,
    backbone: str = "resnet18",
) -> Path:
    """A structurally complete run: config, frozen splits, fold weights, checksums, calibration.

    Its weights are random (nothing is trained), of the network ``backbone``. With ``store``,
    the run is of that store, as
    ``train`` would have written it: its manifest (what predict's guard compares patients to),
    its folds and each fold's ``split.json``; ``size`` and ``folds`` are then the store's.
    """
    from safetensors.torch import save_file

    from gliograde.io.target import GRADE
    from gliograde.preprocess.slices import PrepareConfig
    from gliograde.run import Run
    from gliograde.run.calibration import Calibration, CalibrationRule
    from gliograde.run.config import RunConfig
    from gliograde.store.manifest import StoreManifest

    if store is None:
        options = PrepareConfig(size=size, min_tumor_pixels=20)
        manifest = StoreManifest(
            "unused", "brats2020", ["A", "B"], GRADE, {"A": "LGG", "B": "HGG"}, (4, size, size),
            options, n_slices=0, folds=folds,
        )  # fmt: skip
        splits = [{"train": ["A"], "val": ["B"]}] * folds
    else:
        from gliograde.store.read import SliceStore
        from gliograde.store.splits import load_splits

        manifest = SliceStore(store).manifest
        splits = load_splits(store)
        size, folds = manifest.slice_size, len(splits)
    grid = FAKE_GRID if backbone.endswith("-3d") else None
    config = train_config(store or "unused", folder, folds=None, backbone=backbone, grid=grid)
    run = Run.create(folder, RunConfig(config, manifest))
    run.write_splits(splits)
    if store is not None:
        for k, split in enumerate(splits):
            fold = {"train": sorted(split["train"]), "select": [], "val": sorted(split["val"])}
            run.write_fold_split(run.fold_dir(k), fold)
    for k, state in enumerate(random_weights(folds, backbone)):
        path = run.fold_dir(k) / "model.safetensors"
        path.parent.mkdir(exist_ok=True)
        metadata = {"slice_size": str(size)} | ({"grid": str(grid)} if grid else {})
        save_file(state, path, metadata=metadata)
        run.record_weights(path)
    rule = CalibrationRule(threshold=0.5)
    run.write_calibration(Calibration({"seg": rule, "noseg": rule}, manifest.target))
    return folder


def read_run(folder: Path) -> None:
    """Everything predict reads from a run before it sees a patient."""
    from gliograde.infer.models import load_models
    from gliograde.run import Run

    run = Run.open(folder)
    load_models(run.weights())
    run.calibration()
    run.splits()
