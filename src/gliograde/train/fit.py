"""Fit one model with PyTorch Lightning: one fold, or every subject (``--full``).

Lightning owns the loop, devices, AMP, checkpoints, logging and DDP; :mod:`module` says what a
step is. The checkpoint kept is the best on the fold's inner selection patients (``--select
inner``) or the last one (``--select last``); its weights are exported as ``model.safetensors``,
what ``predict`` loads.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from dataclasses import asdict
from pathlib import Path

import lightning as L
import torch

from gliograde.core.console import say
from gliograde.core.devices import resolve_device
from gliograde.core.errors import GliogradeError
from gliograde.run.config import TrainConfig
from gliograde.store.read import SliceStore
from gliograde.train.module import GradeModule
from gliograde.train.precision import LIGHTNING_PRECISION, resolve_precision
from gliograde.train.resume import checkpoint_epoch, read_log, write_log
from gliograde.train.sampling import (
    IndexedSlices,
    class_weights,
    make_eval_loader,
    make_train_loader,
    training_items,
    tumor_threshold,
)
from gliograde.train.volumes import IndexedVolumes

COMPILE_BACKEND = "inductor"
"""The ``torch.compile`` backend of ``--compile``. The GPU bench's smoke mode (CI, on the CPU)
sets ``aot_eager`` in its own process: the graph and its backward captured as for inductor,
without inductor's lowering and code generation (a minute of CI on the CPU)."""


def quiet_lightning() -> None:
    """Keep Lightning's start-up chatter (device lists, tips) out of the user's terminal."""
    import logging
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*log_every_n_steps.*")
    # --select last: no selection split, so the module's validation_step is simply not run.
    warnings.filterwarnings("ignore", message=".*`validation_step` but have no `val_dataloader`.*")
    # Lightning's all_gather goes through a PyTorch function that now warns it is deprecated.
    warnings.filterwarnings("ignore", message=".*all_gather is deprecated.*")


