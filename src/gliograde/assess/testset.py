"""An independent labelled cohort graded by a trained run, patient by patient, as ``predict``
grades: same reader, same preprocessing, same models, the same
:class:`~gliograde.infer.grader.Grader`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gliograde.assess.patients import PatientTable
from gliograde.core.console import say
from gliograde.core.errors import GliogradeError
from gliograde.infer.grader import Examined, Grader
from gliograde.infer.patient import Evidence
from gliograde.io.layouts import discover
from gliograde.run.calibration import Mode


@dataclass
class TestCohort:
    """``evaluate --test``: the cohort, its labels, and how to grade it."""

    __test__ = False  # not a pytest class

    data: Path
    labels: Path | None = None  # default: DATA/name_mapping.csv
    recalibrate: bool = False  # also fit a calibration on this cohort (saved beside the results)
    force: bool = False  # grade patients out of distribution too, as predict --force


def grade_cohort(grader: Grader, cohort: TestCohort) -> tuple[PatientTable, dict[str, str]]:
    """Every usable subject of the cohort graded on each grading mode the run can take.

    Returns:
        (table, skipped): the graded patients (fold 0), and each subject that could not be
        graded with its reason.

    Raises:
        GliogradeError: no subject of the cohort could be graded.
    """
    target = grader.run.target
    data = Path(cohort.data)
    if target.is_grade:
        found = discover(data, cohort.labels)
    else:  # the run's column, with the run's classes in the run's order
        classes = list(target.classes)
        found = discover(data, cohort.labels, target=target.name, classes=classes, of_run=True)
    for note in found.notes:
        say(f"note: {note}")
    subjects, labels, skipped = [], [], {}
    evidence: dict[Mode, list[Evidence]] = {}
    for subject in found.subjects:
        if subject.problems:  # its label, found without reading images
            skipped[subject.subject_id] = "; ".join(subject.problems)
            continue
        examined = grader.examine(subject, force=cohort.force)
        if not isinstance(examined, Examined):
            skipped[examined.subject] = examined.reason
            continue
        for mode, e in grader.evidence(examined.x, examined.tumor_pixels()).items():
            evidence.setdefault(mode, []).append(e)
        subjects.append(subject.subject_id)
        labels.append(target.index(subject.label))
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
    return PatientTable(subjects, folds, np.array(labels), evidence, target.classes), skipped
