"""The one place that talks to the user's terminal outside the CLI's results.

Progress and notes go to stderr, so that stdout stays clean for ``--json`` and ``--csv`` output.
"""

from __future__ import annotations

import sys


def say(message: str) -> None:
    """Print one line to stderr, at once (not buffered behind a long computation)."""
    print(message, file=sys.stderr, flush=True)
