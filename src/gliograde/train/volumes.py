"""The items a 3D backbone trains on: one per subject, its volume read from the store's volume
folder (:mod:`gliograde.store.volumes`) one ``pread`` at a time, never all held in RAM."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from gliograde.store.read import SliceStore
from gliograde.store.volumes import VolumeStore


class IndexedVolumes(Dataset):
    """The volumes of ``subjects`` as training items, like
    :class:`~gliograde.train.sampling.IndexedSlices`' slices: ``x`` float32 ``[4, G, G, G]``,
    ``y``, ``tumor`` (1.0 when the subject's segmentation holds at least ``tumor_threshold``
    pixels), ``subject``, ``z`` (its first slice), ``subject_idx`` and ``item``.

    ``index`` has one entry per subject, the store's first slice of it with ``tumor`` the
    subject's tumour pixels over all its slices, so the sampling and class weights are computed
    as for slices.
    """

    neighbours = None  # no 2.5D context
    images = True  # never --resident: volumes stream from the store

    def __init__(self, store: SliceStore, subjects, tumor_threshold: int, subject_ids, grid: int):
        self.volumes = VolumeStore(store, grid)
        index = store.index.take(store.rows(subjects))
        _, first, inverse = np.unique(index.subject, return_index=True, return_inverse=True)
        self.index = index.take(first)
        self.index.tumor = np.bincount(inverse, weights=index.tumor).astype(np.int64)
        self.tumor_threshold = tumor_threshold
        self.subject_idx = {s: i for i, s in enumerate(subject_ids)}

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        subject = self.index.subject[i]
        return {
            "x": torch.from_numpy(self.volumes.read(subject)).float(),
            "y": int(self.index.label[i]),
            "tumor": float(self.index.tumor[i] >= self.tumor_threshold),
            "subject": subject,
            "z": int(self.index.z[i]),
            "subject_idx": self.subject_idx[subject],
            "item": i,
        }
