"""The command line, run in-process with Typer's runner: what a user sees, without a process
start (the one test of the installed program itself starts ``python -m gliograde``)."""

from __future__ import annotations

from typer.testing import CliRunner


def invoke(*args):
    """``gliograde ARGS``: the result's ``exit_code``, ``stdout`` and ``stderr``."""
    from gliograde.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])
