"""The ``gliograde`` command line: a thin shell over functions that the tests call directly
(torch, MONAI and Lightning are imported inside the commands: ``gliograde --help`` is instant)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from gliograde.cli_patients import predict as predict_command
from gliograde.cli_patients import preprocess as preprocess_command
from gliograde.core.errors import GliogradeError, UsageError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Glioma grading (LGG vs HGG) from multi-modal brain MRI.",
)


def err(message: str) -> None:
    typer.echo(message, err=True)


@app.command()
def check(
    data: Annotated[
        Path, typer.Argument(help="Data folder (BraTS 2020/2019 layout) or CSV manifest.")
    ],
    labels: Annotated[
        Path | None, typer.Option(help="Label CSV (default: DATA/name_mapping.csv).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    workers: Annotated[int, typer.Option(help="Processes reading volumes (0: one per core).")] = 0,
    no_labels: Annotated[
        bool, typer.Option("--no-labels", help="Data for prediction only: no grade needed.")
    ] = False,
):
    """Find every subject and validate its files. Exit 0 when all are usable, 1 otherwise."""
    from gliograde.io.validate import check as run_check

    report = run_check(data, labels, workers or None, need_labels=not no_labels)
    if json_out:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for line in report.lines():
            typer.echo(line)
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write the synthetic cohort to.")],
    subjects: Annotated[int, typer.Option(help="Number of subjects.")] = 40,
    lgg_fraction: Annotated[float, typer.Option(help="Share of LGG subjects.")] = 0.25,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files).")] = 0,
    size: Annotated[
        str, typer.Option(help="Volume shape X,Y,Z (default: BraTS 240,240,155).")
    ] = "240,240,155",
    workers: Annotated[int, typer.Option(help="Processes (0: one per core).")] = 0,
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
    from gliograde.core.parallel import default_workers
    from gliograde.io.synth import parse_shape, synth_cohort

    shape = parse_shape(size)
    n = workers or default_workers()
    ids = synth_cohort(out, subjects, lgg_fraction, seed, shape, n, skull=skull, idh=idh, who=who)
    err(f"wrote {len(ids)} SYNTHETIC subjects to {out}")


@app.command()
def prepare(
    data: Annotated[Path, typer.Argument(help="Data folder or CSV manifest.")],
    out: Annotated[Path, typer.Option("--out", help="Store folder to write.")],
    slices: Annotated[
        str,
        typer.Option(help="Axial slices: brain (default; teaches seg-free grading), tumor, all."),
    ] = "brain",
    min_tumor_pixels: Annotated[int, typer.Option(help="Tumour pixels for a tumour slice.")] = 100,
    size: Annotated[
        int | None, typer.Option(help="Resize slices to SIZE×SIZE (default: native).")
    ] = None,
    workers: Annotated[int, typer.Option(help="Processes (0: one per core).")] = 0,
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
):
    """Build the slice store (one pread per slice) with patient-level splits."""
    from gliograde.core.parallel import default_workers
    from gliograde.preprocess.slices import PrepareConfig
    from gliograde.store.write import prepare as run_prepare

    order = [c.strip() for c in classes.split(",")] if classes else None
    config = PrepareConfig(
        slices, min_tumor_pixels, size, folds, seed, target=target, classes=order
    )
    manifest = run_prepare(data, out, config, labels, workers or default_workers(), skip_bad)
    for sid, reason in manifest["skipped"].items():
        err(f"skipped {sid}: {reason}")
    for note in manifest["notes"]:
        err(f"note: {note}")
    kind = "SYNTHETIC " if manifest["synthetic"] else ""
    t = manifest["target"]
    if len(t["classes"]) == 2:
        listed, score = " and ".join(t["classes"]), f"score: P({t['classes'][1]})"
    else:
        listed, score = ", ".join(t["classes"]), "answer: the most probable class"
    typer.echo(f"target: {t['name']}, classes {listed} ({score})")
    typer.echo(
        f"{out}: {len(manifest['subjects'])} {kind}subjects, {manifest['n_slices']} slices "
        f"of {'×'.join(map(str, manifest['slice_shape']))}, {manifest['folds']} folds, "
        f"{len(manifest['skipped'])} skipped"
    )


@app.command()
def train(
    store: Annotated[Path, typer.Argument(help="Slice store made by `gliograde prepare`.")],
    out: Annotated[Path, typer.Option("--out", help="Run folder to write.")],
    fold: Annotated[list[int] | None, typer.Option(help="Fold(s) to train (default: all).")] = None,
    full: Annotated[bool, typer.Option(help="One model on every subject, no validation.")] = False,
    epochs: Annotated[int, typer.Option(help="Maximum epochs.")] = 20,
    batch_size: Annotated[int, typer.Option(help="Slices per step, over all devices.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate (one-cycle schedule).")] = 1e-3,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or gpu.")] = "auto",
    devices: Annotated[int, typer.Option(help="Devices per node (DDP when more than 1).")] = 1,
    nodes: Annotated[int, typer.Option(help="Nodes (multi-node DDP; see README).")] = 1,
    balance: Annotated[str, typer.Option(help="Class imbalance: weights or sampler.")] = "weights",
    epoch_slices: Annotated[int | None, typer.Option(help="Slices drawn per epoch.")] = None,
    select: Annotated[
        str, typer.Option(help="Checkpoint: inner (a split of the training patients) or last.")
    ] = "inner",
    select_fraction: Annotated[
        float, typer.Option(help="Share of each fold's training patients in the inner split.")
    ] = 0.2,
    patience: Annotated[int, typer.Option(help="Early stopping on the inner split (0: off).")] = 5,
    augment: Annotated[bool, typer.Option(help="Augment training batches.")] = True,
    workers: Annotated[int, typer.Option(help="DataLoader workers (-1: auto).")] = -1,
    compile: Annotated[bool, typer.Option(help="torch.compile the network.")] = False,
    resident: Annotated[
        bool, typer.Option(help="Training slices kept in GPU memory: no CPU worker in the loop.")
    ] = False,
    pretrained: Annotated[
        Path | None, typer.Option(help="torchvision resnet18 weights file.")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoints.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
):
    """Train ResNet18 on the store's folds, then grade each fold's held-out patients once."""
    from gliograde.assess.crossval import train_and_evaluate
    from gliograde.assess.evaluate import format_table
    from gliograde.train.config import TrainConfig
    from gliograde.train.fit import is_global_zero

    if full and fold:
        raise UsageError("--full trains on every subject; do not combine it with --fold")
    config = TrainConfig(
        store=str(store),
        out=str(out),
        folds=list(fold) if fold else None,
        full=full,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        devices=devices,
        nodes=nodes,
        balance=balance,
        epoch_slices=epoch_slices,
        patience=patience,
        augment=augment,
        select=select,
        select_fraction=select_fraction,
        workers=workers,
        compile=compile,
        resident=resident,
        pretrained=str(pretrained) if pretrained else None,
        resume=resume,
        progress=progress,
    )
    metrics = train_and_evaluate(config)
    if metrics is not None:
        typer.echo(format_table(metrics))
    if is_global_zero():
        typer.echo(f"run written to {out}")


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run folder made by `gliograde train`.")],
    test: Annotated[
        Path | None, typer.Option(help="An independent labelled cohort (any layout check reads).")
    ] = None,
    labels: Annotated[Path | None, typer.Option(help="Label CSV for --test.")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for --test results.")] = None,
    recalibrate: Annotated[
        bool, typer.Option(help="Also fit a calibration on the --test cohort (saved in --out).")
    ] = False,
    force: Annotated[
        bool, typer.Option(help="--test: grade patients unlike the training data too.")
    ] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or gpu.")] = "auto",
):
    """Recompute a run's held-out figures, or grade an independent cohort with --test."""
    from gliograde.assess.evaluate import evaluate_run, evaluate_test, format_table

    if test is None:
        if out or labels or recalibrate:
            raise UsageError("--out, --labels and --recalibrate go with --test")
        typer.echo(format_table(evaluate_run(run)))
        return
    if out is None:
        raise UsageError("--test needs --out DIR for its results")
    metrics = evaluate_test(run, test, out, labels, recalibrate, device, force)
    from gliograde.assess.report import write_report

    typer.echo(format_table(metrics))
    typer.echo(f"results in {out} (report: {write_report(out)})")


