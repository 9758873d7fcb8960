"""Commands on patients: ``predict`` (answers as text, JSON, CSV, an HTML page with each
preprocessed subject's QC picture, or DICOM Structured Reports), ``explain`` and ``report``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from gliograde.cli.common import (
    CamMethod,
    Device,
    DeviceOption,
    JsonOption,
    Layer,
    PrecisionOption,
    RunArgument,
    grading_precision,
    say,
)
from gliograde.core.errors import UsageError


def predict(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="RUN, then subject folders, cohort folders, DICOM folders or CSV manifests."
        ),
    ],
    model: Annotated[
        Path | None,
        typer.Option("--model", hidden=True, help="Deprecated: give RUN as the first argument."),
    ] = None,
    fold: Annotated[int | None, typer.Option(help="Grade with fold K's model alone.")] = None,
    ignore_seg: Annotated[
        bool, typer.Option(help="Do not use a segmentation even if present.")
    ] = False,
    json_out: JsonOption = False,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Also write a CSV here.")] = None,
    report: Annotated[
        Path | None, typer.Option(help="Also write an HTML page here (with QC pictures).")
    ] = None,
    dicom_sr: Annotated[
        Path | None,
        typer.Option(
            help="Write a DICOM Structured Report per DICOM input in this folder (the SR alone: --dicom-out adds the heat map and key images)."
        ),
    ] = None,
    dicom_out: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="Write each DICOM input's results for its PACS study in DIR/SUBJECT/: the SR, the Grad-CAM heat map as a Parametric Map over the T1ce, and key images (draws each patient's Grad-CAM: slower).",
        ),
    ] = None,
    calibration: Annotated[
        Path | None, typer.Option(help="A calibration.json to use instead of the run's own.")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Grade inputs unlike the training data too (flagged uncertain).")
    ] = False,
    explain: Annotated[
        bool,
        typer.Option(
            help="With --report: each patient's Grad-CAM volume and 3D viewer, linked from the page (REPORT's name + _explain/)."
        ),
    ] = False,
    device: DeviceOption = Device.auto,
    precision: PrecisionOption = None,
):
    """Grade new patients (no segmentation needed; DICOM folders are preprocessed first).
    Exit 1 if any subject could not be graded."""
    from gliograde.core.environment import cache_setting
    from gliograde.core.files import write_text
    from gliograde.predict import PredictOptions, predict_subjects
    from gliograde.predict.formats import format_predictions, predictions_csv, predictions_json
    from gliograde.run import Run

    if model is None:
        if len(inputs) < 2:
            raise UsageError("give RUN and at least one subject: gliograde predict RUN SUBJECT...")
        model, inputs = inputs[0], inputs[1:]
    else:
        say("note: --model RUN is deprecated; give RUN as the first argument")
    views = None
    if explain:
        if report is None:
            raise UsageError(
                "--explain goes with --report PAGE.html (the viewers are linked from it)"
            )
        views = report.with_name(f"{report.stem}_explain")
    with tempfile.TemporaryDirectory(prefix="gliograde-maps-") as maps:
        # --dicom-out draws each patient's Grad-CAM: into --explain's folder, or one of its own
        cams = views if views is not None or dicom_out is None else Path(maps)
        options = PredictOptions(
            fold, ignore_seg, force, device.value, calibration, cams,
            precision=grading_precision(precision), cache=cache_setting(),
        )  # fmt: skip
        predictions = predict_subjects(inputs, model, options)
        if cams is not views:  # the maps' folder goes with this command: no link into it
            for p in predictions:
                p.extra.pop("viewer", None)
                p.extra.pop("explain_seconds", None)
        target = Run.open(model).target
        typer.echo(
            predictions_json(predictions) if json_out else format_predictions(predictions, target)
        )
        if csv_out is not None:
            write_text(csv_out, predictions_csv(predictions, target))
        failed = write_extras(predictions, model, report, (dicom_sr, dicom_out))
    if views is not None:
        spent = sum(p.extra.get("explain_seconds", 0.0) for p in predictions)
        say(f"viewers in {views} (Grad-CAM and viewers took {spent:.1f} s of this run)")
    for p in predictions:
        if p.error:
            say(f"gliograde: {p.subject}: {p.error}")
    for subject, problem in failed.items():
        say(f"gliograde: {subject}: {problem}")
    raise typer.Exit(1 if failed or any(p.error for p in predictions) else 0)


def write_extras(predictions, run: Path, report: Path | None, dicom: tuple) -> dict:
    """``--report``, ``--dicom-sr`` and ``--dicom-out`` (``dicom``: those two folders or
    None), each said on stderr (stdout may be the JSON); returns the subjects whose DICOM
    results could not be written, with why."""
    from gliograde import __version__
    from gliograde.predict.package import write_dicom_packages
    from gliograde.predict.page import write_predictions_report
    from gliograde.predict.sr import write_dicom_srs

    if report is not None:
        say(f"report: {write_predictions_report(predictions, run, report)}")
    dicom_sr, dicom_out = dicom
    failed: dict[str, str] = {}
    if dicom_sr is not None:
        written, notes, failed = write_dicom_srs(predictions, dicom_sr, __version__)
        for note in notes:
            say(f"note: {note}")
        for subject, path in written.items():
            say(f"DICOM SR of {subject}: {path}")
    if dicom_out is not None:
        packages, notes, more = write_dicom_packages(predictions, dicom_out, __version__)
        for note in notes:
            say(f"note: {note}")
        for subject, package in packages.items():
            say(f"DICOM results of {subject} ({len(package.files)} objects): {package.sr.parent}")
        failed |= more
    return failed


def explain(
    run: RunArgument,
    subjects: Annotated[
        list[Path] | None, typer.Argument(help="Subject folders (or --store).")
    ] = None,
    store: Annotated[
        Path | None, typer.Option(help="Explain the run's out-of-fold patients.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for panels (default RUN/explain).")
    ] = None,
    per_patient: Annotated[int, typer.Option(help="Panels per patient.")] = 2,
    method: Annotated[CamMethod, typer.Option(help="Saliency method.")] = CamMethod.gradcam,
    layer: Annotated[
        Layer,
        typer.Option(
            help="Stage: auto (layer4 at 240 px), layer1..layer4 (strides 4 to 32; a DenseNet's "
            "blocks at the same strides)."
        ),
    ] = Layer.auto,
    force: Annotated[
        bool,
        typer.Option(help="Explain subjects unlike the training data too (flagged uncertain)."),
    ] = False,
    viewer: Annotated[
        bool,
        typer.Option(
            help="Each patient's Grad-CAM volume (gradcam.nii.gz) and 3D viewer page (viewer.html)."
        ),
    ] = True,
    device: DeviceOption = Device.auto,
    precision: PrecisionOption = None,
):
    """Grad-CAM panels and attention on the tumour, and each patient's map as a volume in their own grid with a 3D viewer page."""
    from gliograde.assess.explain import ExplainOptions, explain_store, explain_subjects
    from gliograde.assess.gradcam import attention_line

    folders = subjects or []  # None when no subject is given
    if (store is None) == (not folders):
        raise UsageError("give either --store STORE or one or more subject folders")
    options = ExplainOptions(
        out, per_patient, method.value, layer.value, device.value, force, viewer=viewer,
        precision=grading_precision(precision),
    )  # fmt: skip
    if store is not None:
        summary = explain_store(run, store, options)
    else:
        summary = explain_subjects(run, folders, options)
        for subject, answer in summary["answers"].items():
            typer.echo(f"{subject}: {answer['answer']}, P({answer['of']}) {answer['p']:.3f}")
        for subject, problem in summary["errors"].items():
            say(f"gliograde: {subject}: {problem}")
    if summary.get("n_slices"):
        typer.echo(attention_line(summary))
    folder = out or Path(run) / "explain"
    typer.echo(f"panels in {folder}")
    if summary.get("viewers"):
        typer.echo(
            f"viewers: {len(summary['viewers'])}, e.g. {folder / next(iter(summary['viewers'].values()))}"
        )
    if summary.get("viewer_note"):
        say(f"note: {summary['viewer_note']}")
    if summary.get("errors"):
        raise typer.Exit(1)


def report(run: RunArgument):
    """Write RUN/report.html: one self-contained page (images embedded, opens offline)."""
    from gliograde.assess.report import write_report

    typer.echo(f"report: {write_report(run)}")


COMMANDS = (predict, explain, report)
