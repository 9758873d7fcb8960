"""A PyTorch ``Dataset`` over a store's slices (``[4, H, W]`` items, ``[B, 4, H, W]`` batches)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from gliograde.core.errors import GliogradeError
from gliograde.store.read import SliceStore


class SliceDataset(Dataset):
    """Slices of a store as training items.

    Each item is a dict: ``x`` float32 ``[4, H, W]`` (FLAIR, T1ce, T1, T2), ``y`` 0 (LGG) or 1
    (HGG), ``tumor`` 1.0 when the slice shows at least ``min_tumor_pixels`` of tumour, else 0.0,
    ``subject`` and ``z``. A ``DataLoader`` batches them as ``[B, 4, H, W]``; each slice is read
    from the store with one ``pread`` (nothing is loaded or mapped up front), so private memory
    stays flat however large the store (read slices sit in the shared page cache), and it works
    with DataLoader workers.

    Args:
        store: a :class:`SliceStore` or its path.
        subjects: the subjects to use (default: all).
        min_tumor: only slices with at least this many tumour pixels (0: every slice stored).
        tumor_threshold: pixels of tumour for a slice to count as a tumour slice (``tumor``).
    """

    def __init__(self, store, subjects=None, min_tumor: int = 0, tumor_threshold: int = 1):
        self.store = store if isinstance(store, SliceStore) else SliceStore(store)
        self.rows = self.store.rows(subjects, min_tumor)
        self.index = self.store.index.take(self.rows)
        self.tumor_threshold = tumor_threshold

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        # torch converts float16 → float32 several times faster than NumPy.
        return {"x": torch.from_numpy(self.image16(i)).float(), **self.labels(i)}

    def image16(self, i: int) -> np.ndarray:
        """Item ``i``'s slice as stored: float16 ``[4, H, W]``."""
        return self.store.read_slice(self.index.subject[i], "images", int(self.index.row[i]))

    def labels(self, i: int) -> dict:
        """Item ``i`` without its image: ``y``, ``tumor``, ``subject``, ``z``."""
        return {
            "y": int(self.index.label[i]),
            "tumor": float(self.index.tumor[i] >= self.tumor_threshold),
            "subject": self.index.subject[i],
            "z": int(self.index.z[i]),
        }

    def resident_images(self, device="cpu") -> torch.Tensor:
        """Every item's slice in one float16 tensor ``[N, 4, H, W]`` on ``device``.

        For ``train --resident``: the slices held in RAM or GPU memory (BraTS 2020's tumour
        slices take about 12 GB), each batch gathered there by index, no worker in the loop.
        """
        if len(self) == 0:
            raise GliogradeError(f"{self.store.path}: no slice to keep resident")
        first = self.image16(0)
        out = np.empty((len(self), *first.shape), dtype=np.float16)
        for i in range(len(self)):
            out[i] = self.image16(i)
        return torch.from_numpy(out).to(device)
