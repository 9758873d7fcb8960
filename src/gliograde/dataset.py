"""Read a slice store: the index, memory-mapped arrays, and a PyTorch ``Dataset`` over slices."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from gliograde.errors import GliogradeError

_INT_COLUMNS = ("label", "z", "row", "tumor_1", "tumor_2", "tumor_4", "tumor", "brain")


@dataclass
class SliceIndex:
    """The store's ``index.csv`` as columns (NumPy arrays), one entry per slice."""

    subject: np.ndarray
    grade: np.ndarray
    label: np.ndarray
    z: np.ndarray
    row: np.ndarray
    tumor_1: np.ndarray
    tumor_2: np.ndarray
    tumor_4: np.ndarray
    tumor: np.ndarray
    brain: np.ndarray

    def __len__(self) -> int:
        return len(self.subject)

    def take(self, rows: np.ndarray) -> SliceIndex:
        return SliceIndex(**{k: v[rows] for k, v in vars(self).items()})


class SliceStore:
    """A prepared store (see :mod:`gliograde.store`), opened for reading.

    Arrays are memory-mapped on first use: nothing is read into RAM until a slice is asked for.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        manifest = self.path / "manifest.json"
        if not manifest.is_file():
            raise GliogradeError(
                f"{self.path}: not a slice store (no manifest.json); make one with "
                "`gliograde prepare DATA --out STORE`"
            )
        self.manifest = json.loads(manifest.read_text())
        self.index = read_index(self.path / "index.csv")
        self._arrays: dict[tuple[str, str], np.ndarray] = {}

    @property
    def subjects(self) -> list[str]:
        return list(self.manifest["subjects"])

    @property
    def grades(self) -> dict[str, str]:
        return dict(self.manifest["grades"])

    @property
    def options(self) -> dict:
        return dict(self.manifest["options"])

    def array(self, subject: str, name: str) -> np.ndarray:
        """A subject's ``images`` (n, 4, H, W) float16 or ``seg`` (n, H, W) uint8, memory-mapped."""
        key = (subject, name)
        if key not in self._arrays:
            path = self.path / "subjects" / subject / f"{name}.npy"
            self._arrays[key] = np.load(path, mmap_mode="r")
        return self._arrays[key]

    def rows(self, subjects: list[str] | None = None, min_tumor: int = 0) -> np.ndarray:
        """Index positions of the slices of ``subjects`` with at least ``min_tumor`` pixels."""
        keep = self.index.tumor >= min_tumor
        if subjects is not None:
            keep &= np.isin(self.index.subject, list(subjects))
        return np.flatnonzero(keep)

    def __getstate__(self):
        # Memory maps are re-opened in each DataLoader worker instead of being pickled (copied).
        return {**self.__dict__, "_arrays": {}}


def read_index(path: Path) -> SliceIndex:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    columns = {
        "subject": np.array([r["subject"] for r in rows], dtype=object),
        "grade": np.array([r["grade"] for r in rows], dtype=object),
    }
    for name in _INT_COLUMNS:
        columns[name] = np.array([int(r[name]) for r in rows], dtype=np.int64)
    return SliceIndex(**columns)


class SliceDataset(Dataset):
    """Slices of a store as training items.

    Each item is a dict: ``x`` float32 ``[4, H, W]`` (FLAIR, T1ce, T1, T2), ``y`` 0 (LGG) or 1
    (HGG), ``tumor`` 1.0 when the slice shows at least ``min_tumor_pixels`` of tumour, else 0.0,
    ``subject`` and ``z``. A ``DataLoader`` batches them as ``[B, 4, H, W]``; the store is read
    memory-mapped and works with DataLoader workers.

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
        subject = self.index.subject[i]
        row = int(self.index.row[i])
        x = np.asarray(self.store.array(subject, "images")[row], dtype=np.float32)
        return {
            "x": torch.from_numpy(x),
            "y": int(self.index.label[i]),
            "tumor": float(self.index.tumor[i] >= self.tumor_threshold),
            "subject": subject,
            "z": int(self.index.z[i]),
        }
