"""``gliograde train``: cross-validated training with PyTorch Lightning.

Lightning owns the loop, devices, AMP, checkpoints, logging and DDP; this module says what a
step is. Per fold, the best checkpoint by validation patient-level AUC is kept, its weights are
exported as ``model.safetensors`` (what ``predict`` loads), and its out-of-fold slice
predictions are saved; pooled over folds they give ``metrics.json``.

Run layout::

    RUN/config.json                   every option and the package versions
    RUN/fold_K/checkpoints/           Lightning checkpoints (best.ckpt, last.ckpt)
    RUN/fold_K/logs/                  CSV and TensorBoard logs
    RUN/fold_K/model.safetensors      the best weights
    RUN/predictions_slices.csv        out-of-fold predictions, all folds
    RUN/predictions_patients.csv, RUN/metrics.json, RUN/roc.png, RUN/confusion.png
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from gliograde.dataset import SliceDataset, SliceStore
from gliograde.errors import GliogradeError, UsageError
from gliograde.evaluate import SlicePredictions, aggregate_patients, roc_auc
from gliograde.loaders import (
    IndexedSlices,
    class_weights,
    make_eval_loader,
    make_train_loader,
    tumor_threshold,
)
from gliograde.resume import check_resume, checkpoint_epoch, read_log, write_log


@dataclass
class TrainConfig:
    """Options of ``train``; written to ``RUN/config.json``."""

    store: str
    out: str
    folds: list[int] | None = None  # None: all folds of the store
    full: bool = False
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "auto"
    devices: int = 1  # per node; DDP when devices × nodes > 1
    nodes: int = 1
    balance: str = "weights"  # "weights" (class-weighted loss) or "sampler" (balanced sampling)
    epoch_slices: int | None = None  # slices drawn per epoch (default: every training slice)
    augment: bool = True
    patience: int = 5
    tumor_loss_weight: float = 0.5
    workers: int = -1  # DataLoader workers; -1: 0 on CPU, up to 8 on GPU
    compile: bool = False
    resident: bool = False  # keep the training slices on the device (GPU memory)
    pretrained: str | None = None
    resume: bool = False
    progress: bool = True

    def __post_init__(self):
        if self.balance not in ("weights", "sampler"):
            raise UsageError("--balance must be 'weights' or 'sampler'")
        if self.device not in ("auto", "cpu", "gpu"):
            raise UsageError("--device must be auto, cpu or gpu")


def quiet_lightning() -> None:
    """Keep Lightning's start-up chatter (device lists, tips) out of the user's terminal."""
    import logging
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*log_every_n_steps.*")
    # Lightning's all_gather goes through a PyTorch function that now warns it is deprecated.
    warnings.filterwarnings("ignore", message=".*all_gather is deprecated.*")


def resolve_accelerator(device: str) -> str:
    if device == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    if device == "gpu" and not torch.cuda.is_available():
        raise GliogradeError("--device gpu: no CUDA GPU is visible to PyTorch; use --device cpu")
    return device


class GradeModule(L.LightningModule):
    """A training step for :class:`gliograde.model.GradeNet`: grade CE + tumour-presence BCE."""

    def __init__(self, config: dict, class_weights: list[float], subjects: list[str]):
        super().__init__()
        self.save_hyperparameters()
        from gliograde.model import build_model

        self.config = TrainConfig(**config)
        self.model = build_model(self.config.pretrained)
        self.register_buffer("class_weights", torch.tensor(class_weights, dtype=torch.float32))
        self.subjects = subjects
        self._val: list[dict[str, torch.Tensor]] = []
        self.channels_last = False
        self.resident: torch.Tensor | None = None  # not a buffer: never saved in checkpoints

    def forward(self, x):
        return self.model(x)

    def on_fit_start(self):
        if self.resident is not None:  # --resident: once, onto the device Lightning chose
            self.resident = self.resident.to(self.device)

    def on_after_batch_transfer(self, batch, dataloader_idx):
        # --resident: no "x" in the batch; it is gathered from the slices kept on this device.
        x = batch["x"] if "x" in batch else self.resident[batch["item"]].float()
        if self.trainer.training and self.config.augment:
            from gliograde.augment import augment_batch

            # Seeded by (seed, step, rank): a resumed run draws what the uninterrupted one drew.
            seed = hash((self.config.seed, self.global_step, self.global_rank)) % 2**63
            x = augment_batch(x, generator=torch.Generator().manual_seed(seed))
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return {**batch, "x": x}

    def training_step(self, batch, batch_idx):
        logits, tumor_logit = self.model.forward_heads(batch["x"])
        is_tumor = batch["tumor"].to(logits.dtype)
        grade_mask = is_tumor > 0.5
        if grade_mask.any():
            grade_loss = F.cross_entropy(
                logits[grade_mask].float(), batch["y"][grade_mask], weight=self.class_weights
            )
        else:
            grade_loss = logits.sum() * 0.0
        tumor_loss = F.binary_cross_entropy_with_logits(tumor_logit.float(), is_tumor.float())
        loss = grade_loss + self.config.tumor_loss_weight * tumor_loss
        self.log_dict(
            {"train_loss": loss, "train_grade_loss": grade_loss, "train_tumor_loss": tumor_loss},
            prog_bar=False,
            on_step=False,
            on_epoch=True,
            batch_size=len(logits),
            sync_dist=self.trainer.world_size > 1,
        )
        return loss

    def validation_step(self, batch, batch_idx):
        logits, tumor_logit = self.model.forward_heads(batch["x"])
        ce = F.cross_entropy(logits.float(), batch["y"], reduction="none")
        self._val.append(
            {
                "ce": ce.cpu(),
                "p_hgg": torch.softmax(logits.float(), 1)[:, 1].cpu(),
                "p_tumor": torch.sigmoid(tumor_logit.float()).cpu(),
                "y": batch["y"].cpu(),
                "tumor": batch["tumor"].cpu(),
                "subject_idx": batch["subject_idx"].cpu(),
                "item": batch["item"].cpu(),
            }
        )

    def on_validation_epoch_end(self):
        if not self._val:
            return
        v = {k: torch.cat([b[k] for b in self._val]) for k in self._val[0]}
        self._val.clear()
        if self.trainer.world_size > 1:
            v = gather_each_slice_once(self, v)
        v = {k: t.numpy() for k, t in v.items()}
        preds = SlicePredictions(
            fold=np.zeros(len(v["y"]), dtype=int),
            subject=v["subject_idx"],
            z=np.zeros(len(v["y"]), dtype=int),
            y=v["y"],
            p_hgg=v["p_hgg"],
            p_tumor=v["p_tumor"],
            tumor_pixels=np.zeros(len(v["y"]), dtype=int),
            tumor_slice=v["tumor"] > 0.5,
            p_hgg_flip_lr=v["p_hgg"],
            p_hgg_flip_ap=v["p_hgg"],
        )
        patients = aggregate_patients(preds)
        auc = roc_auc(patients.y, patients.p_hgg)
        auc = float(auc if auc is not None else 0.5)
        grade_slices = v["tumor"] > 0.5
        loss = float(v["ce"][grade_slices].mean()) if grade_slices.any() else 0.0
        # Every rank computes these on the same gathered predictions: no sync_dist needed.
        self.log("val_auc", auc, prog_bar=True)
        self.log("val_loss", loss)
        self.log("val_n_slices", float(len(v["y"])))
        self.log("val_n_patients", float(len(patients.subject)))
        # The checkpoint is chosen by patient AUC; among equal AUCs (frequent on a small fold,
        # where several epochs reach 1.0) the lower loss wins, i.e. the better-calibrated model.
        self.log("val_select", auc - 1e-3 * min(loss, 100.0))
        auc_noseg = roc_auc(patients.y, patients.p_hgg_noseg)
        self.log("val_auc_noseg", float(auc_noseg if auc_noseg is not None else 0.5))

    def configure_optimizers(self):
        opt = torch.optim.AdamW(
            self.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.config.lr, total_steps=total, pct_start=0.15
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def gather_each_slice_once(module: L.LightningModule, v: dict[str, torch.Tensor]) -> dict:
    """All ranks' validation outputs, each slice exactly once.

    Under DDP, Lightning's DistributedSampler pads the validation set so that every rank gets
    the same number of items, by repeating some; a patient's slices would then count twice.
    Each item carries its dataset position (``item``): gather everything, keep each once.
    """
    n = torch.tensor([len(v["item"])])
    sizes = module.all_gather(n).flatten().tolist()
    most = max(sizes)
    padded = {k: F.pad(t, (0, most - len(t))) for k, t in v.items()}
    gathered = module.all_gather(padded)  # each [world_size, most]
    parts = {k: torch.cat([t[r, :size] for r, size in enumerate(sizes)]).cpu()
             for k, t in gathered.items()}  # fmt: skip
    order = parts["item"].numpy()
    _, first = np.unique(order, return_index=True)
    keep = torch.from_numpy(np.sort(first))
    return {k: t[keep] for k, t in parts.items()}


def is_global_zero() -> bool:
    """Whether this process is rank 0 (torchrun, SLURM and Lightning's launcher all set it)."""
    from lightning.pytorch.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def train_one(
    config: TrainConfig,
    store: SliceStore,
    fold_dir: Path,
    train_ids: list[str],
    val_ids: list[str],
    extra_callbacks: list | None = None,
) -> Path:
    """Train one model (one fold, or the full data when ``val_ids`` is empty).

    ``extra_callbacks`` go to the Lightning Trainer (``gliograde bench`` times steps with one).

    Returns:
        The path of the exported ``model.safetensors``.
    """
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    quiet_lightning()
    L.seed_everything(config.seed, workers=True, verbose=False)
    accelerator = resolve_accelerator(config.device)
    workers = config.workers if config.workers >= 0 else (0 if accelerator == "cpu" else 8)
    threshold = tumor_threshold(store)
    all_ids = sorted(store.subjects)
    train_ds = IndexedSlices(store, train_ids, threshold, all_ids, images=not config.resident)
    if len(train_ds) == 0:
        raise GliogradeError(f"{store.path}: no training slice for this fold")
    grade_slices = train_ds.index.tumor >= threshold
    weights = class_weights(train_ds.index.label[grade_slices])
    if config.balance == "sampler":
        weights = [1.0, 1.0]
    module = GradeModule(asdict(config), weights, all_ids)
    if config.resident:  # read once here; on_fit_start moves it to the device
        module.resident = train_ds.resident_images()
    # channels_last is faster for this network on GPUs (cuDNN) and on CPUs (oneDNN) alike.
    module.channels_last = True
    module.model = module.model.to(memory_format=torch.channels_last)
    if config.compile:
        module.model = torch.compile(module.model)
    validate = bool(val_ids)
    ckpt_dir = fold_dir / "checkpoints"
    # last.ckpt is its own callback, written after every epoch: ModelCheckpoint(save_last=True)
    # rewrites it only when the monitored metric improves, so a crash could lose many epochs.
    callbacks = [ModelCheckpoint(dirpath=ckpt_dir, filename="last", enable_version_counter=False)]
    if validate:
        callbacks.append(
            ModelCheckpoint(
                dirpath=ckpt_dir,
                filename="best",
                monitor="val_select",
                mode="max",
                enable_version_counter=False,
            )
        )
    if validate and config.patience > 0:
        callbacks.append(EarlyStopping("val_auc", mode="max", patience=config.patience))
    callbacks += extra_callbacks or []
    last = ckpt_dir / "last.ckpt"
    resume_from = checkpoint_epoch(last) if config.resume and last.is_file() else None
    # Read before the Trainer exists: Lightning's CSV logger deletes an existing metrics.csv.
    log_file = fold_dir / "logs" / "metrics.csv"
    earlier_log = read_log(log_file, until_epoch=resume_from) if resume_from is not None else []
    distributed = config.devices * config.nodes > 1
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=config.devices,
        num_nodes=config.nodes,
        strategy="ddp" if distributed else "auto",
        # One BatchNorm over the global batch on GPUs; PyTorch has no SyncBatchNorm on CPU.
        sync_batchnorm=distributed and accelerator == "gpu",
        precision="bf16-mixed" if accelerator == "gpu" else "32-true",
        max_epochs=config.epochs,
        callbacks=callbacks,
        logger=[
            CSVLogger(fold_dir, name="logs", version=""),
            TensorBoardLogger(fold_dir, name="logs", version="", default_hp_metric=False),
        ],
        enable_progress_bar=config.progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if validate else 0,
        log_every_n_steps=10,
        deterministic=accelerator == "cpu",
    )
    val_loader = None
    if validate:
        val_ds = IndexedSlices(store, val_ids, threshold, all_ids)
        val_loader = make_eval_loader(val_ds, config.batch_size, workers)
    if resume_from is not None and trainer.is_global_zero:
        print(f"{fold_dir.name}: resuming after epoch {resume_from} ({last})",
              file=sys.stderr, flush=True)  # fmt: skip
    trainer.fit(
        module,
        train_dataloaders=make_train_loader(
            train_ds, config, workers, threshold, trainer.world_size
        ),
        val_dataloaders=val_loader,
        ckpt_path=str(last) if resume_from is not None else None,
        weights_only=True,
    )
    best = ckpt_dir / ("best.ckpt" if validate else "last.ckpt")
    if not best.is_file():
        best = last
    if not trainer.is_global_zero:  # rank 0 wrote the checkpoints and exports them
        return fold_dir / "model.safetensors"
    if earlier_log:  # Lightning's CSV logger starts a new file: put the earlier epochs back
        write_log(log_file, earlier_log + read_log(log_file))
    return export_weights(best, fold_dir / "model.safetensors")


