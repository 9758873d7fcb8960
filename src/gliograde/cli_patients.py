"""The commands on patients' scans: ``gliograde preprocess`` (raw scans, DICOM or NIfTI in any
grid, to BraTS-like subjects) and ``gliograde predict`` (grades, back as text, JSON, CSV, an
HTML page with each preprocessed subject's QC picture, or DICOM Structured Reports)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gliograde.core.errors import UsageError


def preprocess(
    inputs: Annotated[
        list[Path], typer.Argument(help="DICOM folders, NIfTI folders or CSV manifests.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for the BraTS-like subjects.")],
    series_map: Annotated[
        list[str] | None, typer.Option(help="ROLE=SERIES_NUMBER, e.g. flair=7 (repeatable).")
    ] = None,
):
    """Raw scans (DICOM, NIfTI in any grid) → BraTS-like subjects, with a QC picture; offline."""
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


def predict(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="RUN, then subject folders, cohort folders, DICOM folders or CSV manifests "
            "(RUN may be given with --model instead)."
        ),
    ],
    model: Annotated[
        Path | None, typer.Option("--model", help="Run folder (the older way to give RUN).")
    ] = None,
    fold: Annotated[int | None, typer.Option(help="Grade with fold K's model alone.")] = None,
    ignore_seg: Annotated[
        bool, typer.Option(help="Do not use a segmentation even if present.")
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print a JSON list and nothing else.")
    ] = False,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Also write a CSV here.")] = None,
    report: Annotated[
        Path | None, typer.Option(help="Also write an HTML page here (with QC pictures).")
    ] = None,
    dicom_sr: Annotated[
        Path | None,
        typer.Option(help="Write a DICOM Structured Report per DICOM input in this folder."),
    ] = None,
    calibration: Annotated[
        Path | None, typer.Option(help="A calibration.json to use instead of the run's own.")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Grade inputs unlike the training data too (flagged uncertain).")
    ] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or gpu.")] = "auto",
):
    """Grade new patients (no segmentation needed; DICOM folders are preprocessed first).
    Exit 1 if any subject could not be graded."""
    from gliograde.core.files import write_text
    from gliograde.predict import (
        format_predictions,
        predict_subjects,
        predictions_csv,
        predictions_json,
    )

    if model is None:
        if len(inputs) < 2:
            raise UsageError("give RUN and at least one subject: gliograde predict RUN SUBJECT...")
        model, inputs = inputs[0], inputs[1:]
    predictions = predict_subjects(inputs, model, ignore_seg, device, fold, calibration, force)
    typer.echo(predictions_json(predictions) if json_out else format_predictions(predictions))
    if csv_out is not None:
        write_text(csv_out, predictions_csv(predictions))
    failed = write_extras(predictions, model, report, dicom_sr)
    for p in predictions:
        if p.error:
            typer.echo(f"gliograde: {p.subject}: {p.error}", err=True)
    for subject, problem in failed.items():
        typer.echo(f"gliograde: {subject}: {problem}", err=True)
    raise typer.Exit(1 if failed or any(p.error for p in predictions) else 0)


def write_extras(predictions, run: Path, report: Path | None, dicom_sr: Path | None) -> dict:
    """``--report`` and ``--dicom-sr``, each said on stderr (stdout may be the JSON); returns
    the subjects whose SR could not be written, with why."""
    from gliograde.assess.report import write_predictions_report
    from gliograde.predict import write_dicom_srs

    if report is not None:
        answers = [p.to_dict() for p in predictions]
        typer.echo(f"report: {write_predictions_report(answers, run, report)}", err=True)
    if dicom_sr is None:
        return {}
    written, notes, failed = write_dicom_srs(predictions, dicom_sr)
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    for subject, path in written.items():
        typer.echo(f"DICOM SR of {subject}: {path}", err=True)
    return failed
