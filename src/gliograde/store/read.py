"""Read a slice store: its manifest and index, and single slices with one ``pread`` each."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gliograde.core.errors import GliogradeError
from gliograde.store.index import read_index
from gliograde.store.manifest import StoreManifest


class SliceStore:
    """A prepared store (see :mod:`gliograde.store.write`), opened for reading.

    Nothing is mapped or loaded up front: each read is one ``pread`` on the subject's ``.npy``
    file (opened once per process), so the process's private memory stays flat however large
    the store (the slices read sit in the kernel's page cache, shared and evictable).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        manifest = self.path / "manifest.json"
        if not manifest.is_file():
            raise GliogradeError(
                f"{self.path}: not a slice store (no manifest.json); make one with "
                "`gliograde prepare DATA --out STORE`"
            )
        self.manifest = StoreManifest.from_dict(json.loads(manifest.read_text()), manifest)
        self.index = read_index(self.path / "index.csv")
        self._files: dict[tuple[str, str], NpyFile] = {}

    @property
    def subjects(self) -> list[str]:
        return list(self.manifest.subjects)

    @property
    def labels(self) -> dict[str, str]:
        """Each subject's class of the store's target (its grade unless ``--target``)."""
        return dict(self.manifest.labels)

    @property
    def target(self):
        return self.manifest.target

    def read_slice(self, subject: str, name: str, row: int) -> np.ndarray:
        """One slice (``images``: ``(4, H, W)`` float16; ``seg``: ``(H, W)`` uint8)."""
        return self.npy(subject, name).read(row)

    def read_subject(self, subject: str, name: str) -> np.ndarray:
        """All of a subject's slices: ``images`` ``(n, 4, H, W)`` or ``seg`` ``(n, H, W)``."""
        return self.npy(subject, name).read_all()

    def npy(self, subject: str, name: str) -> NpyFile:
        """The subject's ``images`` or ``seg`` file, opened once per process."""
        key = (subject, name)
        if key not in self._files:
            self._files[key] = NpyFile.open(self.path / "subjects" / subject / f"{name}.npy")
        return self._files[key]

    def rows(self, subjects: list[str] | None = None, min_tumor: int = 0) -> np.ndarray:
        """Index positions of the slices of ``subjects`` with at least ``min_tumor`` pixels."""
        keep = self.index.tumor >= min_tumor
        if subjects is not None:
            keep &= np.isin(self.index.subject, list(subjects))
        return np.flatnonzero(keep)

    def __getstate__(self):
        # Files are re-opened in each DataLoader worker, not pickled (copied).
        return {**self.__dict__, "_files": {}}


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
            readers = {
                (1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0,
            }
            read_header = readers.get(version)
            if read_header is None:
                raise GliogradeError(f"{path}: .npy version {version} not supported")
            shape, fortran, dtype = read_header(f)
            offset = f.tell()
        if fortran:
            raise GliogradeError(f"{path}: stored in Fortran order; prepare the store again")
        return cls(os.open(path, os.O_RDONLY), offset, tuple(shape[1:]), dtype, int(shape[0]))

    def read(self, row: int) -> np.ndarray:
        """Row ``row``, read with one ``pread``."""
        if not 0 <= row < self.n_rows:
            raise IndexError(f"row {row} of {self.n_rows}")
        return self.read_rows(row, 1)[0]

    def read_all(self) -> np.ndarray:
        """Every row, read with one ``pread``."""
        return self.read_rows(0, self.n_rows)

    def read_rows(self, start: int, count: int) -> np.ndarray:
        row_bytes = int(np.prod(self.row_shape)) * self.dtype.itemsize
        data = bytearray(row_bytes * count)  # writable: torch.from_numpy takes it without a copy
        if os.preadv(self.fd, [data], self.offset + start * row_bytes) != len(data):
            raise GliogradeError(f"slice store file shorter than its header says (fd {self.fd})")
        return np.frombuffer(data, dtype=self.dtype).reshape(count, *self.row_shape)

    def __del__(self):
        with contextlib.suppress(OSError):
            os.close(self.fd)
