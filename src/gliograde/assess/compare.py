"""``gliograde compare``: runs of one store and one set of folds, side by side, with the paired
differences of their patient-level AUCs.

Each run's figures are its out-of-fold answers (``predictions_patients.csv``, as ``evaluate``
wrote them: predict's own path, cross-fitted calibration): on the same patients, in the same
folds, with the same inner selection split, so the runs differ only by what they were trained
with (backbone, options). Runs of different stores, folds or selection splits are refused: their
differences would mix the model with the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from gliograde.assess.metrics import bootstrap_intervals, discrimination
from gliograde.assess.paired import DeLong, PairedDifference, delong_test, paired_bootstrap
from gliograde.assess.patients import column, probability_of_text, read_rows
from gliograde.assess.record import Metrics, ModeFigures, read_metrics
from gliograde.core.errors import GliogradeError, UsageError
from gliograde.run import Run
from gliograde.run.calibration import MODES, Mode
from gliograde.run.cost import read_cost


@dataclass(frozen=True)
class RunFigures:
    """One run's side of the comparison."""

    name: str
    path: str
    backbone: str
    auc: float
    auc_ci95: tuple[float, float]
    balanced_accuracy: float
    ece: float  # of the reported probabilities: calibrated in the folds where it was applied
    brier: float
    accuracy_confident: float | None  # the flag: accuracy on the patients not flagged
    share_flagged: float
    training_seconds: float | None  # all folds; None for runs that did not record it
    peak_memory_mib: float | None  # training process (GPU: the device's allocation)
    device: str | None  # where it trained (the peak is the GPU's on cuda)
    seconds_per_patient: float | None  # the models on a patient's stored slices

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self).items()}


@dataclass(frozen=True)
class PairFigures:
    """Run ``a`` against run ``b``: ``AUC(a) - AUC(b)`` by paired bootstrap and by DeLong."""

    a: str
    b: str
    bootstrap: PairedDifference
    delong: DeLong

    @property
    def told_apart(self) -> bool:
        """Whether the paired interval leaves out 0: these patients tell ``a`` from ``b``."""
        low, high = self.bootstrap.ci95
        return low > 0 or high < 0

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "bootstrap": self.bootstrap.to_dict(),
                "delong": self.delong.to_dict(), "told_apart": self.told_apart}  # fmt: skip


@dataclass(frozen=True)
class Scores:
    """One run's out-of-fold patients: ids, true classes, calibrated P(class 1)."""

    subjects: list[str]
    y: np.ndarray
    p: np.ndarray

    def aligned(self, order: list[str]) -> Scores:
        """The same patients in ``order`` (the same set: checked by :func:`read_scores`)."""
        where = {s: i for i, s in enumerate(self.subjects)}
        idx = np.array([where[s] for s in order])
        return Scores(list(order), self.y[idx], self.p[idx])


@dataclass(frozen=True)
class Comparison:
    """What ``compare`` prints: each run, each pair, on ``n_patients`` patients."""

    mode: Mode
    n_patients: int
    classes: tuple[str, ...]
    runs: list[RunFigures]
    pairs: list[PairFigures]
    synthetic: bool
    scores: list[Scores] = field(default_factory=list, repr=False)  # for the figure

    def to_dict(self) -> dict:
        return {
            "mode": self.mode.value,
            "n_patients": self.n_patients,
            "classes": list(self.classes),
            "synthetic": self.synthetic,
            "runs": [r.to_dict() for r in self.runs],
            "pairs": [p.to_dict() for p in self.pairs],
        }


def compare_runs(
    paths: list[Path], mode: str = "auto", n_boot: int = 2000, seed: int = 0
) -> Comparison:
    """Compare the cross-validated runs at ``paths`` (two or more, of one store and folds).

    Raises:
        UsageError: fewer than two runs, or the same run twice.
        GliogradeError: runs of different stores (patients, labels or prepare's options),
            targets, folds or selection splits; a run not evaluated; a target with more than
            two classes, or fewer than two patients of a class.
    """
    if len(paths) < 2:
        raise UsageError("compare needs two runs or more")
    runs = [Run.open(p) for p in paths]
    if len({p.resolve() for p in map(Path, paths)}) < len(paths):
        raise UsageError("compare: a run is given twice")
    check_same_protocol(runs)
    classes = runs[0].target.classes
    if len(classes) != 2:
        raise GliogradeError(
            f"{runs[0].path}: compare's paired AUC tests need a two-class target "
            f"({len(classes)} classes here)"
        )
    metrics = [read_metrics(r.path / "metrics.json") for r in runs]
    chosen = common_mode(runs, metrics, mode)
    scores = [read_scores(r, chosen) for r in runs]
    check_same_patients(runs, scores)
    order = sorted(scores[0].subjects)
    scores = [s.aligned(order) for s in scores]
    names = run_names(runs)
    figures = [
        run_figures(r, n, s, m.modes[chosen], n_boot, seed)
        for r, n, s, m in zip(runs, names, scores, metrics)
    ]
    y = scores[0].y
    pairs = [
        PairFigures(names[i], names[j], paired_bootstrap(y, scores[i].p, scores[j].p, n_boot, seed),
                    delong_test(y, scores[i].p, scores[j].p))
        for i, j in combinations(range(len(runs)), 2)
    ]  # fmt: skip
    synthetic = bool(runs[0].manifest.synthetic)
    return Comparison(chosen, len(order), classes, figures, pairs, synthetic, scores)


