"""Commands that make and measure runs: ``train``, ``evaluate`` and ``compare``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gliograde.cli.common import (
    Backbone,
    Balance,
    CompareMode,
    Device,
    DeviceOption,
    JsonOption,
    Precision,
    PrecisionOption,
    RunArgument,
    Select,
    WorkersOption,
    grading_precision,
)
from gliograde.core.errors import UsageError


def train(
    store: Annotated[Path, typer.Argument(help="Slice store made by `gliograde prepare`.")],
    out: Annotated[Path, typer.Option("--out", help="Run folder to write.")],
    fold: Annotated[list[int] | None, typer.Option(help="Fold(s) to train (default: all).")] = None,
    full: Annotated[bool, typer.Option(help="One model on every subject, no validation.")] = False,
    epochs: Annotated[int, typer.Option(help="Maximum epochs.")] = 20,
    batch_size: Annotated[
        int | None,
        typer.Option(help="Slices (3D: volumes) per step, over all devices (default 32; 3D: 4)."),
    ] = None,
    lr: Annotated[float, typer.Option(help="Peak learning rate (one-cycle schedule).")] = 1e-3,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: DeviceOption = Device.auto,
    devices: Annotated[int, typer.Option(help="Devices per node (DDP when more than 1).")] = 1,
    nodes: Annotated[int, typer.Option(help="Nodes (multi-node DDP).")] = 1,
    balance: Annotated[Balance, typer.Option(help="Class imbalance.")] = Balance.weights,
    epoch_slices: Annotated[
        int | None,
        typer.Option(help="Slices (3D: volumes) drawn per epoch (default: as many as there are)."),
    ] = None,
    select: Annotated[
        Select, typer.Option(help="Checkpoint: inner (a split of the training patients) or last.")
    ] = Select.inner,
    select_fraction: Annotated[
        float, typer.Option(help="Share of each fold's training patients in the inner split.")
    ] = 0.2,
    patience: Annotated[int, typer.Option(help="Early stopping on the inner split (0: off).")] = 5,
    augment: Annotated[bool, typer.Option(help="Augment training batches.")] = True,
    workers: WorkersOption = None,
    use_compile: Annotated[
        bool, typer.Option("--compile/--no-compile", help="torch.compile the network.")
    ] = False,
    resident: Annotated[
        bool,
        typer.Option(help="Training slices read once into one tensor on the device (RAM or GPU)."),
    ] = False,
    precision: Annotated[
        Precision,
        typer.Option(help="auto: bf16 where the CPU or GPU computes it natively, else fp32."),
    ] = Precision.auto,
    pretrained: Annotated[
        Path | None,
        typer.Option(
            help="Local weights: torchvision's resnet18 or densenet121 (ImageNet), or "
            "MedicalNet's resnet_10 (resnet10-3d)."
        ),
    ] = None,
    backbone: Annotated[
        Backbone,
        typer.Option(
            help="Network: resnet18 (the reference), densenet121, resnet18-2.5d, or on the "
            "whole brain resnet10-3d, densenet121-3d (after `prepare --volumes GRID`)."
        ),
    ] = Backbone.resnet18,
    context: Annotated[
        int | None,
        typer.Option(help="2.5D: neighbouring slices each side stacked as channels (default 1)."),
    ] = None,
    grid: Annotated[
        int | None,
        typer.Option(help="3D: the volume's side, GRID³ voxels (default 96)."),
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoints.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
):
    """Train a network (ResNet18 by default) on the store's folds, then grade each fold's
    held-out patients once."""
    options = dict(locals())  # the options, before any other name is bound here
    from gliograde.assess.evaluate import format_table
    from gliograde.experiment import train_and_evaluate
    from gliograde.run.config import TrainConfig
    from gliograde.train.fit import is_global_zero

    if full and fold:
        raise UsageError("--full trains on every subject; do not combine it with --fold")
    options["folds"] = options.pop("fold") or None
    options["compile"] = options.pop("use_compile")
    options["workers"] = loader_workers(workers)
    # --precision is the training's; the held-out patients are graded as predict grades them
    metrics = train_and_evaluate(TrainConfig.from_options(**options), grading_precision())
    if metrics is not None:
        typer.echo(format_table(metrics))
    if is_global_zero():
        typer.echo(f"run written to {out}")


def loader_workers(workers: int | None) -> int:
    """``--workers`` as ``TrainConfig`` records it: -1 for automatic (0 on a CPU, up to 8 on a
    GPU); -1 given on the command line, the older spelling of automatic, means the same."""
    return -1 if workers is None or workers < 0 else workers


def evaluate(
    run: RunArgument,
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
    device: DeviceOption = Device.auto,
    precision: PrecisionOption = None,
):
    """Recompute a run's held-out figures, or grade an independent cohort with --test."""
    from gliograde.assess.evaluate import TestCohort, evaluate_run, evaluate_test, format_table
    from gliograde.assess.report import write_report

    if test is None:
        if out or labels or recalibrate:
            raise UsageError("--out, --labels and --recalibrate go with --test")
        typer.echo(format_table(evaluate_run(run)))
        return
    if out is None:
        raise UsageError("--test needs --out DIR for its results")
    cohort = TestCohort(test, labels, recalibrate, force)
    metrics = evaluate_test(run, cohort, out, device.value, grading_precision(precision))
    typer.echo(format_table(metrics))
    typer.echo(f"results in {out} (report: {write_report(out)})")


def compare(
    runs: Annotated[
        list[Path], typer.Argument(help="Two or more runs trained on one store with its folds.")
    ],
    mode: Annotated[
        CompareMode,
        typer.Option(help="Grading mode: auto (seg where every run has it, else noseg)."),
    ] = CompareMode.auto,
    figure: Annotated[
        Path | None,
        typer.Option(help="Also write a PNG here: ROC curves overlaid, paired differences."),
    ] = None,
    boot: Annotated[int, typer.Option(help="Bootstrap resamples.", min=200)] = 2000,
    json_out: JsonOption = False,
):
    """Compare runs on the same patients: AUCs with bootstrap CIs, paired differences with a
    paired bootstrap CI and DeLong's test, calibration, the flag, and what each cost."""
    import json

    from gliograde.assess.compare import compare_runs
    from gliograde.assess.compare_view import comparison_table, plot_comparison

    comparison = compare_runs(runs, mode.value, boot)
    written = plot_comparison(comparison, figure) if figure is not None else None
    if json_out:
        typer.echo(
            json.dumps(comparison.to_dict() | {"figure": written and str(written)}, indent=2)
        )
        return
    typer.echo(comparison_table(comparison))
    if written is not None:
        typer.echo(f"figure: {written}")


COMMANDS = (train, evaluate, compare)
