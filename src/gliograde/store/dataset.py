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

    With ``context`` k > 0 (2.5D), ``x`` is ``[4·(2k+1), H, W]``: the slice and its k
    neighbours each side among the subject's stored slices, read from the same store
    (:mod:`gliograde.store.context`; every slice stored must be in the dataset: ``min_tumor``
    0).

    Args:
        store: a :class:`SliceStore` or its path.
        subjects: the subjects to use (default: all).
        min_tumor: only slices with at least this many tumour pixels (0: every slice stored).
        tumor_threshold: pixels of tumour for a slice to count as a tumour slice (``tumor``).
        context: neighbours each side of a slice (0: the slice alone).
    """

    def __init__(
        self, store, subjects=None, min_tumor: int = 0, tumor_threshold: int = 1, context: int = 0
    ):
        self.store = store if isinstance(store, SliceStore) else SliceStore(store)
        self.rows = self.store.rows(subjects, min_tumor)
        self.index = self.store.index.take(self.rows)
        self.tumor_threshold = tumor_threshold
        if context and min_tumor:
            raise ValueError("2.5D items need every stored slice (min_tumor 0)")
        self.neighbours = neighbour_items(self.index, context) if context else None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        # torch converts float16 → float32 several times faster than NumPy.
        return {"x": torch.from_numpy(self.image16(i)).float(), **self.labels(i)}

    def image16(self, i: int) -> np.ndarray:
        """Item ``i``'s slice as stored, float16 ``[4, H, W]``; 2.5D: with its neighbours,
        ``[4·(2k+1), H, W]``."""
        if self.neighbours is None:
            return self.stored16(i)
        return np.concatenate([self.stored16(int(j)) for j in self.neighbours[i]])

    def stored16(self, i: int) -> np.ndarray:
        """Item ``i``'s own slice as stored: float16 ``[4, H, W]``."""
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
        first = self.stored16(0)
        out = np.empty((len(self), *first.shape), dtype=np.float16)
        for i in range(len(self)):
            out[i] = self.stored16(i)
        return torch.from_numpy(out).to(device)


def neighbour_items(index, k: int) -> np.ndarray:
    """``[N, 2k+1]``: for each item, the items of its subject's slices ``-k`` … ``+k`` in the
    subject's stored order, clamped at the ends of its stack.

    Raises:
        GliogradeError: a subject whose stored slices are not adjacent (a ``--slices tumor``
            store keeps a multifocal tumour's slices with gaps between them).
    """
    from gliograde.store.context import neighbour_positions

    out = np.empty((len(index.subject), 2 * k + 1), dtype=np.int64)
    subjects = np.asarray(index.subject)
    for subject in np.unique(subjects):
        items = np.flatnonzero(subjects == subject)
        items = items[np.argsort(np.asarray(index.row)[items], kind="stable")]
        if np.any(np.diff(np.asarray(index.z)[items]) != 1):
            raise GliogradeError(
                f"{subject}: its stored slices are not one run of adjacent axial slices, so a "
                "2.5D slice would take a distant one as its neighbour; prepare the store with "
                "--slices brain (the default) or all"
            )
        out[items] = items[neighbour_positions(len(items), k)]
    return out
