"""What training a fold cost: ``RUN/fold_K/cost.json`` (``full/cost.json`` for ``--full``).

Written by ``train`` after each fold (the grading time of its held-out patients added by the
evaluation), read by ``gliograde compare``. Memory is the training
process's peak resident set (its DataLoader workers' peak beside it, from ``getrusage``); on a
GPU, also PyTorch's peak allocation on the device. On Linux the process's
peak is reset when the fold starts (``/proc/self/clear_refs``), so it is the fold's own;
elsewhere, and for the workers, it is the peak over the process's life so far. A fold finished
after ``--resume`` records the resumed part's time only.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from gliograde.core.errors import GliogradeError
from gliograde.core.files import write_json
from gliograde.core.rss import proc_status, reset_peak_rss

COST_NAME = "cost.json"


@dataclass(frozen=True)
class FoldCost:
    """One fold's training: wall time, and peak memory in MiB, on ``device``."""

    seconds: float
    peak_rss_mib: float  # the training process
    peak_workers_rss_mib: float  # its largest child process (DataLoader worker), 0 without
    peak_accelerator_mib: float | None = None  # PyTorch's peak allocation on a GPU
    device: str = "cpu"  # where it trained (cpu, cuda, mps)
    grading_seconds_per_patient: float | None = None  # its models on a held-out patient's
    # stored slices, when the run is evaluated (preprocessing not included)

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
    since_start = reset_peak_rss()
    start = time.perf_counter()
    yield meter
    meter.cost = FoldCost(
        seconds=time.perf_counter() - start,
        peak_rss_mib=proc_status()["VmHWM"] if since_start else peak_rss_mib(),
        peak_workers_rss_mib=peak_rss_mib(resource.RUSAGE_CHILDREN),
        peak_accelerator_mib=torch.cuda.max_memory_allocated() / 2**20 if on_gpu else None,
        device=device,
    )


def write_cost(fold_dir: Path, cost: FoldCost) -> None:
    write_json(Path(fold_dir) / COST_NAME, cost.to_dict())


def read_cost(fold_dir: Path) -> FoldCost | None:
    """The fold's cost, or None where training did not record one (runs made before)."""
    path = Path(fold_dir) / COST_NAME
    if not path.is_file():
        return None
    try:
        return FoldCost.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as err:  # not JSON, or not FoldCost's keys
        raise GliogradeError(
            f"{path}: damaged ({type(err).__name__}: {err}); delete it (the fold's cost is then "
            "not shown)"
        ) from None


def record_grading(fold_dir: Path, seconds_per_patient: float) -> None:
    """Add the fold's grading time to its ``cost.json`` (a fold trained before ``cost.json``
    has none to add it to: its time is not kept)."""
    cost = read_cost(fold_dir)
    if cost is not None:
        write_cost(fold_dir, replace(cost, grading_seconds_per_patient=seconds_per_patient))
