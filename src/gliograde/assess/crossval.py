"""Out-of-fold evaluation of a cross-validated run: each fold's model grades its own validation
patients, once, after training, through the one patient rule (:mod:`gliograde.infer.patient`).

The slices are read from the store, which holds exactly what ``predict`` would preprocess from
the patients' files (same function, same recorded options), so each out-of-fold answer is the
answer ``predict RUN PATIENT --fold K`` gives (a test checks it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gliograde.assess.patients import PatientTable
from gliograde.assess.slices import SliceTable
from gliograde.core.console import say
from gliograde.infer.models import load_models
from gliograde.infer.subjects import cohort_evidence
from gliograde.run import Run
from gliograde.store.read import SliceStore


def predict_out_of_fold(run: Run, store: SliceStore, device: str = "cpu") -> PatientTable:
    """Every validation patient of every trained fold, graded by that fold's model.

    Also writes ``RUN/predictions_slices.csv`` (each slice's P(HGG) and P(tumour)).
    """
    subjects, folds, labels, evidence, slices = [], [], [], {}, []
    for k in run.folds():
        models = load_models(run.weights(k), device)
        for subject in run.fold_split(k)["val"]:
            x, tumor_px, rows = stored_slices(store, subject)
            found = cohort_evidence(models, x, tumor_px, run, device)
            for path, e in found.items():
                evidence.setdefault(path, []).append(e)
            label = int(store.index.label[rows[0]])
            subjects.append(subject)
            folds.append(k)
            labels.append(label)
            slices.append(SliceTable.of_patient(k, subject, label, store.index, rows, found))
        say(f"fold {k}: {len(run.fold_split(k)['val'])} validation patients graded")
    SliceTable.concat(slices).write_csv(run.path / "predictions_slices.csv", run.target.classes)
    classes = run.target.classes
    return PatientTable(subjects, np.array(folds), np.array(labels), evidence, classes=classes)


def stored_slices(store: SliceStore, subject: str) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """A patient's stored slices ``[n, 4, H, W]``, their tumour pixels, and their index rows."""
    rows = store.rows([subject])
    rows = rows[np.argsort(store.index.row[rows], kind="stable")]
    images = store.read_subject(subject, "images")
    x = torch.from_numpy(images.astype(np.float32))
    return x, store.index.tumor[rows], rows


def evaluate_cross_validation(run_path: Path, device: str = "cpu") -> dict:
    """Grade the out-of-fold patients and write metrics, predictions, calibration and plots."""
    from gliograde.assess.evaluate import evaluate_table
    from gliograde.infer.models import inference_record

    run = Run.open(run_path)
    store = SliceStore(Path(run.config["store"]))
    inference = inference_record(device)
    table = predict_out_of_fold(run, store, device)
    return evaluate_table(run.path, table, run, inference=inference)


def train_and_evaluate(config) -> dict | None:
    """``gliograde train``: train the folds, then grade each fold's held-out patients once.

    Args:
        config: a :class:`gliograde.train.config.TrainConfig`.

    Returns:
        The out-of-fold metrics; None for ``--full`` and on DDP ranks other than 0.
    """
    from gliograde.assess.modelcard import write_model_card
    from gliograde.core.devices import torch_device
    from gliograde.train.fit import is_global_zero
    from gliograde.train.folds import train_folds

    train_folds(config)
    if not is_global_zero():
        return None
    if config.full:  # no held-out patient: the card says so
        write_model_card(Run.open(Path(config.out)))
        return None
    return evaluate_cross_validation(Path(config.out), torch_device(config.device))
