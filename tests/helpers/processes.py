"""Other processes a test needs beside it."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path


@contextlib.contextmanager
def lock_held_elsewhere(folder: Path, what: str):
    """Another process holding ``folder``'s lock while the block runs; yields its pid."""
    code = (
        "import sys, time; from gliograde.core.lock import folder_lock\n"
        "with folder_lock(sys.argv[1], sys.argv[2]):\n"
        "    print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(folder), what], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()
