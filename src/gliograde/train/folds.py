"""``gliograde train``: one model per cross-validation fold (or one on every subject).

Per fold, the store's training patients are split again: most train the model, an inner
selection split (``--select inner``) chooses its checkpoint and stops training early. The fold's
validation patients are not read here at all; they are predicted afterwards, once, by
:mod:`gliograde.assess.crossval`. The store's folds are frozen into the run (``RUN/splits.json``)
and each fold records its three patient lists in ``fold_K/split.json``.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
from pathlib import Path

from gliograde.core.console import say
from gliograde.core.devices import resolve_device
from gliograde.core.errors import GliogradeError, UsageError
from gliograde.core.files import package_versions
from gliograde.core.lock import LOCK_NAME, folder_lock
from gliograde.run import Run
from gliograde.run.config import RunConfig, TrainConfig
from gliograde.run.cost import measured, write_cost
from gliograde.run.folder import finished_dirs
from gliograde.store.read import SliceStore
from gliograde.store.splits import inner_split, load_splits
from gliograde.train.fit import is_global_zero, train_one
from gliograde.train.precision import with_resolved_precision
from gliograde.train.resume import check_resume


def train_folds(config: TrainConfig) -> list[int]:
    """Train the folds asked for (or one ``--full`` model), skipping folds already done.

    Under DDP every process runs this function and trains every fold together; only rank 0
    writes files outside Lightning's own.

    One process writes a run folder at a time (a lock file says who). On a full disk, training
    stops with one line and the files this call added are removed.

    Returns:
        The folds trained or found done (empty for ``--full``).
    """
    out = Path(config.out)
    if config.spec.is_3d:  # missing volumes stop here, before the run folder is made
        from gliograde.store.read import SliceStore
        from gliograde.store.volumes import VolumeStore

        VolumeStore(SliceStore(Path(config.store)), config.spec.grid)
    existed, lead = out.exists(), is_global_zero()
    with folder_lock(out, "gliograde train") if lead else contextlib.nullcontext():
        before = set(out.rglob("*")) if existed else None
        try:
            return fit_all(config, out)
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT) or not lead:
                raise
            kept = remove_added(out, before)
            raise GliogradeError(
                f"{out}: no space left on the disk while training; the unfinished fold's files "
                f"were removed{kept}; free some space and run the same command with --resume"
            ) from None


def remove_added(out: Path, before: set[Path] | None) -> str:
    """Remove what a failed call added to ``out``, except folds it finished (their weights are
    recorded in ``checksums.json``); says which folds were kept."""
    done = finished_dirs(out)
    if before is None and not done:
        shutil.rmtree(out, ignore_errors=True)
        return ""
    added = set(out.rglob("*")) - (before or set())
    for path in sorted(added, key=lambda p: len(p.parts), reverse=True):
        if path.name == LOCK_NAME or any(d == path or d in path.parents for d in done):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.name not in ("config.json", "splits.json", "checksums.json"):
            path.unlink(missing_ok=True)
    names = ", ".join(sorted(d.name for d in done))
    return f" (finished folds kept: {names})" if names else ""


def fit_all(config: TrainConfig, out: Path) -> list[int]:
    """Write ``config.json``, then train the ``--full`` model or each fold asked for."""
    store = SliceStore(Path(config.store))
    config = with_resolved_precision(config, out)
    check_resume(config, out)
    out.mkdir(parents=True, exist_ok=True)
    record = RunConfig(config, store.manifest, package_versions())
    run = Run.create(out, record) if is_global_zero() else Run(out, record)
    if config.full:
        fit_fold(config, store, run, None, {"train": store.subjects, "val": []})
        if is_global_zero():  # no held-out patient: nothing to calibrate on
            run.write_uncalibrated()
        return []
    splits = frozen_splits(store, run, reuse=config.resume)
    folds = config.folds if config.folds is not None else list(range(len(splits)))
    bad = [f for f in folds if not 0 <= f < len(splits)]
    if bad:
        raise UsageError(f"--fold {bad[0]}: the store has folds 0 to {len(splits) - 1}")
    for k in folds:
        fit_fold(config, store, run, k, splits[k])
    return folds


def frozen_splits(store: SliceStore, run: Run, reuse: bool) -> list[dict[str, list[str]]]:
    """The run's own copy of the store's folds: written by a new run, read by ``--resume``."""
    if reuse and (run.path / "splits.json").is_file():
        return run.splits()
    splits = load_splits(store.path)
    if not splits:
        raise GliogradeError(
            f"{store.path}: the store has no cross-validation folds (too few subjects of a "
            "grade); train with --full"
        )
    if is_global_zero():
        run.write_splits(splits)
    return splits


def fit_fold(
    config: TrainConfig, store: SliceStore, run: Run, fold: int | None, split: dict
) -> Path:
    """Train fold ``fold`` (None: the ``--full`` model) unless its weights exist (``--resume``);
    records its ``split.json``, its weights' checksum (checked on every load) and what its
    training cost (``cost.json``)."""
    fold_dir = run.fold_dir(fold)
    weights = fold_dir / "model.safetensors"
    if config.resume and weights.is_file() and (fold_dir / "split.json").is_file():
        return weights
    split = fold_patients(config, store, fold_dir.name, split)
    if is_global_zero():
        run.write_fold_split(fold_dir, split)
    with measured(resolve_device(config.device)) as meter:
        weights = train_one(config, store, fold_dir, split["train"], split["select"])
    if is_global_zero():
        run.record_weights(weights)
        if meter.cost is not None:  # set when the block ended without an error
            write_cost(fold_dir, meter.cost)
    return weights


def fold_patients(config: TrainConfig, store: SliceStore, name: str, fold: dict) -> dict:
    """``{"train", "select", "val"}``: the store's fold with its training patients split again."""
    train_ids = sorted(fold["train"])
    split = {"train": train_ids, "select": [], "val": sorted(fold["val"])}
    if config.select == "last" or config.full:  # --full: every subject trains, no selection
        return split
    classes = store.labels
    labels = [store.target.index(classes[s]) for s in train_ids]
    seed = config.seed * 1000 + sum(map(ord, name))
    inner = inner_split(train_ids, labels, config.select_fraction, seed)
    if inner is None:
        say(
            f"{name}: too few training patients of a class for an inner selection split; "
            "keeping the last epoch's weights (as --select last)"
        )
        return split
    split["train"], split["select"] = inner
    return split
