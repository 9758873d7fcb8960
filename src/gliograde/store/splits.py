"""Patient-level cross-validation folds: stratified by grade, grouped by subject, seeded.

Splitting is done on subjects, never on slices: slices of one patient in both train and
validation would inflate every metric. The folds are written as nnU-Net's
``splits_final.json``: a list of ``{"train": [ids], "val": [ids]}``.
"""

from __future__ import annotations

import json
from pathlib import Path

from gliograde.core.errors import GliogradeError, UsageError
from gliograde.core.files import write_json
from gliograde.io.cohort import Subject
from gliograde.io.target import Target


def make_splits(
    subject_ids: list[str], labels: list[int], folds: int = 5, seed: int = 0
) -> tuple[list[dict[str, list[str]]], str | None]:
    """Stratified K-fold over subjects.

    When a class has fewer subjects than ``folds``, the number of folds is lowered to that count
    (and a note says so); with fewer than two subjects of a class no fold can be made.

    Returns:
        (splits, note): the folds, and a note when the number of folds was changed.
    """
    from sklearn.model_selection import StratifiedKFold

    if folds < 2:
        raise UsageError("--folds must be at least 2")
    present = set(labels)
    smallest = min(labels.count(c) for c in present) if len(present) > 1 else 0
    note = None
    if smallest < 2:
        return [], "no cross-validation folds: a class has fewer than 2 subjects"
    if smallest < folds:
        note = f"{folds} folds asked, {smallest} made: only {smallest} subjects of one class"
        folds = smallest
    order = sorted(range(len(subject_ids)), key=lambda i: subject_ids[i])
    ids = [subject_ids[i] for i in order]
    ys = [labels[i] for i in order]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = []
    for train, val in splitter.split(ids, ys):
        splits.append({"train": sorted(ids[i] for i in train), "val": sorted(ids[i] for i in val)})
    return splits, note


def load_splits(store: Path) -> list[dict[str, list[str]]]:
    """Read ``STORE/splits.json``."""
    path = Path(store) / "splits.json"
    if not path.is_file():
        raise GliogradeError(f"{path}: not found; run `gliograde prepare` to make the store")
    return json.loads(path.read_text())


def write_splits(store: Path, subjects: list[Subject], folds: int, seed: int, target: Target):
    """Write ``splits.json``, stratified by the target's classes; see :func:`make_splits`."""
    ids = [s.subject_id for s in subjects]
    labels = [target.index(s.label) for s in subjects]
    splits, note = make_splits(ids, labels, folds, seed)
    write_json(store / "splits.json", splits)
    return splits, note


def inner_split(
    ids: list[str], labels: list[int], fraction: float, seed: int
) -> tuple[list[str], list[str]] | None:
    """Split training patients into (fit, select), stratified by grade and seeded.

    ``select`` takes about ``fraction`` of each grade, at least one patient of each, so that a
    patient-level AUC can be computed on it; ``fit`` keeps at least one of each.

    Returns:
        (fit, select), or None when a grade has fewer than 2 patients (no inner split possible).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    fit, select = [], []
    for grade in sorted(set(labels)):
        group = sorted(i for i, label in zip(ids, labels) if label == grade)
        if len(group) < 2:
            return None
        n = min(len(group) - 1, max(1, round(fraction * len(group))))
        order = rng.permutation(len(group))
        select += [group[i] for i in order[:n]]
        fit += [group[i] for i in order[n:]]
    if len(set(labels)) < 2:
        return None
    return sorted(fit), sorted(select)
