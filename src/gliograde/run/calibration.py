"""``calibration.json`` as typed records: one :class:`CalibrationRule` per grading mode.

A grading mode is how a patient's slices are weighed: ``seg`` (its segmentation's tumour
slices) or ``noseg`` (every brain slice, by the model's own P(tumour)). Each mode has its own
rule, fitted by evaluation on held-out patients: a temperature and a bias for the
probabilities, whether they lowered the held-out Brier score (``applied``), and the uncertainty
above which a patient is flagged. The rule is applied by
:func:`gliograde.infer.patient.patient_result`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from gliograde.core.errors import GliogradeError
from gliograde.core.files import write_json
from gliograde.io.target import Target


class Mode(str, Enum):
    """A grading mode: with the segmentation's tumour slices (``seg``), or every slice weighed
    by the model's P(tumour) (``noseg``). A ``str``: its value is how files spell it."""

    SEG = "seg"
    NOSEG = "noseg"

    @property
    def metrics_key(self) -> str:
        """Where ``metrics.json`` keeps the mode's figures: ``patient`` or ``patient_noseg``."""
        return "patient" if self is Mode.SEG else "patient_noseg"

    @property
    def suffix(self) -> str:
        """What a column's name gains in this mode: nothing, or ``_noseg``."""
        return "" if self is Mode.SEG else "_noseg"


MODES = tuple(Mode)
"""The grading modes, in the order files list them."""


@dataclass(frozen=True)
class CalibrationRule:
    """How one mode's probabilities are calibrated, and when a patient is flagged.

    Two classes: ``sigmoid(logit(p) / temperature + bias)``; more: ``softmax(log p /
    temperature)`` (no bias). ``threshold`` None: no patient is flagged.
    """

    temperature: float = 1.0
    bias: float = 0.0
    applied: bool = False
    threshold: float | None = None

    @classmethod
    def from_dict(cls, data) -> CalibrationRule:
        """The rule of a JSON object.

        Raises:
            ValueError: not a rule (a positive temperature, a bias, a threshold or None).
        """
        numbers = (int, float)
        ok = (
            isinstance(data, dict)
            and isinstance(data.get("temperature"), numbers)
            and data["temperature"] > 0
            and isinstance(data.get("bias"), numbers)
            and (data.get("threshold") is None or isinstance(data["threshold"], numbers))
        )
        if not ok:
            raise ValueError("not a calibration rule")
        threshold = data.get("threshold")
        return cls(
            float(data["temperature"]),
            float(data["bias"]),
            bool(data.get("applied", False)),
            None if threshold is None else float(threshold),
        )

    def to_dict(self) -> dict:
        return {
            "temperature": self.temperature,
            "bias": self.bias,
            "applied": self.applied,
            "threshold": self.threshold,
        }


IDENTITY = CalibrationRule()
"""No calibration and no flag."""


@dataclass(frozen=True)
class Calibration:
    """A run's (or a cohort's ``--recalibrate``) rules, for the target they were fitted for."""

    rules: dict[Mode, CalibrationRule]
    target: Target
    note: str | None = None
    fitted_on: str | None = None  # --recalibrate: the cohort
    run: str | None = None  # --recalibrate: the run it recalibrates
    extra: dict = field(default_factory=dict)  # keys a later version may add, kept as they are

    def rule(self, mode: Mode) -> CalibrationRule:
        """The rule of ``mode`` (``seg`` or ``noseg``); the identity when none was fitted."""
        return self.rules.get(mode, IDENTITY)

    @classmethod
    def uncalibrated(cls, target: Target, note: str) -> Calibration:
        return cls({m: IDENTITY for m in MODES}, target, note=note)

    @classmethod
    def from_dict(cls, data, where: Path | str) -> Calibration:
        """The record of a ``calibration.json`` object (one without ``target`` was fitted for
        the grade).

        Raises:
            GliogradeError: not a calibration (no valid ``seg`` or ``noseg`` rule).
        """
        if not isinstance(data, dict) or not any(m.value in data for m in MODES):
            raise GliogradeError(f"{where}: not a gliograde calibration.json (no 'seg' or 'noseg')")
        rules = {}
        for mode in MODES:
            if mode.value in data:
                try:
                    rules[mode] = CalibrationRule.from_dict(data[mode.value])
                except ValueError:
                    raise GliogradeError(
                        f"{where}: damaged ({mode.value!r} is not a calibration); write it again: "
                        "`gliograde evaluate RUN` (a run's), `evaluate --test --recalibrate` "
                        "(a cohort's)"
                    ) from None
        known = (*(m.value for m in MODES), "target", "note", "fitted_on", "run")
        return cls(
            rules,
            Target.of_dict(data.get("target")),
            note=data.get("note"),
            fitted_on=data.get("fitted_on"),
            run=data.get("run"),
            extra={k: v for k, v in data.items() if k not in known},
        )

    def to_dict(self) -> dict:
        out = {Mode(m).value: r.to_dict() for m, r in self.rules.items()}
        out |= {"target": self.target.to_dict()}
        optional = {"note": self.note, "fitted_on": self.fitted_on, "run": self.run}
        return out | {k: v for k, v in optional.items() if v is not None} | self.extra

    def write(self, path: Path) -> None:
        write_json(Path(path), self.to_dict())


def read_calibration(path: Path) -> Calibration:
    """A ``calibration.json`` file, such as one ``evaluate --test --recalibrate`` wrote.

    Raises:
        GliogradeError: unreadable, not JSON, or not a calibration.
    """
    import json

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise GliogradeError(f"{path}: not a readable calibration.json ({err})") from None
    return Calibration.from_dict(data, path)
