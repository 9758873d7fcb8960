"""An independent labelled cohort graded by a trained run, patient by patient, as ``predict``
grades: same reader, same preprocessing, same models, same patient rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gliograde.assess.patients import PatientTable
from gliograde.core.console import say
from gliograde.core.devices import torch_device
from gliograde.core.errors import GliogradeError
from gliograde.infer.guard import out_of_distribution
from gliograde.infer.models import load_models
from gliograde.infer.subjects import cohort_evidence, subject_slices, tumor_pixels
from gliograde.io.layouts import discover
from gliograde.io.volumes import SubjectError
from gliograde.run import Run


def grade_cohort(
    run: Run, data: Path, labels: Path | None, device: str = "auto", force: bool = False
) -> tuple[PatientTable, dict[str, str]]:
    """Every usable subject of ``data`` graded on each path the run can take.

    Returns:
        (table, skipped): the graded patients (fold 0), and each subject that could not be
        graded with its reason (``force`` grades those out of distribution too, as
        ``predict --force``).

    Raises:
        GliogradeError: no subject of the cohort could be graded.
    """
    dev = torch_device(device)
    models = load_models(run.weights(), dev)
    target = run.target
    if target.is_grade:
        cohort = discover(data, labels)
    else:  # the run's column, with the run's classes in the run's order
        classes = list(target.classes)
        cohort = discover(data, labels, target=target.name, classes=classes, of_run=True)
    for note in cohort.notes:
        say(f"note: {note}")
    subjects, labels_, evidence, skipped = [], [], {}, {}
    for subject in cohort.subjects:
        if subject.problems:
            skipped[subject.subject_id] = "; ".join(subject.problems)
            continue
        try:
            slices, with_seg = subject_slices(subject, run)
        except SubjectError as err:
            skipped[subject.subject_id] = "; ".join(err.problems)
            continue
        except GliogradeError as err:  # e.g. no seg for a run that cannot grade without one
            skipped[subject.subject_id] = str(err)
            continue
        reasons = out_of_distribution(slices.profile, run.manifest.get("profile"), run.resized)
        if reasons and not force:  # refused as predict refuses it
            skipped[subject.subject_id] = "out of distribution: " + "; ".join(reasons)
            continue
        x = torch.from_numpy(slices.images.astype(np.float32))
        found = cohort_evidence(models, x, tumor_pixels(slices) if with_seg else None, run, dev)
        for path, e in found.items():
            evidence.setdefault(path, []).append(e)
        subjects.append(subject.subject_id)
        labels_.append(target.index(subject.grade))
    for sid, reason in skipped.items():
        say(f"skipped {sid}: {reason}")
    if not subjects:
        raise GliogradeError(f"{data}: no subject could be graded (see the lines above)")
    if len({len(v) for v in evidence.values()}) > 1:
        raise GliogradeError(
            f"{data}: some subjects have a segmentation and some do not; grade them as two "
            "cohorts (or pass a cohort whose subjects all have one)"
        )
    folds = np.zeros(len(subjects), dtype=int)
    table = PatientTable(subjects, folds, np.array(labels_), evidence, classes=target.classes)
    return table, skipped
