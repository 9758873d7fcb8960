"""What the readers find: a subject (its files and label) and a cohort (subjects and layout)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gliograde.io.target import Target

SEG = "seg"
"""The role of a segmentation file beside the four modalities."""


@dataclass
class Subject:
    """One patient: where its files are and what its label is.

    Attributes:
        subject_id: the id the layout gives (the folder name for BraTS layouts).
        label: the subject's class of the cohort's target ("HGG" or "LGG" for the grade), or
            None when unknown.
        files: role ("flair", "t1ce", "t1", "t2", "seg") → path. "seg" may be absent.
        folder: the subject's folder, when it has one.
        problems: what is wrong with the subject, one line each, found without reading images.
        warnings: things worth telling that do not make the subject unusable.
        channels: role → volume index, for roles whose file holds several volumes (the
            Medical Segmentation Decathlon's 4D images); other roles' files are 3D.
        seg_labels: the segmentation file's label → BraTS's (1 necrotic/non-enhancing core,
            2 oedema, 4 enhancing), when the data declares other codes (a ``dataset.json``).
    """

    subject_id: str
    label: str | None
    files: dict[str, Path]
    folder: Path | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    channels: dict[str, int] = field(default_factory=dict)
    seg_labels: dict[int, int] | None = None


@dataclass
class Cohort:
    """Subjects found in a data folder, and how they were found."""

    root: Path
    layout: str
    subjects: list[Subject]
    target: Target
    notes: list[str] = field(default_factory=list)


def sort_subjects(subjects: list[Subject]) -> list[Subject]:
    """Subjects in the order of their ids (every listing is deterministic)."""
    return sorted(subjects, key=lambda s: s.subject_id)