def is_global_zero() -> bool:
    """Whether this process is rank 0 (torchrun, SLURM and Lightning's launcher all set it)."""
    from lightning.pytorch.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def leave_process_group() -> None:
    """Leave the DDP process group, if there is one, once every fold is trained. A rank that
    exits with it still up can abort in the teardown of its communication threads ("terminate
    called without an active exception", seen once in CI under torchrun)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def train_one(
    config: TrainConfig,
    store: SliceStore,
    fold_dir: Path,
    train_ids: list[str],
    select_ids: list[str],
    extra_callbacks: list | None = None,
) -> Path:
    """Train one model on ``train_ids``, choosing its checkpoint on ``select_ids``.

    With ``select_ids`` empty (``--select last``) the weights after the last epoch are kept.
    ``extra_callbacks`` go to the Lightning Trainer (``gliograde bench`` times steps with one).

    Returns:
        The path of the exported ``model.safetensors``.
    """
    quiet_lightning()
    L.seed_everything(config.seed, workers=True, verbose=False)
    accelerator = resolve_device(config.device)
    workers = loader_workers(config, accelerator)
    threshold = tumor_threshold(store)
    all_ids = sorted(store.subjects)
    train_ds = training_items(store, train_ids, threshold, all_ids, config)
    if len(train_ds) == 0:
        raise GliogradeError(f"{store.path}: no training slice or volume for this fold")
    module = make_module(config, train_ds, threshold, all_ids, len(store.target.classes))
    select = bool(select_ids)
    ckpt_dir = fold_dir / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    resume_from = checkpoint_epoch(last) if config.resume and last.is_file() else None
    # Read before the Trainer exists: Lightning's CSV logger deletes an existing metrics.csv.
    log_file = fold_dir / "logs" / "metrics.csv"
    earlier_log = read_log(log_file, until_epoch=resume_from) if resume_from is not None else []
    callbacks = make_callbacks(config, ckpt_dir, select) + (extra_callbacks or [])
    trainer = make_trainer(config, accelerator, fold_dir, callbacks, select)
    select_loader = None
    if select:
        select_ds = training_items(store, select_ids, threshold, all_ids, config, images=True)
        select_loader = make_eval_loader(select_ds, config.batch_size, workers)
    if resume_from is not None and trainer.is_global_zero:
        say(f"{fold_dir.name}: resuming after epoch {resume_from} ({last})")
    train_loader = make_train_loader(train_ds, config, workers, threshold, trainer.world_size)
    with stopped_cleanly(trainer, fold_dir, last):
        trainer.fit(
            module,
            train_dataloaders=train_loader,
            val_dataloaders=select_loader,
            ckpt_path=str(last) if resume_from is not None else None,
            weights_only=True,
        )
    best = ckpt_dir / ("best.ckpt" if select else "last.ckpt")
    if not trainer.is_global_zero:  # rank 0 wrote the checkpoints and exports them
        return fold_dir / "model.safetensors"
    if earlier_log:  # Lightning's CSV logger starts a new file: put the earlier epochs back
        write_log(log_file, earlier_log + read_log(log_file))
    return export_weights(best if best.is_file() else last, fold_dir / "model.safetensors",
                          store.manifest.slice_size, config.spec.grid)  # fmt: skip


def loader_workers(config: TrainConfig, accelerator: str) -> int:
    """DataLoader workers: none with ``--resident`` (the batches are gathered on the device) and
    on a CPU (they would compete with the training threads), up to 8 on a GPU, or as asked."""
    if config.resident:
        return 0
    if config.workers >= 0:
        return config.workers
    return 0 if accelerator == "cpu" else 8


def make_module(
    config: TrainConfig,
    train_ds: IndexedSlices | IndexedVolumes,
    threshold: int,
    all_ids: list[str],
    n_classes: int = 2,
) -> GradeModule:
    """The Lightning module (one output per class of the target), its class weights from the
    training slices, channels-last."""
    grade_slices = train_ds.index.tumor >= threshold
    weights = class_weights(train_ds.index.label[grade_slices], n_classes)
    if config.balance == "sampler":
        weights = [1.0] * n_classes
    module = GradeModule(asdict(config), weights, all_ids)
    if config.resident and isinstance(train_ds, IndexedSlices):  # on_fit_start moves it
        module.resident = train_ds.resident_images()
        if train_ds.neighbours is not None:
            module.neighbours = torch.from_numpy(train_ds.neighbours)
    # channels_last is faster for this network on GPUs (cuDNN) and on CPUs (oneDNN) alike.
    module.channels_last = True
    # Module.to(memory_format=...) is valid PyTorch, missing from torch's overloads of `to`
    module.model = module.model.to(memory_format=config.spec.memory_format)  # type: ignore[call-overload]
    if config.compile:  # what training and selection call: forward_heads, not forward
        # deliberate: this instance's forward_heads is replaced by its compiled version
        compiled = torch.compile(module.model.forward_heads, backend=COMPILE_BACKEND)
        module.model.forward_heads = compiled  # type: ignore[method-assign]
    return module


def make_callbacks(config: TrainConfig, ckpt_dir: Path, select: bool) -> list:
    """last.ckpt after every epoch; with selection, best.ckpt and early stopping too."""
    from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint

    # last.ckpt is its own callback, written after every epoch: ModelCheckpoint(save_last=True)
    # rewrites it only when the monitored metric improves, so a crash could lose many epochs.
    callbacks: list[Callback] = [
        ModelCheckpoint(dirpath=ckpt_dir, filename="last", enable_version_counter=False)
    ]
    if select:
        best = ModelCheckpoint(
            dirpath=ckpt_dir,
            filename="best",
            monitor="val_select",
            mode="max",
            enable_version_counter=False,
        )
        callbacks.append(best)
    if select and config.patience > 0:
        callbacks.append(EarlyStopping("val_auc", mode="max", patience=config.patience))
    if config.devices * config.nodes > 1:
        from gliograde.train.signals import StopTogether

        callbacks.append(StopTogether())
    return callbacks


def make_trainer(
    config: TrainConfig, accelerator: str, fold_dir: Path, callbacks: list, select: bool
) -> L.Trainer:
    """Lightning's Trainer: devices, DDP, precision, logs (CSV and TensorBoard)."""
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    distributed = config.devices * config.nodes > 1
    return L.Trainer(
        accelerator=accelerator,
        devices=config.devices,
        num_nodes=config.nodes,
        strategy="ddp" if distributed else "auto",
        # One BatchNorm over the global batch on GPUs; PyTorch has no SyncBatchNorm on CPU.
        sync_batchnorm=distributed and accelerator == "cuda",
        precision=LIGHTNING_PRECISION[
            resolve_precision(config.precision, accelerator, config.spec.is_3d)
        ],
        max_epochs=config.epochs,
        callbacks=callbacks,
        logger=[
            CSVLogger(fold_dir, name="logs", version=""),
            TensorBoardLogger(fold_dir, name="logs", version="", default_hp_metric=False),
        ],
        enable_progress_bar=config.progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if select else 0,
        log_every_n_steps=10,
        deterministic=accelerator == "cpu",
    )


