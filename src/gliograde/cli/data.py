"""Commands on data: ``check``, ``synth``, ``prepare`` and ``preprocess``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gliograde.cli.common import JsonOption, Slices, WorkersOption, say


def check(
    data: Annotated[
        Path,
        typer.Argument(
            help="Data folder (BraTS 2020/2019, BrainLesion names, a Decathlon or nnU-Net dataset.json) or CSV manifest."
        ),
    ],
    labels: Annotated[
        Path | None, typer.Option(help="Label CSV (default: DATA/name_mapping.csv).")
    ] = None,
    json_out: JsonOption = False,
    workers: WorkersOption = None,
    no_labels: Annotated[
        bool, typer.Option("--no-labels", help="Data for prediction only: no grade needed.")
    ] = False,
):
    """Find every subject and validate its files. Exit 0 when all are usable, 1 otherwise."""
    from gliograde.io.validate import check as run_check

    report = run_check(data, labels, workers_or_cores(workers), need_labels=not no_labels)
    if json_out:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for line in report.lines():
            typer.echo(line)
    raise typer.Exit(0 if report.ok else 1)


def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write the synthetic cohort to.")],
    subjects: Annotated[int, typer.Option(help="Number of subjects.")] = 40,
    lgg_fraction: Annotated[float, typer.Option(help="Share of LGG subjects.")] = 0.25,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files).")] = 0,
    size: Annotated[
        str, typer.Option(help="Volume shape X,Y,Z (default: BraTS 240,240,155).")
    ] = "240,240,155",
    workers: WorkersOption = None,
    skull: Annotated[bool, typer.Option(help="Heads with skull and scalp (raw-like).")] = False,
    idh: Annotated[
        bool, typer.Option(help="A second label, IDH, shown as the T2-FLAIR mismatch.")
    ] = False,
    who: Annotated[
        bool,
        typer.Option(help="A label of 3 classes, WHO_grade 2/3/4; grade 3 has no necrotic core."),
    ] = False,
):
    """Write a SYNTHETIC BraTS-like cohort (BraTS 2020 layout, NIfTI + name_mapping.csv)."""
    from gliograde.io.synth import parse_shape, synth_cohort

    shape, n = parse_shape(size), workers_or_cores(workers)
    ids = synth_cohort(out, subjects, lgg_fraction, seed, shape, n, skull=skull, idh=idh, who=who)
    say(f"wrote {len(ids)} SYNTHETIC subjects to {out}")


def prepare(
    out: Annotated[Path, typer.Option("--out", help="Store folder to write.")],
    data: Annotated[
        Path | None,
        typer.Argument(help="Data folder or CSV manifest (left out: --volumes on the store)."),
    ] = None,
    slices: Annotated[
        Slices,
        typer.Option(help="Axial slices: brain (teaches seg-free grading), tumor, all."),
    ] = Slices.brain,
    min_tumor_pixels: Annotated[int, typer.Option(help="Tumour pixels for a tumour slice.")] = 100,
    size: Annotated[
        int | None, typer.Option(help="Resize slices to SIZE×SIZE (default: native).")
    ] = None,
    workers: WorkersOption = None,
    folds: Annotated[int, typer.Option(help="Cross-validation folds.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the folds.")] = 0,
    labels: Annotated[
        Path | None, typer.Option(help="Label CSV (default: DATA/name_mapping.csv).")
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(help="Learn this label CSV column (2 to 10 classes) instead of the grade."),
    ] = None,
    classes: Annotated[
        str | None,
        typer.Option(help="The target's classes in order (two: NEGATIVE,POSITIVE)."),
    ] = None,
    skip_bad: Annotated[
        bool, typer.Option(help="Write the good subjects and list the bad ones.")
    ] = False,
    volumes: Annotated[
        int | None,
        typer.Option(help="Also write each brain as one GRID³ volume, for 3D backbones."),
    ] = None,
):
    """Build the slice store (one pread per slice) with patient-level splits; with --volumes,
    each brain as one volume beside its slices (without DATA: added to the store --out)."""
    from gliograde.core.errors import UsageError
    from gliograde.core.memory import reuse_freed_memory
    from gliograde.preprocess.slices import PrepareConfig
    from gliograde.store.write import prepare as run_prepare

    if volumes is not None:
        check_volumes_option(volumes, slices.value)  # before any subject is read
    if data is None:
        if volumes is None:
            raise UsageError("prepare needs DATA (a data folder or CSV manifest)")
        typer.echo(write_store_volumes(out, volumes))
        return
    order = tuple(c.strip() for c in classes.split(",")) if classes else None
    config = PrepareConfig(
        slices.value, min_tumor_pixels, size, folds, seed, target=target, classes=order
    )
    reuse_freed_memory()  # this process ends with the command: see gliograde.core.memory
    manifest = run_prepare(data, out, config, labels, workers_or_cores(workers), skip_bad)
    for sid, reason in manifest.skipped.items():
        say(f"skipped {sid}: {reason}")
    for note in manifest.notes:
        say(f"note: {note}")
    typer.echo(store_summary(out, manifest))
    if volumes is not None:
        typer.echo(write_store_volumes(out, volumes))


def check_volumes_option(grid: int, slices: str) -> None:
    """Refuse ``--volumes`` of a grid no 3D network takes, or for a ``--slices tumor`` store."""
    from gliograde.core.errors import UsageError
    from gliograde.model.backbones import MAX_GRID, MIN_GRID

    if not MIN_GRID <= grid <= MAX_GRID:
        raise UsageError(f"--volumes {grid}: choose a grid of {MIN_GRID} to {MAX_GRID}")
    if slices == "tumor":
        raise UsageError(
            "--volumes goes with a store of --slices brain or all: a volume of the slices a "
            "segmentation chose would read the segmentation"
        )


def write_store_volumes(out: Path, grid: int) -> str:
    """``prepare --volumes``: the store's brains as volumes; one line on what was written."""
    from gliograde.store.read import SliceStore
    from gliograde.store.volumes import volumes_dir, write_volumes

    store = SliceStore(out)
    check_volumes_option(grid, store.manifest.options.slices)
    written = write_volumes(store, grid)
    return f"{volumes_dir(out, grid)}: {written} volumes of 4×{grid}³ written"


