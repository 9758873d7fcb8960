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

from gliograde.assess.modelcard import write_model_card
from gliograde.assess.patients import PatientTable, read_patient_table
from gliograde.assess.scoring import score_crossfit, score_fixed
from gliograde.assess.testset import TestCohort
from gliograde.core.errors import UsageError
from gliograde.core.files import read_json, write_json
from gliograde.run import Run
from gliograde.run.calibration import Calibration
from gliograde.store.write import is_synthetic_source

PROTOCOL = (
    "patient-level cross-validation; each fold's checkpoint chosen on an inner split of its "
    "training patients (or the last epoch), its validation patients graded once afterwards by "
    "the same rule as predict; calibration and flag thresholds cross-fitted (each fold's "
    "patients by pairs and thresholds fitted on the other folds)"
)


def evaluate_table(
    out: Path, table: PatientTable, run: Run, keep: tuple = (), inference: dict | None = None
) -> dict:
    """Score a cross-validated run's out-of-fold patients; write every output into ``out``.

    ``keep``: sections of the old ``metrics.json`` still true of these models (``attention``
    and ``inference`` when only the figures are recomputed). ``inference``: the precision and
    device the models ran with.
    """
    metrics = {"protocol": PROTOCOL, "n_patients": len(table.subject)}
    metrics["target"] = run.target.to_dict()  # sensitivity etc. are about classes[1]
    if inference is not None:
        metrics["inference"] = inference
    rules = {}
    for mode in table.evidence:
        figures, rules[mode] = score_crossfit(table, mode)
        metrics[metrics_key(mode)] = figures
    if "noseg" not in table.evidence:
        metrics["patient_noseg"] = {
            "note": "not measured: the run was trained on a --slices "
            "tumor store and cannot grade without a segmentation"
        }
    slices = Path(out) / "predictions_slices.csv"
    if slices.is_file():
        from gliograde.assess.slices import SliceTable, slice_figures

        table_of_slices = SliceTable.read_csv(slices, run.target.classes)
        metrics["slice"] = slice_figures(table_of_slices, run.min_tumor)
    write_outputs(Path(out), table, metrics, keep)
    Calibration(rules, run.target).write(Path(out) / "calibration.json")
    write_model_card(run, Path(out))
    return metrics


def evaluate_run(run_path: Path) -> dict:
    """Recompute a run's cross-validation figures from its saved patient evidence, holding the
    run's lock while it rewrites them (as ``train`` does)."""
    from gliograde.core.lock import folder_lock

    run = Run.open(run_path)
    with folder_lock(run.path, "gliograde evaluate"):
        table = read_patient_table(run.path / "predictions_patients.csv", run.target.classes)
        return evaluate_table(run.path, table, run, keep=("attention", "inference"))


def evaluate_test(run_path: Path, cohort: TestCohort, out: Path, device: str = "auto") -> dict:
    """Grade an independent labelled cohort with the run's models, as ``predict`` would.

    Returns:
        The metrics (also ``out/metrics.json``), next to ``predictions_patients.csv`` and the
        plots in ``out``. With ``out`` inside the run's folder, the run's lock is held.
    """
    from gliograde.core.lock import lock_if_writing_into

    run = Run.open(run_path)
    if (Path(out) / "config.json").is_file():
        raise UsageError(f"--out {out}: that is a run folder; give a new folder for the results")
    with lock_if_writing_into(run.path, out, "gliograde evaluate"):
        return graded_test(run, cohort, Path(out), device)


def graded_test(run: Run, cohort: TestCohort, out: Path, device: str) -> dict:
    """:func:`evaluate_test`'s work (the run's lock held when ``out`` is inside the run)."""
    from gliograde.assess.testset import grade_cohort
    from gliograde.core.devices import torch_device
    from gliograde.infer.grader import Grader
    from gliograde.infer.models import inference_record

    grader = Grader.open(run, device=device)
    table, skipped = grade_cohort(grader, cohort)
    Path(out).mkdir(parents=True, exist_ok=True)
    metrics: dict = {
        "protocol": "independent cohort, graded as predict grades it",
        "skipped": skipped,
    }
    metrics["synthetic"] = is_synthetic_source(Path(cohort.data)) or any(
        s.startswith("Synth_") for s in table.subject
    )
    metrics["n_patients"] = len(table.subject)
    metrics["target"] = run.target.to_dict()
    metrics["inference"] = inference_record(torch_device(device))
    for mode in table.evidence:
        metrics[metrics_key(mode)] = score_fixed(table, mode, grader.calibration.rule(mode))
    if cohort.recalibrate:
        metrics["recalibrated"] = recalibrated(table, run, Path(out))
    write_outputs(Path(out), table, metrics)
    write_model_card(run, Path(out))
    return metrics


