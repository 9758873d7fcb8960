"""The command line as a click command, for the generated CLI reference (mkdocs-click reads it)."""

from __future__ import annotations

import typer

from gliograde.cli import app

cli = typer.main.get_command(app)
