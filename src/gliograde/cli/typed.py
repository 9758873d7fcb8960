"""A gliograde command line run as typed in a terminal, for tutorials and notebooks."""

from __future__ import annotations

import shlex
import subprocess
import sys

from gliograde.core.errors import GliogradeError


def gliograde(command: str) -> str:
    """Run ``gliograde COMMAND`` in a fresh process, show what it prints, return its stdout.

    Raises:
        GliogradeError: the command exited non-zero (its output is shown above).
    """
    print(f"$ gliograde {command}")
    args = [sys.executable, "-m", "gliograde", *shlex.split(command)]
    done = subprocess.run(args, capture_output=True, text=True)
    print((done.stdout + done.stderr).strip())
    if done.returncode != 0:
        raise GliogradeError(f"gliograde {command}: exit {done.returncode}")
    return done.stdout