def metrics_key(mode: str) -> str:
    """Where ``metrics.json`` keeps a grading mode's figures: ``patient`` or ``patient_noseg``."""
    return "patient" if mode == "seg" else "patient_noseg"


def recalibrated(table: PatientTable, run: Run, out: Path) -> dict:
    """Calibration fitted on this cohort: saved as ``out/calibration.json`` (the run's stays),
    with figures cross-fitted over 5 stratified folds of this cohort."""
    from gliograde.store.splits import make_splits

    ids = list(table.subject)
    splits, _ = make_splits(ids, table.y.tolist(), folds=5, seed=0)
    fold_of = {s: k for k, split in enumerate(splits) for s in split["val"]}
    folds = np.array([fold_of.get(s, 0) for s in ids])
    refit = PatientTable(ids, folds, table.y, table.evidence, table.classes)
    figures, rules = {}, {}
    for mode in refit.evidence:
        figures[mode], rules[mode] = score_crossfit(refit, mode)
    fitted = Calibration(rules, run.target, fitted_on=str(out), run=str(run.path))
    fitted.write(out / "calibration.json")
    return figures


def write_outputs(out: Path, table: PatientTable, metrics: dict, keep: tuple = ()) -> None:
    """``metrics.json`` (with the sections named in ``keep`` carried over from the old one),
    ``predictions_patients.csv``, ROC, confusion and reliability plots."""
    from gliograde.assess.plots import plot_confusion, plot_reliability, plot_roc

    out.mkdir(parents=True, exist_ok=True)
    kept = {k: v for k, v in read_json(out / "metrics.json").items() if k in keep}
    write_json(out / "metrics.json", kept | metrics)
    table.write_csv(out / "predictions_patients.csv")
    main = "seg" if "seg" in table.results else next(iter(table.results))
    p = table.p_calibrated(main)
    p_unc = table.p_uncalibrated(main)
    plot_roc(table.y, p, table.fold, out / "roc.png", table.classes)
    confusion = metrics[metrics_key(main)]["confusion"]
    plot_confusion(confusion, out / "confusion.png", table.classes)
    plot_reliability(table.y, p_unc, p, out / "reliability.png", classes=table.classes)


def format_table(metrics: dict) -> str:
    """A plain-text summary of the patient-level figures (and slice-level, when there)."""
    from gliograde.io.target import Target

    def fmt(v):
        return "  n/a" if v is None else f"{v:.3f}"

    target = Target.of_dict(metrics.get("target"))
    multi = len(target.classes) > 2
    seg, noseg = metrics.get("patient", {}), metrics.get("patient_noseg", {})
    ci = seg.get("ci95", {})
    names = ("auc", "balanced_accuracy", "accuracy") if multi else METRIC_NAMES
    lines = [f"{'metric':<20}{'patient':>9}  {'95% CI':<15}{'no seg':>8}{'slice':>8}"]
    for k in names:
        interval = ci.get(k)
        ci_text = f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""
        slice_value = metrics.get("slice", {}).get(k)
        lines.append(
            f"{k:<20}{fmt(seg.get(k)):>9}  {ci_text:<15}{fmt(noseg.get(k)):>8}{fmt(slice_value):>8}"
        )
    if "confusion" in seg:
        lines += confusion_lines(seg, target, metrics["n_patients"])
    for note in (seg.get("note"), noseg.get("note")):
        if note:
            lines.append(f"note: {note}")
    return "\n".join(lines)


METRIC_NAMES = ("auc", "balanced_accuracy", "sensitivity", "specificity", "f1")


def confusion_lines(seg: dict, target, n_patients: int) -> list[str]:
    """The confusion counts and what the target is, as text."""
    if len(target.classes) == 2:
        (tn, fp), (fn, tp) = seg["confusion"]
        negative, positive = target.classes
        return [
            f"patients: {n_patients}  (TN {tn}, FP {fp}, FN {fn}, TP {tp})",
            f"target: {target.name}; positive class {positive}, negative {negative}",
        ]
    aucs = ", ".join(f"{c} {'n/a' if a is None else f'{a:.3f}'}"
                     for c, a in zip(target.classes, seg["auc_per_class"]))  # fmt: skip
    rows = [f"  true {c}: " + " ".join(f"{v:>4}" for v in row)
            for c, row in zip(target.classes, seg["confusion"])]  # fmt: skip
    return [
        f"patients: {n_patients}; one-vs-rest AUC: {aucs}",
        f"confusion (rows true, columns predicted {', '.join(target.classes)}):",
        *rows,
        f"target: {target.name}; {len(target.classes)} classes, macro AUC over those present",
    ]
