"""What a run learns to predict: the grade (LGG/HGG, the default) or any label of two or more
classes from a CSV column (``prepare --target COLUMN``), such as IDH mutant/wildtype or WHO
grade 2/3/4.

Classes are in sorted order unless ``--classes`` sets it. With two, class index 1 is the class
whose probability is the score (``p``): HGG for the grade; metrics such as sensitivity are
about that class. With more, every class has its probability and its one-vs-rest figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gliograde import GRADES
from gliograde.core.errors import DataError


@dataclass(frozen=True)
class Target:
    """A target's name (``grade`` or the CSV column's), and its classes in index order."""

    name: str
    classes: tuple[str, ...]

    @property
    def is_grade(self) -> bool:
        return self.name == "grade"

    @property
    def positive(self) -> str:
        """The class whose probability is the score (index 1)."""
        return self.classes[1]

    def index(self, value: str | None) -> int:
        """A subject's class index; one clear line for a value outside the classes (None: a
        subject without a value is in none)."""
        if value not in self.classes:
            raise DataError(
                f"{value!r} is not a class of the target {self.name} ({', '.join(self.classes)})"
            )
        return self.classes.index(value)

    def to_dict(self) -> dict:
        return {"name": self.name, "classes": list(self.classes)}

    @classmethod
    def of_dict(cls, data: dict | None) -> Target:
        """The target a file records (``{"name", "classes"}``); a file that records none
        is the grade's."""
        return GRADE if data is None else cls(data["name"], tuple(data["classes"]))


GRADE = Target("grade", GRADES)
"""The default target: the grade, LGG as class 0 and HGG as class 1."""

MAX_CLASSES = 10
"""More classes than this in a column is more likely an id or a measurement than a label."""


def target_of_values(
    name: str, values: list[str], order: Sequence[str] | None = None, of_run: bool = False
) -> Target:
    """The target of a column: its classes in sorted order, or ``order`` (``--classes``,
    which must name each value once; with ``of_run``, a run's classes, of which a test cohort
    may hold only some).

    Raises:
        DataError: fewer than two classes, more than :data:`MAX_CLASSES`, or values and
            ``order`` that do not match.
    """
    found = sorted(set(values))
    if not found:
        raise DataError(f"target {name}: no subject has a value; check the id column")
    if order:
        unknown = sorted(set(found) - set(order))
        if of_run and unknown:
            raise DataError(
                f"{name}: values {', '.join(unknown)} are not classes of the run "
                f"({', '.join(order)}); grade only subjects of its classes"
            )
        if not of_run and (unknown or sorted(order) != found):
            raise DataError(
                f"--classes {','.join(order)}: the column {name} has the values "
                f"{', '.join(found)}; name each once"
            )
        found = list(order)
    if "tumor" in found:  # p_tumor is the slice table's P(tumour)
        raise DataError(f"target {name}: a class named 'tumor' clashes with P(tumour); rename it")
    if not 2 <= len(found) <= MAX_CLASSES:
        raise DataError(
            f"target {name}: {len(found)} classes ({', '.join(found[:6])}); gliograde trains "
            f"targets of 2 to {MAX_CLASSES} classes: is this column a label?"
        )
    return Target(name, tuple(found))