def export_weights(checkpoint: Path, out: Path) -> Path:
    """Save the network's weights from a Lightning checkpoint as safetensors."""
    from safetensors.torch import save_file

    from gliograde.safeio import load_state_dict

    state = load_state_dict(checkpoint)
    weights = {
        k.removeprefix("model.").replace("_orig_mod.", ""): v.contiguous()
        for k, v in state.items()
        if k.startswith("model.")
    }
    save_file(weights, out)
    return out


def predict_slices(
    weights: list[Path], store: SliceStore, subjects: list[str], fold: int, device: str = "cpu"
) -> SlicePredictions:
    """Predictions of one or more models (averaged) on every stored slice of ``subjects``,
    with the test-time flips used for uncertainty."""
    from gliograde.inference import VARIANTS, load_models, run_models

    threshold = tumor_threshold(store)
    ds = SliceDataset(store, subjects, 0, threshold)
    models = load_models(weights, device)
    x = (ds[i]["x"] for i in range(len(ds)))
    p_hgg, p_tumor = run_models(models, x, device, variants=VARIANTS)
    p_hgg, p_tumor = p_hgg.mean(axis=0), p_tumor.mean(axis=0)  # over models
    return SlicePredictions(
        fold=np.full(len(ds), fold),
        subject=ds.index.subject.copy(),
        z=ds.index.z.copy(),
        y=ds.index.label.copy(),
        p_hgg=p_hgg[0],
        p_tumor=p_tumor[0],
        tumor_pixels=ds.index.tumor.copy(),
        tumor_slice=ds.index.tumor >= threshold,
        p_hgg_flip_lr=p_hgg[1],
        p_hgg_flip_ap=p_hgg[2],
    )


