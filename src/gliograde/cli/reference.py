"""The command line as a click command: what the docs build documents (``scripts/docs_hooks.py``)."""

from __future__ import annotations

import typer

from gliograde.cli import app

cli = typer.main.get_command(app)
