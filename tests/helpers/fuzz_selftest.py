"""Cases that misbehave on purpose, to test :mod:`helpers.isolated` itself."""

from __future__ import annotations

import time
from pathlib import Path


def case(seed: int, scratch: Path) -> str:
    if seed == 1:
        time.sleep(3600)  # a hang
    if seed == 2:
        bytearray(64 * 2**30)  # 64 GB: past any memory limit
    return "answered"
