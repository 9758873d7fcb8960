"""Run one function over many subjects, in worker processes, with a progress bar."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from gliograde.core.memory import reuse_freed_memory

T = TypeVar("T")
R = TypeVar("R")


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS")
"""What PyTorch (OpenMP, MKL) and SimpleITK (ITK) read for their thread count when they start."""


def share_threads(threads: int) -> None:
    """Processes started from now on by this one run PyTorch and SimpleITK on ``threads``
    threads (a variable already set is kept): for several processes sharing the cores, such as
    test or build workers and the commands they start.

    Args:
        threads: threads per library in each process started.
    """
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))


def default_workers() -> int:
    """One worker per core the process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def map_with_progress(
    fn: Callable[[T], R], items: Iterable[T], workers: int, desc: str, quiet: bool = False
) -> Iterator[R]:
    """Yield ``fn(item)`` for each item, in order; ``workers > 1`` runs them in processes.

    The progress bar goes to stderr so that stdout stays clean for ``--json`` output. Worker
    processes start from a fresh interpreter (forkserver), so a script that calls this with
    ``workers > 1`` must do so under ``if __name__ == "__main__":``, as with any
    multiprocessing code on macOS or Windows.
    """
    from tqdm import tqdm

    items = list(items)
    # disable=None: no bar when stderr is not a terminal (a log file, a notebook, a pipe).
    bar = tqdm(total=len(items), desc=desc, unit="subject", file=sys.stderr, disable=quiet or None)
    with bar:
        if workers <= 1 or len(items) <= 1:
            for item in items:
                yield fn(item)
                bar.update()
            return
        # forkserver, not fork: a process that has already run PyTorch (OpenMP threads) can
        # deadlock its forked children when they use it again (resize in prepare).
        context = multiprocessing.get_context("forkserver")
        n = min(workers, len(items))
        # Workers live for this map alone: their big arrays may keep their pages (core.memory).
        with ProcessPoolExecutor(n, mp_context=context, initializer=reuse_freed_memory) as pool:
            for result in pool.map(fn, items):
                yield result
                bar.update()