def export_weights(checkpoint: Path, out: Path, slice_size: int, grid: int = 0) -> Path:
    """Save the network's weights from a Lightning checkpoint as safetensors, with the slice size
    they were trained on in the file's metadata (and a 3D network's ``grid``)."""
    from safetensors.torch import save_file

    from gliograde import __version__
    from gliograde.model.weights import load_state_dict

    state = load_state_dict(checkpoint)
    weights = {
        k.removeprefix("model.").replace("_orig_mod.", ""): v.contiguous()
        for k, v in state.items()
        if k.startswith("model.")
    }
    metadata = {"slice_size": str(slice_size), "gliograde": __version__}
    if grid:
        metadata["grid"] = str(grid)
    save_file(weights, out, metadata=metadata)
    return out


class TrainingStopped(GliogradeError):
    """Training was stopped by SIGTERM or Ctrl-C; the message says how to continue."""


@contextlib.contextmanager
def stopped_cleanly(trainer: L.Trainer, fold_dir: Path, last: Path):
    """Turn SIGTERM (a scheduler's stop) and Ctrl-C into one line saying how to continue.

    Lightning finishes the current batch and stops. ``last.ckpt``, written at the end of every
    epoch, stays the checkpoint to resume from: the interrupted epoch is done again on
    ``--resume``, so the resumed run still ends with exactly the uninterrupted run's weights.
    Ctrl-C is passed on as SIGTERM, so both stop the same way, at a batch's end (a
    KeyboardInterrupt raised wherever the main thread happens to be can be lost in library
    code); a second Ctrl-C interrupts at once (under torchrun, the launcher's own handling).
    """
    from lightning.pytorch.trainer.states import TrainerStatus
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    # Under torchrun the launcher passes a Ctrl-C on to its workers, which got it from the
    # terminal too: only the first becomes a SIGTERM (Lightning broadcasts between ranks from
    # its SIGTERM handler, so each rank must see the same number). There the launcher kills
    # workers that do not stop within 30 s: a second Ctrl-C is its to handle.
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    seen: list[int] = []  # the signals received

    def on_ctrl_c(signum, frame):
        if launched and seen:
            return
        seen.append(signum)
        if not launched:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        os.kill(os.getpid(), signal.SIGTERM)

    main = threading.current_thread() is threading.main_thread()  # signals: main thread only
    previous = signal.signal(signal.SIGINT, on_ctrl_c) if main else None
    try:
        yield
    except (SIGTERMException, SystemExit) as err:
        if isinstance(err, SystemExit) and trainer.state.status != TrainerStatus.INTERRUPTED:
            raise
        if last.is_file():
            epoch = checkpoint_epoch(last)
            raise TrainingStopped(
                f"{fold_dir.name}: stopped; epochs up to {epoch} are saved in {last}; run the "
                "same command with --resume to continue"
            ) from None
        raise TrainingStopped(
            f"{fold_dir.name}: stopped before its first epoch ended; nothing to resume, run the "
            "same command again"
        ) from None
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
