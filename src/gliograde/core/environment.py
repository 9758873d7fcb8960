"""The environment variables a user may set for gliograde's commands. Only the entry points
read them (the command line, and the MONAI bundle's runner), once per command: below them each
setting is an argument, so that a Grader opened once keeps what it was opened with.

* ``GLIOGRADE_PRECISION``: the grading precision when ``--precision`` is not given.
* ``GLIOGRADE_CACHE``: where ``predict`` preprocesses raw scans (default ``~/.cache/gliograde``).
"""

from __future__ import annotations

import os
from pathlib import Path

from gliograde.core.errors import UsageError

PRECISION_CHOICES = ("auto", "fp32", "bf16")


def precision_setting() -> str:
    """``GLIOGRADE_PRECISION``, or ``auto`` when it is not set.

    Raises:
        UsageError: it is set to something other than auto, fp32 or bf16.
    """
    value = os.environ.get("GLIOGRADE_PRECISION", "auto")
    if value not in PRECISION_CHOICES:
        raise UsageError(f"GLIOGRADE_PRECISION={value}: choose auto, fp32 or bf16")
    return value


def cache_setting() -> Path | None:
    """``GLIOGRADE_CACHE`` as a folder, or None when it is not set (the default cache)."""
    value = os.environ.get("GLIOGRADE_CACHE")
    return Path(value) if value else None
