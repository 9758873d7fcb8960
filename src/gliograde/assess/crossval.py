"""Out-of-fold evaluation of a cross-validated run: each fold's model grades its own validation
patients, once, after training, through the :class:`~gliograde.infer.grader.Grader`.

The slices are read from the store, which holds exactly what ``predict`` would preprocess from
the patients' files (same function, same recorded options), so each out-of-fold answer is the
answer ``predict RUN PATIENT --fold K`` gives.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from gliograde.assess.patients import PatientTable
from gliograde.assess.record import Metrics
from gliograde.assess.slices import SliceTable
from gliograde.core.console import say
from gliograde.core.errors import GliogradeError
from gliograde.infer.grader import Grader
from gliograde.infer.patient import Evidence
from gliograde.run import Run
from gliograde.run.calibration import Mode
from gliograde.run.cost import record_grading
from gliograde.store.read import SliceStore


def predict_out_of_fold(
    run: Run, store: SliceStore, device: str = "cpu", precision: str = "auto"
) -> PatientTable:
    """Every validation patient of every trained fold, graded by that fold's model (in
    ``precision``: ``auto``, ``fp32`` or ``bf16``); each fold's grading time per patient goes
    to its ``cost.json``.

    Also writes ``RUN/predictions_slices.csv`` (each slice's class probability and P(tumour)).
    """
    subjects, folds, labels, slices = [], [], [], []
    evidence: dict[Mode, list[Evidence]] = {}
    for k, grader, held_out in Grader.per_fold(run, device, precision):
        grading = 0.0
        for subject in held_out:
            x, tumor_px, rows = stored_slices(store, subject)
            start = time.perf_counter()
            found = grader.evidence(x, tumor_px)
            grading += time.perf_counter() - start
            check_finite(found, run.fold_dir(k), subject)
            for mode, e in found.items():
                evidence.setdefault(mode, []).append(e)
            label = int(store.index.label[rows[0]])
            subjects.append(subject)
            folds.append(k)
            labels.append(label)
            slices.append(SliceTable.of_patient(k, subject, label, store.index, rows, found))
        record_grading(run.fold_dir(k), grading / max(len(held_out), 1))
        say(f"fold {k}: {len(held_out)} validation patients graded")
    classes = run.target.classes
    SliceTable.concat(slices).write_csv(run.path / "predictions_slices.csv", classes)
    return PatientTable(subjects, np.array(folds), np.array(labels), evidence, classes)


def check_finite(found: dict[Mode, Evidence], fold: Path, subject: str) -> None:
    """Refuse a fold whose model answers NaN (its training diverged) before any figure is made.

    Raises:
        GliogradeError: a patient's probabilities are not finite.
    """
    if all(np.isfinite(e.p).all() for e in found.values()):
        return
    raise GliogradeError(
        f"{fold}: its model answers NaN for {subject}, so its training diverged; train the run "
        "again with --precision fp32 or a lower --lr (a new --out)"
    )


def stored_slices(store: SliceStore, subject: str) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """A patient's stored slices ``[n, 4, H, W]``, their tumour pixels, and their index rows."""
    rows = store.rows([subject])
    rows = rows[np.argsort(store.index.row[rows], kind="stable")]
    images = store.read_subject(subject, "images")
    x = torch.from_numpy(images.astype(np.float32))
    return x, store.index.tumor[rows], rows


def evaluate_cross_validation(
    run_path: Path, device: str = "cpu", precision: str = "auto"
) -> Metrics:
    """Grade the out-of-fold patients (in ``precision``) and write metrics, predictions,
    calibration and plots."""
    from gliograde.assess.evaluate import evaluate_table
    from gliograde.infer.models import inference_record

    run = Run.open(run_path)
    store = SliceStore(run.store_path)
    inference = inference_record(device, precision)
    table = predict_out_of_fold(run, store, device, precision)
    return evaluate_table(run.path, table, run, inference=inference)
