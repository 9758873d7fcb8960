"""``gliograde evaluate``: the figures of a run, every one held out.

* Cross-validation (after ``train``, or ``evaluate RUN`` to recompute them from the saved
  patient evidence): the out-of-fold patients, calibrated and flagged with cross-fitted pairs
  and thresholds (:mod:`gliograde.assess.scoring`).
* An independent labelled cohort (``evaluate RUN --test DATA``): graded exactly as ``predict``
  grades, with the run's saved calibration and threshold; ``--recalibrate`` also fits a
  calibration on that cohort (cross-fitted figures; saved beside the run, not over it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gliograde.assess.metrics import Discrimination
from gliograde.assess.modelcard import write_model_card
from gliograde.assess.patients import PatientTable, read_patient_table
from gliograde.assess.record import Inference, Metrics, ModeFigures, figure_names, read_metrics
from gliograde.assess.scoring import score_crossfit, score_fixed
from gliograde.assess.testset import TestCohort
from gliograde.core.errors import UsageError
from gliograde.io.target import Target
from gliograde.run import Run
from gliograde.run.calibration import Calibration, Mode
from gliograde.store.write import is_synthetic_source

PROTOCOL = (
    "patient-level cross-validation; each fold's checkpoint chosen on an inner split of its "
    "training patients (or the last epoch), its validation patients graded once afterwards by "
    "the same rule as predict; calibration and flag thresholds cross-fitted (each fold's "
    "patients by pairs and thresholds fitted on the other folds)"
)


def evaluate_table(
    out: Path, table: PatientTable, run: Run, keep: bool = False, inference: dict | None = None
) -> Metrics:
    """Score a cross-validated run's out-of-fold patients; write every output into ``out``.

    ``keep``: the old ``metrics.json``'s ``attention`` and ``inference`` are still true of
    these models (only the figures are recomputed). ``inference``: the precision and device the
    models ran with.
    """
    metrics = Metrics(PROTOCOL, len(table.subject), run.target, modes={})
    if inference is not None:
        metrics.inference = Inference(**inference)
    if keep and (Path(out) / "metrics.json").is_file():
        old = read_metrics(Path(out) / "metrics.json")
        metrics.attention, metrics.inference = old.attention, old.inference
    rules = {}
    for mode in table.evidence:
        metrics.modes[mode], rules[mode] = score_crossfit(table, mode)
    if Mode.NOSEG not in table.evidence:
        metrics.not_measured[Mode.NOSEG] = NOSEG_UNTRAINED
    slices = Path(out) / "predictions_slices.csv"
    if slices.is_file():
        from gliograde.assess.slices import SliceTable, slice_figures

        table_of_slices = SliceTable.read_csv(slices, run.target.classes)
        metrics.slice = slice_figures(table_of_slices, run.min_tumor)
    write_outputs(Path(out), table, metrics)
    Calibration(rules, run.target).write(Path(out) / "calibration.json")
    write_model_card(run, Path(out))
    return metrics


NOSEG_UNTRAINED = (
    "not measured: the run was trained on a --slices tumor store and cannot grade without a "
    "segmentation"
)


def evaluate_run(run_path: Path) -> Metrics:
    """Recompute a run's cross-validation figures from its saved patient evidence, holding the
    run's lock while it rewrites them (as ``train`` does)."""
    from gliograde.core.lock import folder_lock

    run = Run.open(run_path)
    with folder_lock(run.path, "gliograde evaluate"):
        table = read_patient_table(run.path / "predictions_patients.csv", run.target.classes)
        return evaluate_table(run.path, table, run, keep=True)


def evaluate_test(
    run_path: Path, cohort: TestCohort, out: Path, device: str = "auto", precision: str = "auto"
) -> Metrics:
    """Grade an independent labelled cohort with the run's models, as ``predict`` would (on
    ``device``, in ``precision``: ``auto``, ``fp32`` or ``bf16``).

    Returns:
        The metrics (also ``out/metrics.json``), next to ``predictions_patients.csv`` and the
        plots in ``out``. With ``out`` inside the run's folder, the run's lock is held.
    """
    from gliograde.core.lock import lock_if_writing_into

    run = Run.open(run_path)
    if (Path(out) / "config.json").is_file():
        raise UsageError(f"--out {out}: that is a run folder; give a new folder for the results")
    with lock_if_writing_into(run.path, out, "gliograde evaluate"):
        return graded_test(run, cohort, Path(out), device, precision)