app.command(name="predict")(predict_command)


@app.command()
def explain(
    run: Annotated[Path, typer.Argument(help="Run folder made by `gliograde train`.")],
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
    method: Annotated[str, typer.Option(help="gradcam or gradcampp.")] = "gradcam",
    layer: Annotated[
        str, typer.Option(help="ResNet stage: auto (layer4 at 240 px), layer1..layer4.")
    ] = "auto",
    device: Annotated[str, typer.Option(help="auto, cpu or gpu.")] = "auto",
):
    """Grad-CAM panels and attention on the tumour (share inside, pointing game)."""
    from gliograde.assess.explain import explain_store, explain_subjects
    from gliograde.assess.gradcam import attention_line

    if method not in ("gradcam", "gradcampp"):
        raise UsageError("--method must be gradcam or gradcampp")
    if (store is None) == (not subjects):
        raise UsageError("give either --store STORE or one or more subject folders")
    if layer not in ("auto", "layer1", "layer2", "layer3", "layer4"):
        raise UsageError("--layer must be auto or layer1 to layer4")
    if store is not None:
        summary = explain_store(run, store, out, per_patient, method, layer=layer, device=device)
    else:
        summary = explain_subjects(run, subjects, out, per_patient, method, layer, device)
        for subject, answer in summary["answers"].items():
            typer.echo(f"{subject}: {answer['answer']}, P({answer['of']}) {answer['p']:.3f}")
        for subject, problem in summary["errors"].items():
            err(f"gliograde: {subject}: {problem}")
    if summary.get("n_slices"):
        typer.echo(attention_line(summary))
    typer.echo(f"panels in {out or Path(run) / 'explain'}")
    if summary.get("errors"):
        raise typer.Exit(1)


