"""The ``gliograde`` command line: a thin shell over functions that the tests call directly.

One module per topic: :mod:`~gliograde.cli.data` (check, synth, prepare, preprocess),
:mod:`~gliograde.cli.training` (train, evaluate), :mod:`~gliograde.cli.patients` (predict,
explain, report), :mod:`~gliograde.cli.deploy` (export), :mod:`~gliograde.cli.serving` (serve), :mod:`~gliograde.cli.tools` (bench,
demo). Torch, MONAI and Lightning are imported inside the commands, so ``gliograde --help`` is
instant.
"""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from gliograde.cli import data, deploy, patients, serving, tools, training
from gliograde.core.console import say
from gliograde.core.errors import GliogradeError, UsageError


class Commands(TyperGroup):
    """The commands, with gliograde's errors for users printed as one line, no traceback:
    exit 1 for a problem with the data or a run, 2 for a wrongly called command."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GliogradeError as e:
            say(f"gliograde: error: {e}")
            ctx.exit(2 if isinstance(e, UsageError) else 1)
        except KeyboardInterrupt:
            say("gliograde: interrupted (Ctrl-C)")
            ctx.exit(130)


app = typer.Typer(
    cls=Commands,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Glioma grading (LGG vs HGG, or any label of a CSV) from multi-modal brain MRI.",
)
for module in (data, training, patients, deploy, serving, tools):
    for command in module.COMMANDS:
        app.command(name=command.__name__.rstrip("_").replace("_", "-"))(command)


def main() -> None:
    """The ``gliograde`` program."""
    app()
