"""``gliograde demo``: the whole method on a SYNTHETIC cohort, in one command.

synth → prepare (brain slices, so that prediction without a segmentation is learned too) →
5-fold cross-validated training → patient-level evaluation. On a CPU the slices are reduced to
48×48 and each epoch draws a fixed number of slices, so that it ends in a few minutes; on a GPU
it trains at the native 240×240.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class DemoConfig:
    """What the demo runs; CPU and GPU defaults differ only in image size and training length."""

    out: Path = Path("demo-output")
    subjects: int = 40
    lgg_fraction: float = 0.3
    seed: int = 0
    shape: tuple[int, int, int] = (240, 240, 155)
    size: int | None = 48  # None: native 240×240
    epochs: int = 5
    epoch_slices: int | None = 768
    batch_size: int = 32
    lr: float = 3e-3
    device: str = "auto"

    @classmethod
    def for_device(cls, out: Path, device: str = "auto") -> DemoConfig:
        import torch

        gpu = device == "gpu" or (device == "auto" and torch.cuda.is_available())
        if gpu:
            return cls(out=out, size=None, epochs=15, epoch_slices=None, batch_size=64,
                       lr=1e-3, device="gpu")  # fmt: skip
        return cls(out=out, device="cpu")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_demo(config: DemoConfig, report: bool = True) -> dict:
    """Run the demo end to end; returns the metrics of the pooled out-of-fold predictions.

    With ``report``, it ends with Grad-CAM explanations and the HTML report.
    """
    from gliograde.evaluate import format_table
    from gliograde.parallel import default_workers
    from gliograde.store import PrepareConfig, prepare
    from gliograde.synth import synth_cohort
    from gliograde.train import TrainConfig, run_training

    out = Path(config.out)
    data, store, run = out / "synthetic-data", out / "store", out / "run"
    workers = default_workers()
    started = time.perf_counter()
    say(f"gliograde demo: {config.subjects} SYNTHETIC subjects (brain phantoms, not patients)")
    if not (data / "name_mapping.csv").is_file():
        synth_cohort(data, config.subjects, config.lgg_fraction, config.seed, config.shape, workers)
    say(f"[{time.perf_counter() - started:5.0f} s] synthetic cohort in {data}")
    prepare(data, store, PrepareConfig(slices="brain", size=config.size, seed=config.seed),
            workers=workers)  # fmt: skip
    say(f"[{time.perf_counter() - started:5.0f} s] slice store in {store}")
    train_config = TrainConfig(
        store=str(store), out=str(run), epochs=config.epochs, batch_size=config.batch_size,
        lr=config.lr, seed=config.seed, device=config.device, epoch_slices=config.epoch_slices,
        patience=0, resume=True, progress=False,
    )  # fmt: skip
    metrics = run_training(train_config)
    say(f"[{time.perf_counter() - started:5.0f} s] 5-fold cross-validation done")
    if report:
        from gliograde.explain import explain_store
        from gliograde.report import write_report

        metrics["attention"] = explain_store(run, store, per_patient=2)
        report_path = write_report(run)
    elapsed = time.perf_counter() - started
    print("\nSYNTHETIC data: out-of-fold results of 5-fold cross-validation, by patient\n")
    print(format_table(metrics))
    print(f"\nfinished in {elapsed:.0f} s")
    print(f"run folder: {run} (metrics.json, predictions_*.csv, roc.png, confusion.png)")
    if report:
        a, c = metrics["attention"], metrics["calibration"]["patient"]
        calibration = (
            f"calibration ECE {c['ece_before']:.3f} → {c['ece_after']:.3f} (patients)"
            if c.get("applied", True)
            else "patient-level calibration not applied (it did not hold out of sample)"
        )
        print(f"Grad-CAM: {a['mean_share_tumor']:.1%} of attention inside the tumour "
              f"(chance {a['mean_chance']:.1%}); {calibration}")  # fmt: skip
        print(f"report: {report_path}")
    return metrics