def check_same_patients(runs: list[Run], scores: list[Scores]) -> None:
    """Refuse out-of-fold answers on other patients, or too few of a class for DeLong."""
    first = set(scores[0].subjects)
    for run, s in zip(runs[1:], scores[1:]):
        if set(s.subjects) != first:
            raise GliogradeError(
                f"{run.path}: its predictions_patients.csv holds other patients than "
                f"{runs[0].path}'s; evaluate both again (gliograde evaluate RUN)"
            )
    counts = np.bincount(scores[0].y, minlength=2)
    if counts.min() < 2:
        raise GliogradeError(
            f"{runs[0].path}: {counts[0]} and {counts[1]} patients of the two classes; paired "
            "AUC tests need 2 of each at least"
        )


def check_same_protocol(runs: list[Run]) -> None:
    """Refuse runs whose patients, classes, folds or inner selection splits differ."""
    first = runs[0]
    for run in runs[1:]:
        what = differing_part(first, run)
        if what:
            raise GliogradeError(
                f"{run.path}: not comparable with {first.path}: {what}; compare runs trained "
                "on the same store with the same folds"
            )


def differing_part(a: Run, b: Run) -> str | None:
    """What differs between the two runs' protocols, or None."""
    if a.target != b.target:
        return f"another target ({b.target.name} vs {a.target.name})"
    if a.manifest.labels != b.manifest.labels:
        return "other patients or labels (another store)"
    if a.manifest.options != b.manifest.options or a.manifest.slice_shape != b.manifest.slice_shape:
        return "a store prepared with other options (prepare's slices, size or normalisation)"
    if a.train_config.full or b.train_config.full:
        return "a --full run has no held-out patients"
    if a.splits() != b.splits():
        return "other cross-validation folds (splits.json)"
    folds_a, folds_b = a.expected_folds(), b.expected_folds()
    if folds_a != folds_b:
        return f"other folds trained ({folds_a} vs {folds_b}); train the missing ones"
    for fold in folds_a:
        if a.fold_split(fold) != b.fold_split(fold):
            return f"another inner selection split in fold {fold} (fold_{fold}/split.json)"
    return None


def common_mode(runs: list[Run], metrics: list[Metrics], mode: str) -> Mode:
    """The grading mode every run was evaluated in: ``seg`` where all have it, else ``noseg``."""
    have = [set(m.modes) for m in metrics]
    wanted = list(MODES) if mode == "auto" else [Mode(mode)]
    for m in wanted:
        if all(m in h for h in have):
            return m
    raise GliogradeError(
        f"{runs[0].path} and the others: no grading mode ({', '.join(m.value for m in wanted)}) "
        "evaluated in every run; evaluate them again, or choose --mode"
    )


def read_scores(run: Run, mode: Mode) -> Scores:
    """The run's out-of-fold patients in ``mode``, from ``predictions_patients.csv``."""
    path = run.path / "predictions_patients.csv"
    if not path.is_file():
        raise GliogradeError(f"{path}: not found; evaluate the run first (gliograde evaluate)")
    rows = read_rows(path, run.target.classes)
    key = column("p", mode)
    p = np.array([probability_of_text(r[key])[1] for r in rows])
    return Scores([r["subject"] for r in rows], np.array([int(r["y"]) for r in rows]), p)


def run_names(runs: list[Run]) -> list[str]:
    """Each run's folder name, or its path where two names are alike."""
    names = [r.path.name for r in runs]
    return names if len(set(names)) == len(names) else [str(r.path) for r in runs]


def run_figures(
    run: Run, name: str, s: Scores, figures: ModeFigures, n_boot: int, seed: int
) -> RunFigures:
    """One run's figures on the aligned patients (``figures``: its metrics in the mode)."""
    probs = np.stack([1 - s.p, s.p], axis=1)
    found = discrimination(s.y, probs)
    interval = bootstrap_intervals(s.y, probs, n_boot, seed).get("auc")
    if found.auc is None or found.balanced_accuracy is None or interval is None:
        raise GliogradeError(f"{run.path}: its patients are of one class only; no AUC to compare")
    low, high = interval
    calib = figures.calibration
    costs = [read_cost(d) for d in run.fold_dirs()]
    recorded = [c for c in costs if c is not None]
    complete = len(recorded) == len(costs) and recorded
    devices = {c.device for c in recorded}
    return RunFigures(
        name=name,
        path=str(run.path),
        backbone=run.train_config.backbone,
        auc=float(found.auc),
        auc_ci95=(low, high),
        balanced_accuracy=float(found.balanced_accuracy),
        ece=float(calib.ece_after),  # of the probabilities compared (calibrated where applied)
        brier=float(calib.brier_after),
        accuracy_confident=figures.uncertainty.accuracy_confident,
        share_flagged=figures.uncertainty.share_flagged,
        training_seconds=sum(c.seconds for c in recorded) if complete else None,
        peak_memory_mib=max(peak_memory(c) for c in recorded) if complete else None,
        device=devices.pop() if complete and len(devices) == 1 else None,
        seconds_per_patient=mean_grading(recorded) if complete else None,
    )


def mean_grading(costs: list) -> float | None:
    """The folds' mean grading seconds per patient, where every fold recorded one."""
    times = [c.grading_seconds_per_patient for c in costs]
    return None if None in times else float(np.mean(times))


def peak_memory(cost) -> float:
    """A fold's peak: the GPU's allocation on a GPU, else the process's resident set."""
    if cost.peak_accelerator_mib is not None:
        return cost.peak_accelerator_mib
    return max(cost.peak_rss_mib, cost.peak_workers_rss_mib)
