"""Commands that take a run elsewhere: ``export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gliograde.cli.common import Device, DeviceOption, ExportFormat, RunArgument


def export(
    run: RunArgument,
    to: Annotated[
        ExportFormat, typer.Option("--format", help="What to write.")
    ] = ExportFormat.safetensors,
    out: Annotated[Path | None, typer.Option(help="Default RUN/export, RUN/bundle.")] = None,
    device: DeviceOption = Device.auto,
):
    """Export the run's models and check each against PyTorch (max |Δ logit| ≤ 1e-4)."""
    from gliograde.export import PARITY_TOLERANCE, export_run

    for e in export_run(run, to.value, out, device=device.value):
        typer.echo(
            f"{e.file}: max |Δ logit| vs PyTorch {e.max_abs_diff:.1e} (≤ {PARITY_TOLERANCE:.0e})"
        )
    default = "bundle" if to is ExportFormat.monai_bundle else "export"
    typer.echo(f"written to {out or Path(run) / default}")


COMMANDS = (export,)