@app.command()
def report(run: Annotated[Path, typer.Argument(help="Run folder made by `gliograde train`.")]):
    """Write RUN/report.html: one self-contained page (images embedded, opens offline)."""
    from gliograde.assess.report import write_report

    typer.echo(f"report: {write_report(run)}")


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="Run folder made by `gliograde train`.")],
    format: Annotated[
        str, typer.Option("--format", help="safetensors, torchscript, onnx or monai-bundle.")
    ] = "safetensors",
    out: Annotated[Path | None, typer.Option(help="Default RUN/export, RUN/bundle.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or gpu (the PyTorch reference).")] = "auto",
):
    """Export the run's models and check each against PyTorch (max |Δ logit| ≤ 1e-4)."""
    from gliograde.export import PARITY_TOLERANCE, export_run

    for e in export_run(run, format, out, device=device):
        typer.echo(
            f"{e.file}: max |Δ logit| vs PyTorch {e.max_abs_diff:.1e} (≤ {PARITY_TOLERANCE:.0e})"
        )
    default = "bundle" if format == "monai-bundle" else "export"
    typer.echo(f"written to {out or Path(run) / default}")


@app.command()
def bench(
    subjects: Annotated[
        int, typer.Option(help="SYNTHETIC subjects (240×240×155) to measure on.")
    ] = 20,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the results as JSON here.")
    ] = None,
    work: Annotated[
        Path | None, typer.Option(help="Keep the bench's data in this folder (reused next time).")
    ] = None,
):
    """Measure loaders, training, prepare, predict and memory against the usual ways (a few minutes)."""
    from gliograde.bench import BenchConfig, format_results, run_bench

    config = BenchConfig(
        subjects=subjects,
        work=str(work) if work else None,
        json_out=str(json_out) if json_out else None,
    )
    typer.echo(format_results(run_bench(config)))


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo's data, store, run.")] = Path(
        "demo-output"
    ),
    device: Annotated[str, typer.Option(help="auto, cpu or gpu.")] = "auto",
    target: Annotated[
        str, typer.Option(help="grade (LGG/HGG), idh (2 classes) or who (WHO grade 2/3/4).")
    ] = "grade",
):
    """Synthetic cohort → slice store → 5-fold training → patient-level results."""
    from gliograde.demo import DemoConfig, run_demo

    run_demo(DemoConfig.for_device(out, device, target))


app.command(name="preprocess")(preprocess_command)


def main() -> None:
    """Entry point: user errors are one line on stderr, without a traceback."""
    try:
        app()
    except GliogradeError as e:
        err(f"gliograde: error: {e}")
        sys.exit(2 if isinstance(e, UsageError) else 1)
    except KeyboardInterrupt:
        err("gliograde: interrupted (Ctrl-C)")
        sys.exit(130)
