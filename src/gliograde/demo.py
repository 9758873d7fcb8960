"""``gliograde demo``: the whole method on a SYNTHETIC cohort, in one command.

synth → prepare (brain slices, so that prediction without a segmentation is learned too) →
5-fold cross-validated training → each fold's held-out patients graded once → Grad-CAM and the
report. On a CPU the slices are reduced to 64×64 and each epoch draws a fixed number of slices,
so that it ends in a few minutes; on a GPU it trains at the native 240×240. Each fold keeps its
weights after a fixed number of epochs (``--select last``): with 32 training patients a fold, an
inner selection split of 6 or 7 patients would choose a checkpoint on noise.

``--target idh`` or ``--target who`` runs the same on a second SYNTHETIC label instead of the
grade: IDH (two classes, the T2-FLAIR mismatch) or the WHO grade (three classes: 2, 3, 4).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gliograde.core.console import say
from gliograde.core.errors import GliogradeError

if TYPE_CHECKING:
    from gliograde.assess.record import Metrics


@dataclass
class DemoConfig:
    """What the demo runs; CPU and GPU defaults differ only in image size and training length."""

    out: Path = Path("demo-output")
    subjects: int = 40
    lgg_fraction: float = 0.3
    seed: int = 0
    shape: tuple[int, int, int] = (240, 240, 155)
    size: int | None = 64  # None: native 240×240
    epochs: int = 6
    epoch_slices: int | None = 768
    batch_size: int = 32
    lr: float = 3e-3
    device: str = "auto"
    target: str = "grade"  # or "idh", "who": a label synth writes beside the grade
    grading_precision: str = "auto"  # the held-out grading's and Grad-CAM's (predict's rule)

    def folder(self, name: str) -> Path:
        """``OUT/NAME``, or ``OUT/NAME-TARGET`` for a target other than the grade."""
        return Path(self.out) / (name if self.target == "grade" else f"{name}-{self.target}")

    @classmethod
    def for_device(
        cls, out: Path, device: str = "auto", target: str = "grade", grading: str = "auto"
    ) -> DemoConfig:
        """The demo's sizes for ``device`` (native 240×240 on a GPU); ``grading``: the
        precision the held-out patients are graded in (``auto``, ``fp32`` or ``bf16``)."""
        from gliograde.core.devices import resolve_device
        from gliograde.core.errors import UsageError

        if target not in DEMO_TARGETS:
            raise UsageError(f"--target {target}: choose one of {', '.join(DEMO_TARGETS)}")
        if resolve_device(device) == "cuda":
            return cls(
                out=out,
                size=None,
                epochs=15,
                epoch_slices=None,
                batch_size=64,
                lr=1e-3,
                device="cuda",
                target=target,
                grading_precision=grading,
            )
        return cls(out=out, device="cpu", target=target, grading_precision=grading)


DEMO_TARGETS = {"grade": None, "idh": "IDH", "who": "WHO_grade"}
"""The demo's targets and the label CSV column each learns (None: the grade)."""


def run_demo(config: DemoConfig, report: bool = True) -> Metrics:
    """Run the demo end to end; returns the metrics of the out-of-fold patients.

    With ``report``, it ends with Grad-CAM explanations and the HTML report.
    """
    from gliograde.assess.evaluate import format_table
    from gliograde.experiment import train_and_evaluate

    store, run = config.folder("store"), config.folder("run")
    started = time.perf_counter()

    def step(message: str) -> None:
        say(f"[{time.perf_counter() - started:5.0f} s] {message}")

    say(f"gliograde demo: {config.subjects} SYNTHETIC subjects (brain phantoms, not patients)")
    make_store(config)
    step(f"slice store in {store}")
    if run.exists():  # the demo's own folder: figures always come from models trained now
        shutil.rmtree(run)
    metrics = train_and_evaluate(demo_training(config, run), config.grading_precision)
    if metrics is None:  # only --full runs and DDP ranks other than 0 have none: not the demo's
        raise GliogradeError(f"{run}: the cross-validation gave no metrics")
    step("5-fold cross-validation done")
    explained = explain_and_report(run, store, config) if report else None
    if explained is not None:
        metrics.attention = explained[0]
    print("\nSYNTHETIC data: out-of-fold results of 5-fold cross-validation, by patient\n")
    print(format_table(metrics))
    print(f"\nfinished in {time.perf_counter() - started:.0f} s")
    print(f"run folder: {run} (metrics.json, predictions_*.csv, roc.png, confusion.png)")
    if explained is not None:
        a, report_path = explained
        print(
            f"Grad-CAM: {a['mean_share_tumor']:.1%} of attention inside the tumour "
            f"(chance {a['mean_chance']:.1%}); report: {report_path}"
        )
    return metrics


def demo_training(config: DemoConfig, run: Path, precision: str = "auto"):
    """The demo's training options (``--select last``: see the module's docstring)."""
    from gliograde.run.config import TrainConfig

    return TrainConfig(
        store=str(config.folder("store")),
        out=str(run),
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        seed=config.seed,
        device=config.device,
        epoch_slices=config.epoch_slices,
        select="last",
        progress=False,
        precision=precision,
    )


def make_store(config: DemoConfig) -> None:
    """The synthetic cohort and its slice store (reused when already there)."""
    from gliograde.core.parallel import default_workers
    from gliograde.io.synth import synth_cohort
    from gliograde.preprocess.slices import PrepareConfig
    from gliograde.store.write import prepare

    data, store = config.folder("synthetic-data"), config.folder("store")
    workers = default_workers()
    if not (data / "name_mapping.csv").is_file():
        labels = {"idh": config.target == "idh", "who": config.target == "who"}
        c = config
        synth_cohort(data, c.subjects, c.lgg_fraction, c.seed, c.shape, workers, **labels)
    target = DEMO_TARGETS[config.target]
    options = PrepareConfig(slices="brain", size=config.size, seed=config.seed, target=target)
    prepare(data, store, options, workers=workers)


def explain_and_report(run: Path, store: Path, config: DemoConfig) -> tuple[dict, Path]:
    from gliograde.assess.explain import ExplainOptions, explain_store
    from gliograde.assess.report import write_report

    options = ExplainOptions(
        per_patient=2, device=config.device, precision=config.grading_precision
    )
    attention = explain_store(run, store, options)
    return attention, write_report(run)