def run_training(config: TrainConfig) -> dict | None:
    """Train the folds asked for (or one full model) and evaluate them.

    Under DDP every process runs this function and trains every fold together; only rank 0
    writes files outside Lightning's own (config, predictions, metrics).

    Returns:
        The metrics of the pooled out-of-fold predictions, or None for ``--full`` and on ranks
        other than 0.
    """
    from gliograde.evaluate import evaluate_run
    from gliograde.splits import load_splits
    from gliograde.store import package_versions, write_json

    store = SliceStore(Path(config.store))
    out = Path(config.out)
    check_resume(config, out)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        **asdict(config),
        "store_manifest": store.manifest,
        "versions": package_versions(),
    }
    lead = is_global_zero()
    if lead:
        write_json(out / "config.json", record)
    if config.full:
        train_one(config, store, out / "full", store.subjects, [])
        return None
    splits = load_splits(store.path)
    if not splits:
        raise GliogradeError(
            f"{store.path}: the store has no cross-validation folds (too few subjects of a "
            "grade); train with --full"
        )
    folds = config.folds if config.folds is not None else list(range(len(splits)))
    bad = [f for f in folds if not 0 <= f < len(splits)]
    if bad:
        raise UsageError(f"--fold {bad[0]}: the store has folds 0 to {len(splits) - 1}")
    device = "cuda" if resolve_accelerator(config.device) == "gpu" else "cpu"
    parts = []
    for k in folds:
        fold_dir = out / f"fold_{k}"
        done = fold_dir / "predictions_slices.csv"
        if config.resume and done.is_file() and (fold_dir / "model.safetensors").is_file():
            parts.append(SlicePredictions.read_csv(done))
            continue
        weights = train_one(config, store, fold_dir, splits[k]["train"], splits[k]["val"])
        if not lead:
            continue
        preds = predict_slices([weights], store, splits[k]["val"], k, device)
        preds.write_csv(fold_dir / "predictions_slices.csv")
        parts.append(preds)
        patients = aggregate_patients(preds)
        auc = roc_auc(patients.y, patients.p_hgg)
        auc_text = "n/a" if auc is None else f"{auc:.3f}"
        print(f"fold {k}: {len(patients.subject)} validation patients, AUC {auc_text}",
              file=sys.stderr, flush=True)  # fmt: skip
    if not lead:
        return None
    SlicePredictions.concat(parts).write_csv(out / "predictions_slices.csv")
    return evaluate_run(out)