def store_summary(out: Path, manifest) -> str:
    """Two lines: the store's target and classes, then what it holds."""
    t = manifest.target
    if len(t.classes) == 2:
        listed, score = " and ".join(t.classes), f"score: P({t.classes[1]})"
    else:
        listed, score = ", ".join(t.classes), "answer: the most probable class"
    kind = "SYNTHETIC " if manifest.synthetic else ""
    return (
        f"target: {t.name}, classes {listed} ({score})\n"
        f"{out}: {len(manifest.subjects)} {kind}subjects, {manifest.n_slices} slices "
        f"of {'×'.join(map(str, manifest.slice_shape))}, {manifest.folds} folds, "
        f"{len(manifest.skipped)} skipped"
    )


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
        say(f"note: {note}")
    for subject, record in records.items():
        seconds = sum(record["seconds"].values())
        typer.echo(
            f"{subject}: brain {record['brain_ml']:.0f} mL, {seconds:.0f} s; "
            f"look at {out / subject / 'qc.png'}"
        )
    for subject, problem in errors.items():
        say(f"gliograde: error: {subject}: {problem}")
    if errors:
        raise typer.Exit(1)


def workers_or_cores(workers: int | None) -> int:
    """``--workers``: as given (0 or 1: in this process), or one per core when not given."""
    from gliograde.core.parallel import default_workers

    if workers == 0:  # it meant one per core before 2026-12-04: scripts may still say it
        say("note: --workers 0 runs everything in this process; omit it for one per core")
    return default_workers() if workers is None else workers


COMMANDS = (check, synth, prepare, preprocess)