def graded_test(run: Run, cohort: TestCohort, out: Path, device: str, precision: str) -> Metrics:
    """:func:`evaluate_test`'s work (the run's lock held when ``out`` is inside the run)."""
    from gliograde.assess.testset import grade_cohort
    from gliograde.core.devices import resolve_device
    from gliograde.infer.grader import Grader
    from gliograde.infer.models import inference_record

    grader = Grader.open(run, device=device, precision=precision)
    table, skipped = grade_cohort(grader, cohort)
    Path(out).mkdir(parents=True, exist_ok=True)
    metrics = Metrics(
        "independent cohort, graded as predict grades it",
        len(table.subject),
        run.target,
        modes={m: score_fixed(table, m, grader.calibration.rule(m)) for m in table.evidence},
        inference=Inference(**inference_record(resolve_device(device), precision)),
        skipped=skipped,
        synthetic=is_synthetic_source(Path(cohort.data))
        or any(s.startswith("Synth_") for s in table.subject),
    )
    if cohort.recalibrate:
        metrics.recalibrated = recalibrated(table, run, Path(out))
    write_outputs(Path(out), table, metrics)
    write_model_card(run, Path(out))
    return metrics


def recalibrated(table: PatientTable, run: Run, out: Path) -> dict[Mode, ModeFigures]:
    """Calibration fitted on this cohort: saved as ``out/calibration.json`` (the run's stays),
    with figures cross-fitted over 5 stratified folds of this cohort."""
    from gliograde.store.splits import make_splits

    ids = list(table.subject)
    splits, _ = make_splits(ids, table.y.tolist(), folds=5, seed=0)
    fold_of = {s: k for k, split in enumerate(splits) for s in split["val"]}
    folds = np.array([fold_of.get(s, 0) for s in ids])
    refit = PatientTable(ids, folds, table.y, table.evidence, table.classes)
    figures: dict[Mode, ModeFigures] = {}
    rules = {}
    for mode in refit.evidence:
        figures[mode], rules[mode] = score_crossfit(refit, mode)
    fitted = Calibration(rules, run.target, fitted_on=str(out), run=str(run.path))
    fitted.write(out / "calibration.json")
    return figures


def write_outputs(out: Path, table: PatientTable, metrics: Metrics) -> None:
    """``metrics.json``, ``predictions_patients.csv``, ROC, confusion and reliability plots."""
    from gliograde.assess.plots import plot_confusion, plot_reliability, plot_roc

    out.mkdir(parents=True, exist_ok=True)
    metrics.write(out / "metrics.json")
    table.write_csv(out / "predictions_patients.csv")
    main = Mode.SEG if Mode.SEG in table.results else next(iter(table.results))
    p = table.p_calibrated(main)
    p_unc = table.p_uncalibrated(main)
    plot_roc(table.y, p, table.fold, out / "roc.png", table.classes)
    plot_confusion(
        metrics.modes[main].discrimination.confusion, out / "confusion.png", table.classes
    )
    plot_reliability(table.y, p_unc, p, out / "reliability.png", classes=table.classes)


def format_table(metrics: Metrics) -> str:
    """A plain-text summary of the patient-level figures (and slice-level, when there)."""

    def fmt(v):
        return "  n/a" if v is None else f"{v:.3f}"

    def figure(figures, name):
        return None if figures is None else figures.figure(name)

    target = metrics.target
    seg, noseg = metrics.mode(Mode.SEG), metrics.mode(Mode.NOSEG)
    lines = [f"{'metric':<20}{'patient':>9}  {'95% CI':<15}{'no seg':>8}{'slice':>8}"]
    for k in figure_names(target.classes):
        interval = seg.interval(k) if seg else None
        ci_text = f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""
        values = (figure(seg, k), figure(noseg, k), figure(metrics.slice, k))
        lines.append(
            f"{k:<20}{fmt(values[0]):>9}  {ci_text:<15}{fmt(values[1]):>8}{fmt(values[2]):>8}"
        )
    if seg is not None:
        lines += confusion_lines(seg.discrimination, target, metrics.n_patients)
    notes = [f.note for f in (seg, noseg) if f is not None] + list(metrics.not_measured.values())
    return "\n".join(lines + [f"note: {note}" for note in notes if note])


def confusion_lines(figures: Discrimination, target: Target, n_patients: int) -> list[str]:
    """The confusion counts and what the target is, as text."""
    if len(target.classes) == 2:
        (tn, fp), (fn, tp) = figures.confusion
        negative, positive = target.classes
        return [
            f"patients: {n_patients}  (TN {tn}, FP {fp}, FN {fn}, TP {tp})",
            f"target: {target.name}; positive class {positive}, negative {negative}",
        ]
    aucs = ", ".join(f"{c} {'n/a' if a is None else f'{a:.3f}'}"
                     for c, a in zip(target.classes, figures.auc_per_class))  # fmt: skip
    rows = [f"  true {c}: " + " ".join(f"{v:>4}" for v in row)
            for c, row in zip(target.classes, figures.confusion)]  # fmt: skip
    return [
        f"patients: {n_patients}; one-vs-rest AUC: {aucs}",
        f"confusion (rows true, columns predicted {', '.join(target.classes)}):",
        *rows,
        f"target: {target.name}; {len(target.classes)} classes, macro AUC over those present",
    ]
