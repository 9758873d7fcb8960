"""Read a slice store: the index, memory-mapped arrays, and a PyTorch ``Dataset`` over slices."""

from __future__ import annotations

import contextlib
import csv
import json
import os
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
        self._files: dict[tuple[str, str], NpyFile] = {}

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

    def read_slice(self, subject: str, name: str, row: int) -> np.ndarray:
        """One slice (``images``: ``(4, H, W)`` float16), read with one ``pread`` call.

        Unlike indexing :meth:`array`, this maps nothing into the process: reading every slice
        of a large store leaves the memory of the process as it was (the OS caches the file).
        """
        key = (subject, name)
        npy = self._files.get(key)
        if npy is None:
            npy = self._files[key] = NpyFile.open(self.path / "subjects" / subject / f"{name}.npy")
        return npy.read(row)

    def rows(self, subjects: list[str] | None = None, min_tumor: int = 0) -> np.ndarray:
        """Index positions of the slices of ``subjects`` with at least ``min_tumor`` pixels."""
        keep = self.index.tumor >= min_tumor
        if subjects is not None:
            keep &= np.isin(self.index.subject, list(subjects))
        return np.flatnonzero(keep)

    def __getstate__(self):
        # Memory maps and files are re-opened in each DataLoader worker, not pickled (copied).
        return {**self.__dict__, "_arrays": {}, "_files": {}}


@dataclass
class NpyFile:
    """An open ``.npy`` file (C order) from which single rows are read with ``os.pread``."""

    fd: int
    offset: int
    row_shape: tuple[int, ...]
    dtype: np.dtype
    n_rows: int

    @classmethod
    def open(cls, path: Path) -> NpyFile:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)  # fmt: skip
            if read_header is None:
                raise GliogradeError(f"{path}: .npy version {version} not supported")
            shape, fortran, dtype = read_header(f)
            offset = f.tell()
        if fortran:
            raise GliogradeError(f"{path}: stored in Fortran order; prepare the store again")
        return cls(os.open(path, os.O_RDONLY), offset, tuple(shape[1:]), dtype, int(shape[0]))

    def read(self, row: int) -> np.ndarray:
        if not 0 <= row < self.n_rows:
            raise IndexError(f"row {row} of {self.n_rows}")
        nbytes = int(np.prod(self.row_shape)) * self.dtype.itemsize
        data = bytearray(nbytes)  # writable, so that torch.from_numpy takes it without a copy
        if os.preadv(self.fd, [data], self.offset + row * nbytes) != nbytes:
            raise GliogradeError(f"slice store file shorter than its header says (fd {self.fd})")
        return np.frombuffer(data, dtype=self.dtype).reshape(self.row_shape)

    def __del__(self):
        with contextlib.suppress(OSError):
            os.close(self.fd)


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
    ``subject`` and ``z``. A ``DataLoader`` batches them as ``[B, 4, H, W]``; each slice is read
    from the store with one ``pread`` (nothing is loaded or mapped up front), so memory stays
    flat however large the store, and it works with DataLoader workers.

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

        For training with the store resident in GPU memory (BraTS 2020's tumour slices take
        about 12 GB): batches are then gathered on the GPU and no CPU worker is in the loop.
        """
        if len(self) == 0:
            raise GliogradeError(f"{self.store.path}: no slice to keep resident")
        first = self.image16(0)
        out = np.empty((len(self), *first.shape), dtype=np.float16)
        for i in range(len(self)):
            out[i] = self.image16(i)
        return torch.from_numpy(out).to(device)
