"""Commands about gliograde itself: ``bench`` (its speed) and ``demo`` (the method on SYNTHETIC
data)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gliograde.cli.common import DemoTarget, Device, DeviceOption, JsonOption, grading_precision
from gliograde.core.errors import UsageError


def bench(
    subjects: Annotated[
        int, typer.Option(help="SYNTHETIC subjects (240×240×155) of the CPU bench.")
    ] = 20,
    json_out: JsonOption = False,
    save: Annotated[
        Path | None, typer.Option(help="Also write the results as JSON to this file.")
    ] = None,
    work: Annotated[
        Path | None, typer.Option(help="Keep the bench's data in this folder (reused next time).")
    ] = None,
    gpu: Annotated[
        bool,
        typer.Option(
            help="Training, predict and a 5-fold CV on 369 SYNTHETIC subjects (for a GPU)."
        ),
    ] = False,
    smoke: Annotated[
        bool, typer.Option(help="With --gpu: the same code at tiny sizes (CI, on a CPU).")
    ] = False,
):
    """Measure loaders, training, prepare, predict and memory against the usual ways (minutes)."""
    if smoke and not gpu:
        raise UsageError("--smoke goes with --gpu (the GPU bench at tiny sizes)")
    if gpu and not smoke and not gpu_present():
        raise UsageError(
            "bench --gpu: PyTorch sees no GPU here; add --smoke to run its code at tiny sizes "
            "on this CPU, or run `gliograde bench` for the CPU bench"
        )
    work_dir, json_path = str(work) if work else None, str(save) if save else None
    if gpu:
        from gliograde.bench.gpu import GpuBenchConfig, format_gpu_results, run_gpu_bench

        gpu_config = (
            GpuBenchConfig.smoke_test(work_dir, json_path)
            if smoke
            else GpuBenchConfig(work=work_dir, json_out=json_path)
        )
        results = run_gpu_bench(gpu_config)
        typer.echo(json.dumps(results, indent=2) if json_out else format_gpu_results(results))
        return
    from gliograde.bench import BenchConfig, format_results, run_bench

    config = BenchConfig(subjects=subjects, work=work_dir, json_out=json_path)
    results = run_bench(config)
    typer.echo(json.dumps(results, indent=2) if json_out else format_results(results))


def gpu_present() -> bool:
    import torch

    return torch.cuda.is_available()


def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo's data, store, run.")] = Path(
        "demo-output"
    ),
    device: DeviceOption = Device.auto,
    target: Annotated[
        DemoTarget, typer.Option(help="grade (LGG/HGG), idh (2 classes) or who (WHO grade 2/3/4).")
    ] = DemoTarget.grade,
):
    """Synthetic cohort → slice store → 5-fold training → patient-level results."""
    from gliograde.demo import DemoConfig, run_demo

    run_demo(DemoConfig.for_device(out, device.value, target.value, grading_precision()))


COMMANDS = (bench, demo)
