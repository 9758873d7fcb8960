"""``gliograde check``: find every subject of a data folder and say what is wrong with each."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from gliograde.core.parallel import default_workers, map_with_progress
from gliograde.io.cohort import SEG, Cohort, Subject
from gliograde.io.layouts import discover
from gliograde.io.volumes import SubjectError, load_subject


@dataclass
class SubjectReport:
    """What ``check`` found for one subject."""

    subject_id: str
    grade: str | None
    has_seg: bool
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return not self.problems


@dataclass
class CheckReport:
    """The result of checking a cohort."""

    root: str
    layout: str
    subjects: list[SubjectReport]
    notes: list[str] = field(default_factory=list)

    @property
    def usable(self) -> list[SubjectReport]:
        return [s for s in self.subjects if s.usable]

    @property
    def ok(self) -> bool:
        return all(s.usable for s in self.subjects)

    def summary(self) -> str:
        n_bad = len(self.subjects) - len(self.usable)
        grades = [s.grade for s in self.usable]
        counts = f" ({grades.count('HGG')} HGG, {grades.count('LGG')} LGG)" if any(grades) else ""
        return (
            f"{len(self.subjects)} subjects found ({self.layout} layout): {len(self.usable)} "
            f"usable{counts}, {n_bad} with problems"
        )

    def lines(self) -> list[str]:
        """One line per problem and per warning, then the notes and the summary."""
        out = []
        for s in self.subjects:
            out += [f"ERROR   {s.subject_id}: {p}" for p in s.problems]
            out += [f"WARNING {s.subject_id}: {w}" for w in s.warnings]
        out += [f"NOTE    {n}" for n in self.notes]
        out.append(self.summary())
        return out

    def to_dict(self) -> dict:
        return {
            "root": self.root,
            "layout": self.layout,
            "ok": self.ok,
            "n_subjects": len(self.subjects),
            "n_usable": len(self.usable),
            "notes": self.notes,
            "subjects": [asdict(s) | {"usable": s.usable} for s in self.subjects],
        }


def check_subject(subject: Subject) -> SubjectReport:
    """Read and validate one subject's files (its segmentation too, when it has one)."""
    report = SubjectReport(subject.subject_id, subject.label, SEG in subject.files)
    try:
        volumes = load_subject(subject, use_seg=True)
        report.warnings += volumes.warnings
    except SubjectError as err:
        report.problems += err.problems
    if not report.has_seg and not report.problems:
        report.warnings.append("no segmentation: it can be graded, not used for training")
    return report


def check_cohort(cohort: Cohort, workers: int | None = None, quiet: bool = False) -> CheckReport:
    """Check every subject of a cohort found by :func:`gliograde.io.layouts.discover`."""
    workers = default_workers() if workers is None else workers
    reports = list(map_with_progress(check_subject, cohort.subjects, workers, "check", quiet=quiet))
    return CheckReport(str(cohort.root), cohort.layout, reports, list(cohort.notes))


def check(
    data: Path, labels: Path | None = None, workers: int | None = None, need_labels: bool = True
) -> CheckReport:
    """Find the subjects under ``data`` and check each. See :func:`check_cohort`.

    With ``need_labels=False`` (data meant only for prediction), no grade is needed.
    """
    return check_cohort(discover(Path(data), labels, need_labels), workers)
