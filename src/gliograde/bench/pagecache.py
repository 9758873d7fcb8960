"""The page cache a reader uses: how much of its files is resident, and how to evict them.

RSS does not count a file's pages in the page cache, so a reader that reads files (the slice
store, MONAI's ``PersistentDataset``) looks small by RSS alone. The bench adds the resident
bytes of the files it reads (``fincore``, util-linux) and measures each reader cold, after its
files were evicted (``posix_fadvise(DONTNEED)``, no root needed), and warm.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def resident_bytes(paths: list[Path]) -> int | None:
    """Bytes of ``paths`` now in the page cache (None where ``fincore`` is not installed)."""
    if not paths or shutil.which("fincore") is None:
        return None if paths else 0
    total = 0
    for start in range(0, len(paths), 500):  # keep each command line short
        chunk = [str(p) for p in paths[start : start + 500]]
        out = subprocess.run(
            ["fincore", "--bytes", "--noheadings", "--raw", "--output", "RES", *chunk],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        total += sum(int(line) for line in out.split())
    return total


def evict(paths: list[Path]) -> None:
    """Ask the kernel to drop ``paths``' clean pages from the page cache."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)  # dirty pages cannot be dropped
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def files_under(folder: Path, pattern: str) -> list[Path]:
    """The files under ``folder`` matching ``pattern``, sorted."""
    return sorted(p for p in Path(folder).rglob(pattern) if p.is_file())
