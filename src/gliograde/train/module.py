"""What one training step and one selection step are, for Lightning: class cross-entropy on
tumour slices plus tumour-presence BCE on every slice; patient AUC on the selection patients
(for more than two classes, the macro one-vs-rest AUC)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from gliograde.model.probability import (
    class_probabilities,
    macro_auc,
    noseg_weights,
    patient_mean,
    seg_weights,
)
from gliograde.model.resnet import IN_CHANNELS
from gliograde.run.config import TrainConfig


class GradeModule(L.LightningModule):
    """A training step for :class:`gliograde.model.network.GradeNet`.

    The "validation" Lightning runs is checkpoint selection: it sees only the inner selection
    patients, drawn from the fold's training patients (``--select inner``), never the fold's
    own validation patients.
    """

    class_weights: torch.Tensor  # registered as a buffer in __init__ (moves with the module)

    def __init__(self, config: dict, class_weights: list[float], subjects: list[str]):
        """``class_weights``: one per class of the target, so also the number of outputs."""
        super().__init__()
        self.save_hyperparameters()
        from gliograde.model.network import build_model

        self.config = TrainConfig(**config)
        pretrained = self.config.pretrained
        self.model = build_model(
            Path(pretrained) if pretrained is not None else None,
            num_classes=len(class_weights),
            spec=self.config.spec,
        )
        self.register_buffer("class_weights", torch.tensor(class_weights, dtype=torch.float32))
        self.subjects = subjects
        self._val: list[dict[str, torch.Tensor]] = []
        self.channels_last = False
        self.resident: torch.Tensor | None = None  # not a buffer: never saved in checkpoints
        self.neighbours: torch.Tensor | None = None  # 2.5D --resident: each item's [2k+1] items

    def forward(self, x):
        return self.model(x)

    def on_fit_start(self):
        if self.resident is not None:  # --resident: once, onto the device Lightning chose
            self.resident = self.resident.to(self.device)
            if self.neighbours is not None:
                self.neighbours = self.neighbours.to(self.device)

    def on_after_batch_transfer(self, batch, dataloader_idx):
        # --resident: no "x" in the batch; it is gathered from the slices kept on this device
        # (index_select: about twice as fast as indexing with a tensor on a CPU).
        x = batch["x"] if "x" in batch else self.resident_batch(batch["item"])
        if self.trainer.training and self.config.augment:
            from gliograde.train.augment import augment_batch, augment_volumes

            # Seeded by (seed, step, rank): a resumed run draws what the uninterrupted one drew.
            seed = hash((self.config.seed, self.global_step, self.global_rank)) % 2**63
            generator = torch.Generator().manual_seed(seed)
            augment = augment_volumes if x.dim() == 5 else augment_batch
            x = augment(x, generator=generator, sequences=IN_CHANNELS)
        if self.channels_last:
            x = x.contiguous(memory_format=self.config.spec.memory_format)
        return {**batch, "x": x}

    def resident_batch(self, items: torch.Tensor) -> torch.Tensor:
        """The batch's slices gathered from the resident ones (2.5D: with their neighbours)."""
        resident = self.resident
        if resident is None:
            raise RuntimeError("no resident slices: set module.resident first")
        if self.neighbours is None:
            return resident.index_select(0, items).float()
        rows = self.neighbours.index_select(0, items.to(self.neighbours.device))
        x = resident.index_select(0, rows.flatten().to(resident.device))
        return x.view(len(items), -1, *x.shape[2:]).float()

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
                "p": torch.softmax(logits.float(), 1).cpu(),
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
        gathered = {k: torch.cat([b[k] for b in self._val]) for k in self._val[0]}
        self._val.clear()
        if self.trainer.world_size > 1:
            gathered = gather_each_slice_once(self, gathered)
        v = {k: t.numpy() for k, t in gathered.items()}
        auc, auc_noseg, n_patients = selection_aucs(v)
        grade_slices = v["tumor"] > 0.5
        loss = float(v["ce"][grade_slices].mean()) if grade_slices.any() else 0.0
        # Every rank computes these on the same gathered predictions: no sync_dist needed.
        self.log("val_auc", auc, prog_bar=True)
        self.log("val_loss", loss)
        self.log("val_n_slices", float(len(v["y"])))
        self.log("val_n_patients", float(n_patients))
        # The checkpoint is chosen by patient AUC; among equal AUCs (frequent on a small split,
        # where several epochs reach 1.0) the lower loss wins, i.e. the better-calibrated model.
        self.log("val_select", auc - 1e-3 * min(loss, 100.0))
        self.log("val_auc_noseg", auc_noseg)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(
            self.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.config.lr, total_steps=total, pct_start=0.15
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def selection_aucs(v: dict[str, np.ndarray]) -> tuple[float, float, int]:
    """Patient AUC with a segmentation and without, and the number of patients.

    ``v``: the selection outputs gathered from every rank, as NumPy arrays, one row per slice
    (``p`` ``[n, K]``; ``y``, ``tumor``, ``p_tumor``, ``subject_idx``, ``ce``, ``item`` ``[n]``).

    Patients are aggregated, and the AUC computed, as evaluation and ``predict`` do
    (:mod:`gliograde.model.probability`); 0.5 when the split has a single class.
    """
    patients = np.unique(v["subject_idx"])
    scores = class_probabilities(v["p"])
    y: list[int] = []
    p_seg: list[np.ndarray] = []
    p_noseg: list[np.ndarray] = []
    for s in patients:
        m = v["subject_idx"] == s
        y.append(int(v["y"][m][0]))
        p_seg.append(patient_mean(scores[m], seg_weights(v["tumor"][m], 0.5)))
        p_noseg.append(patient_mean(scores[m], noseg_weights(v["p_tumor"][m])))
    labels = np.asarray(y)
    auc_seg, auc_noseg = macro_auc(labels, np.array(p_seg)), macro_auc(labels, np.array(p_noseg))
    if len(set(y)) < 2 or auc_seg is None or auc_noseg is None:
        return 0.5, 0.5, len(patients)
    return auc_seg, auc_noseg, len(patients)


def gather_each_slice_once(
    module: L.LightningModule, v: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """All ranks' validation outputs, each slice exactly once.

    Under DDP, Lightning's DistributedSampler pads the validation set so that every rank gets
    the same number of items, by repeating some; a patient's slices would then count twice.
    Each item carries its dataset position (``item``): gather everything, keep each once.
    """
    n = torch.tensor([len(v["item"])])
    # all_gather returns what it is given, gathered: a tensor for a tensor, a dict for a dict
    sizes = cast(torch.Tensor, module.all_gather(n)).flatten().tolist()
    most = max(sizes)
    # padded along the first axis (F.pad's pairs run from the last axis: P(class) is [n, K])
    padded = {k: F.pad(t, (0, 0) * (t.dim() - 1) + (0, most - len(t))) for k, t in v.items()}
    gathered = cast(dict[str, torch.Tensor], module.all_gather(padded))  # [world, most, ...]
    parts = {
        k: torch.cat([t[r, :size] for r, size in enumerate(sizes)]).cpu()
        for k, t in gathered.items()
    }
    order = parts["item"].numpy()
    _, first = np.unique(order, return_index=True)
    keep = torch.from_numpy(np.sort(first))
    return {k: t[keep] for k, t in parts.items()}
