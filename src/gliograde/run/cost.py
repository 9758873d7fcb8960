"""What training a fold cost: ``RUN/fold_K/cost.json`` (``full/cost.json`` for ``--full``).

Written by ``train`` after each fold, read by ``gliograde compare``. Memory is the training
process's peak resident set (its DataLoader workers' peak beside it), as the kernel counts it
(``getrusage``); on a GPU, also PyTorch's peak allocation on the device. Both are peaks over the
process's life so far: a later fold's peak is at least an earlier one's.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gliograde.core.files import write_json

COST_NAME = "cost.json"


@dataclass(frozen=True)
class FoldCost:
    """One fold's training: wall time, and peak memory in MiB."""

    seconds: float
    peak_rss_mib: float  # the training process
    peak_workers_rss_mib: float  # its largest child process (DataLoader worker), 0 without
    peak_accelerator_mib: float | None = None  # PyTorch's peak allocation on a GPU

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FoldCost:
        return cls(**data)


@dataclass
class CostMeter:
    """A running measurement (see :func:`measured`); ``cost`` is set when it ends."""

    device: str
    cost: FoldCost | None = field(default=None)


def peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """The peak resident set of this process (or of its largest child) in MiB."""
    peak = resource.getrusage(who).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


@contextmanager
def measured(device: str) -> Iterator[CostMeter]:
    """Time the block and read the peaks after it (``device``: ``cpu``, ``cuda``, ``mps``)."""
    import torch

    meter = CostMeter(device)
    on_gpu = device.startswith("cuda") and torch.cuda.is_available()
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    yield meter
    meter.cost = FoldCost(
        seconds=time.perf_counter() - start,
        peak_rss_mib=peak_rss_mib(),
        peak_workers_rss_mib=peak_rss_mib(resource.RUSAGE_CHILDREN),
        peak_accelerator_mib=torch.cuda.max_memory_allocated() / 2**20 if on_gpu else None,
    )


def write_cost(fold_dir: Path, cost: FoldCost) -> None:
    write_json(Path(fold_dir) / COST_NAME, cost.to_dict())


def read_cost(fold_dir: Path) -> FoldCost | None:
    """The fold's cost, or None where training did not record one (runs made before)."""
    path = Path(fold_dir) / COST_NAME
    if not path.is_file():
        return None
    return FoldCost.from_dict(json.loads(path.read_text()))
