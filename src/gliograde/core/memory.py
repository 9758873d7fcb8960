"""Big arrays freed and allocated again without the system's page faults (glibc's malloc).

``prepare`` allocates and frees arrays of tens of megabytes per subject (each inflated volume
is 18 MB for BraTS). glibc serves blocks above its mmap threshold with fresh pages from the
system and returns them on free, so every allocation faults and zeroes its pages again; and it
gives freed heap memory back at once. Measured on the bench's 20 subjects, that was about a
quarter of ``prepare``'s time with 1 worker (docs/results/benchmarks.md, line c).
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest on 64-bit systems
TRIM_THRESHOLD = 512 * 2**20

_applied: list[bool] = []


def reuse_freed_memory() -> bool:
    """Keep blocks up to 32 MB on the heap, and up to 512 MB of freed heap for reuse, in this
    process (once). The process's memory then stays at its peak until it exits: meant for the
    worker processes of :func:`~gliograde.core.parallel.map_with_progress` and for the
    ``prepare`` command, not for a long-lived process such as a notebook's.

    Returns:
        Whether glibc took the settings (False on other C libraries).
    """
    if not _applied:
        _applied.append(set_malloc_options())
    return _applied[0]


def set_malloc_options() -> bool:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # not glibc: nothing to set
        return False
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    return mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
