"""``gliograde preprocess``: raw scans (DICOM, or NIfTI in any grid) to BraTS-like subjects."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def preprocess(
    inputs: Annotated[list[Path], typer.Argument(help="DICOM folders or NIfTI folders.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the BraTS-like subjects.")],
    series_map: Annotated[
        list[str] | None, typer.Option(help="ROLE=SERIES_NUMBER, e.g. flair=7 (repeatable).")
    ] = None,
):
    """Raw scans → BraTS-like subjects (N4, co-registration, skull stripping, MNI152 grid),
    each with qc.png and preprocess.json; offline."""
    from gliograde.scans.inputs import parse_series_map, preprocess_inputs

    records, errors, notes = preprocess_inputs(inputs, out, parse_series_map(series_map))
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    for subject, record in records.items():
        seconds = sum(record["seconds"].values())
        typer.echo(
            f"{subject}: brain {record['brain_ml']:.0f} mL, {seconds:.0f} s; "
            f"look at {out / subject / 'qc.png'}"
        )
    for subject, problem in errors.items():
        typer.echo(f"gliograde: error: {subject}: {problem}", err=True)
    if errors:
        raise typer.Exit(1)
