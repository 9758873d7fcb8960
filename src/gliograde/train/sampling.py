"""The data side of training: which slices are drawn, how often, and in which batches.

Tumour slices are over-sampled, the draws depend only on (seed, epoch) so that a resumed run
draws what an uninterrupted one did, and ``--batch-size`` is the global batch shared out among
DDP processes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

from gliograde.core.errors import UsageError
from gliograde.run.config import TrainConfig
from gliograde.store.dataset import SliceDataset
from gliograde.store.read import SliceStore

TUMOR_OVERSAMPLING = 3.0


class IndexedSlices(SliceDataset):
    """A :class:`SliceDataset` whose items also carry the subject as an integer (for gathering).

    With ``images=False`` (``--resident``: the images are read once into one tensor on the
    device and gathered there by ``item``) a DataLoader fetches a whole batch of labels at once
    (:meth:`__getitems__`), with no per-item dict to collate; give it ``collate_fn=as_batch``.
    """

    def __init__(
        self, store, subjects, tumor_threshold, subject_ids, images: bool = True, context: int = 0
    ):
        super().__init__(store, subjects, 0, tumor_threshold, context)
        self.subject_idx = {s: i for i, s in enumerate(subject_ids)}
        self.images = images
        self.subject_codes = np.array([self.subject_idx[s] for s in self.index.subject], np.int64)

    def __getitem__(self, i):
        item = super().__getitem__(i) if self.images else self.labels(i)
        item["subject_idx"] = self.subject_idx[item["subject"]]
        item["item"] = i
        return item

    def __getitems__(self, indices: list[int]) -> list[dict] | dict[str, torch.Tensor]:
        """The items of a batch: one by one when the images are read here, else the batch's
        labels as tensors (``item``, ``y``, ``tumor``, ``subject_idx``)."""
        if self.images:
            return [self[i] for i in indices]
        i = np.asarray(indices, dtype=np.int64)
        return {
            "item": torch.from_numpy(i),
            "y": torch.from_numpy(self.index.label[i].astype(np.int64)),
            "tumor": torch.from_numpy(
                (self.index.tumor[i] >= self.tumor_threshold).astype(np.float32)
            ),
            "subject_idx": torch.from_numpy(self.subject_codes[i]),
        }


def training_items(
    store: SliceStore,
    subjects: list[str],
    threshold: int,
    subject_ids: list[str],
    config: TrainConfig,
    images: bool | None = None,
):
    """The items a fold trains (or selects) on: slices (2.5D: with their neighbours), or for a
    3D backbone the subjects' volumes; ``images`` None: read here unless ``--resident``."""
    spec = config.spec
    if spec.is_3d:
        from gliograde.train.volumes import IndexedVolumes

        return IndexedVolumes(store, subjects, threshold, subject_ids, spec.grid)
    images = not config.resident if images is None else images
    return IndexedSlices(store, subjects, threshold, subject_ids, images, spec.context)


def as_batch(batch):
    """A DataLoader's ``collate_fn`` for a dataset that fetches whole batches: as they are."""
    return batch


def class_weights(labels: np.ndarray, n_classes: int = 2) -> list[float]:
    """Inverse-frequency weights, ``n / (K n_c)``: each class weighs the same in the loss."""
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    counts[counts == 0] = 1.0
    return (counts.sum() / (n_classes * counts)).tolist()


def tumor_threshold(store: SliceStore) -> int:
    return store.manifest.min_tumor


def sampling_weights(ds: IndexedSlices, balance: str, threshold: int) -> torch.Tensor:
    """How often each training slice is drawn.

    Tumour slices, the only ones that teach the grade, are drawn ``TUMOR_OVERSAMPLING`` times as
    often as slices without tumour (which teach only the tumour head). With ``balance ==
    "sampler"``, each grade is also drawn equally often.
    """
    w = np.where(ds.index.tumor >= threshold, TUMOR_OVERSAMPLING, 1.0)
    if balance == "sampler":
        labels = ds.index.label
        per_grade = np.bincount(labels, weights=w)
        w = w / np.maximum(per_grade[labels], 1e-9)
    return torch.as_tensor(w, dtype=torch.double)


class EpochSeededSampler(WeightedRandomSampler):
    """Weighted sampling with replacement whose draws depend only on (seed, epoch).

    Lightning calls ``set_epoch`` before each epoch, so epoch k draws the same slices whether
    the run went straight through or was resumed from a checkpoint at epoch k.
    """

    def __init__(self, weights: torch.Tensor, num_samples: int, seed: int):
        # torch takes a tensor of weights (as_tensor); its annotation says only Sequence[float]
        super().__init__(weights, num_samples, replacement=True)  # type: ignore[arg-type]
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        self.generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return super().__iter__()


def per_process_batch(batch_size: int, world_size: int) -> int:
    """``--batch-size`` is the global batch: each of ``world_size`` processes takes its share.

    So a run on 4 GPUs takes the same optimisation steps as on one (same learning rate and
    schedule), and a DDP run can be compared with a single-process one.
    """
    if batch_size % world_size:
        raise UsageError(
            f"--batch-size {batch_size} is the global batch and must divide among "
            f"{world_size} processes; use a multiple of {world_size}"
        )
    return batch_size // world_size


def make_train_loader(
    ds: IndexedSlices, config: TrainConfig, workers: int, threshold: int, world_size: int = 1
):
    from torch.utils.data import DataLoader

    # Every process draws the same sequence (same seed); under DDP Lightning wraps the sampler
    # and deals it out, rank r taking positions r, r + world_size, ... (no reshuffling), so each
    # global step sees the same slices as a single process would.
    n = config.epoch_slices or len(ds)
    weights = sampling_weights(ds, config.balance, threshold)
    sampler = EpochSeededSampler(weights, n, config.seed)
    return DataLoader(
        ds,
        batch_size=per_process_batch(config.batch_size, world_size),
        sampler=sampler,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
        drop_last=n > config.batch_size,
        collate_fn=None if ds.images else as_batch,
    )


def make_eval_loader(ds, batch_size: int, workers: int):
    from torch.utils.data import DataLoader

    return DataLoader(
        ds,
        batch_size=batch_size * 2,
        shuffle=False,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
