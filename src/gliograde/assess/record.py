"""``metrics.json`` as a typed record: :class:`Metrics`, written by ``evaluate`` and read by the
report, the model card and the command line through its attributes, never by key.

The file's form is documented (``docs/reference/formats.md``) and stable: each record's
``to_dict`` writes the keys the file has always had, and ``from_dict`` reads them back
(``to_dict(from_dict(d)) == d`` for every file gliograde writes; tested on the golden runs).
Keys a later version may add are kept as they are (``extra``).

One list of figure names serves every reader: :func:`figure_names`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gliograde.assess.metrics import POSITIVE_VIEW, Discrimination
from gliograde.core.errors import GliogradeError
from gliograde.core.files import write_json
from gliograde.io.target import Target
from gliograde.run.calibration import MODES, Mode


def figure_names(classes: tuple[str, ...]) -> tuple[str, ...]:
    """The discrimination figures reported for a target, in the order every reader shows them:
    the positive view (sensitivity, specificity, F1) for two classes; accuracy for more."""
    tail = POSITIVE_VIEW if len(classes) == 2 else ("accuracy",)
    return ("auc", "balanced_accuracy", *tail)


def figure_label(name: str, classes: tuple[str, ...]) -> str:
    """A figure's name as a reader sees it (``sensitivity (HGG recall)``)."""
    labels = {
        "auc": "ROC AUC" if len(classes) == 2 else "ROC AUC (macro, one vs rest)",
        "balanced_accuracy": "balanced accuracy",
        "sensitivity": f"sensitivity ({classes[-1]} recall)",
        "specificity": f"specificity ({classes[0]} recall)",
        "f1": "F1",
        "accuracy": "accuracy",
    }
    return labels[name]


def discrimination_of(data: dict) -> Discrimination:
    """The discrimination figures of a section of the file."""
    k = len(data["confusion"])
    per_class = data["auc_per_class"] if "auc_per_class" in data else [data["auc"]] * k
    return Discrimination(
        data["auc"], per_class, data["balanced_accuracy"], data["accuracy"], data["confusion"],
        data["n"],
    )  # fmt: skip


@dataclass(frozen=True)
class Flags:
    """How many patients are flagged, and the accuracy on the confident and the flagged ones;
    in cross-validation, also the threshold saved for ``predict``."""

    share_flagged: float
    coverage: float
    n_flagged: int
    n_confident: int
    accuracy_confident: float | None
    accuracy_flagged: float | None
    accuracy_all: float | None
    threshold_saved: float | None = None
    cross_validated: bool = False  # the file holds threshold_saved

    @classmethod
    def from_dict(cls, data: dict) -> Flags:
        """The record of its object in ``metrics.json``."""
        known = {k: v for k, v in data.items() if k != "threshold_saved"}
        return cls(**known, threshold_saved=data.get("threshold_saved"),
                   cross_validated="threshold_saved" in data)  # fmt: skip

    def to_dict(self) -> dict:
        """Its object in ``metrics.json``."""
        out = asdict(self)
        del out["cross_validated"]
        if not self.cross_validated:
            del out["threshold_saved"]
        return out


CROSSFIT = ("fitted_temperature", "fitted_bias", "ece_crossfit", "ece_temperature_only_crossfit")
CROSSFIT_TAIL = ("brier_crossfit", "folds_calibrated")


@dataclass(frozen=True)
class CalibrationFigures:
    """The calibration applied and its figures before and after; cross-validation adds what
    was fitted and the cross-fitted figures (``crossfit``, by their names in the file)."""

    temperature: float
    bias: float
    applied: bool
    ece_before: float
    ece_after: float
    brier_before: float
    brier_after: float
    crossfit: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> CalibrationFigures:
        """The record of its object in ``metrics.json``."""
        crossfit = {k: data[k] for k in (*CROSSFIT, *CROSSFIT_TAIL) if k in data}
        plain = {k: v for k, v in data.items() if k not in crossfit}
        return cls(**plain, crossfit=crossfit)

    @property
    def fitted_temperature(self) -> float:
        return self.crossfit.get("fitted_temperature", self.temperature)

    @property
    def fitted_bias(self) -> float:
        return self.crossfit.get("fitted_bias", self.bias)

    @property
    def folds_calibrated(self) -> int | None:
        """Cross-validation: in how many folds the calibration was applied."""
        return self.crossfit.get("folds_calibrated")

    def to_dict(self) -> dict:
        """Its object in ``metrics.json``."""
        out = {k: v for k, v in asdict(self).items() if k != "crossfit"}
        head = {k: out.pop(k) for k in ("temperature", "bias", "applied")}
        before = {k: self.crossfit[k] for k in CROSSFIT[:2] if k in self.crossfit}
        middle = {k: self.crossfit[k] for k in CROSSFIT[2:] if k in self.crossfit}
        tail = {k: self.crossfit[k] for k in CROSSFIT_TAIL if k in self.crossfit}
        eces = {k: out.pop(k) for k in ("ece_before", "ece_after")}
        return head | before | eces | middle | out | tail


@dataclass(frozen=True)
class ModeFigures:
    """One grading mode's figures: discrimination at the calibrated answers with bootstrap
    intervals, per fold, the calibration and the flag."""

    discrimination: Discrimination
    auc_uncalibrated: float | None
    ci95: dict[str, list[float] | None]
    per_fold: list[tuple[int, Discrimination]]
    uncertainty: Flags
    calibration: CalibrationFigures
    note: str | None = None  # why a figure is missing (one class only)

    def figure(self, name: str) -> float | None:
        """A discrimination figure by its name (:func:`figure_names`)."""
        return self.discrimination.figure(name)

    def interval(self, name: str) -> list[float] | None:
        """Its 95 % bootstrap interval, when there is one."""
        return self.ci95.get(name)

    @classmethod
    def from_dict(cls, data: dict) -> ModeFigures:
        """The record of its object in ``metrics.json``."""
        folds = [(int(f["fold"]), discrimination_of(f)) for f in data["per_fold"]]
        return cls(
            discrimination_of(data), data["auc_uncalibrated"], data["ci95"], folds,
            Flags.from_dict(data["uncertainty"]), CalibrationFigures.from_dict(data["calibration"]),
            data.get("note"),
        )  # fmt: skip

    def to_dict(self) -> dict:
        """Its object in ``metrics.json``."""
        out = self.discrimination.to_dict() | {"auc_uncalibrated": self.auc_uncalibrated}
        out |= {"ci95": self.ci95, "auc_ci": self.ci95.get("auc")}
        out |= {"note": self.note} if self.note is not None else {}
        out["per_fold"] = [{"fold": k, **d.to_dict()} for k, d in self.per_fold]
        out["uncertainty"] = self.uncertainty.to_dict()
        return out | {"calibration": self.calibration.to_dict()}


@dataclass(frozen=True)
class SliceFigures:
    """Each tumour slice on its own, uncalibrated."""

    discrimination: Discrimination
    note: str

    def figure(self, name: str) -> float | None:
        return self.discrimination.figure(name)

    def to_dict(self) -> dict:
        """Its object in ``metrics.json``."""
        return self.discrimination.to_dict() | {"note": self.note}


@dataclass(frozen=True)
class Inference:
    """The precision and device the models ran with."""

    precision: str
    device: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Metrics:
    """A run's (or an independent cohort's) ``metrics.json``."""

    protocol: str
    n_patients: int
    target: Target
    modes: dict[Mode, ModeFigures]
    not_measured: dict[Mode, str] = field(default_factory=dict)  # a mode's note instead
    inference: Inference | None = None
    slice: SliceFigures | None = None
    attention: dict[str, Any] | None = None  # explain's summary (``explain`` merges it in)
    skipped: dict[str, str] | None = None  # an independent cohort: subjects not graded, why
    synthetic: bool | None = None  # an independent cohort: made by ``gliograde synth``
    recalibrated: dict[Mode, ModeFigures] | None = None  # ``evaluate --test --recalibrate``
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def independent(self) -> bool:
        """Figures of an independent cohort (``evaluate --test``), not of cross-validation."""
        return self.skipped is not None

    def mode(self, mode: Mode) -> ModeFigures | None:
        return self.modes.get(mode)

    @property
    def main(self) -> ModeFigures | None:
        """The figures with the segmentation, or without one when there are none with."""
        return self.modes.get(Mode.SEG) or self.modes.get(Mode.NOSEG)

    @classmethod
    def from_dict(cls, data: dict) -> Metrics:
        """The record of a ``metrics.json`` object.

        Raises:
            KeyError, TypeError, ValueError: not such an object (see :func:`read_metrics`).
        """
        data = dict(data)
        modes, not_measured = {}, {}
        for mode in MODES:
            section = data.pop(mode.metrics_key, None)
            if section is not None and "n" in section:
                modes[mode] = ModeFigures.from_dict(section)
            elif section is not None:
                not_measured[mode] = section["note"]
        inference, slice_ = data.pop("inference", None), data.pop("slice", None)
        recalibrated = data.pop("recalibrated", None)
        return cls(
            protocol=data.pop("protocol"),
            n_patients=int(data.pop("n_patients")),
            target=Target.of_dict(data.pop("target", None)),
            modes=modes,
            not_measured=not_measured,
            inference=Inference(**inference) if inference is not None else None,
            slice=SliceFigures(discrimination_of(slice_), slice_["note"]) if slice_ else None,
            attention=data.pop("attention", None),
            skipped=data.pop("skipped", None),
            synthetic=data.pop("synthetic", None),
            recalibrated=None if recalibrated is None else {
                Mode(m): ModeFigures.from_dict(f) for m, f in recalibrated.items()
            },
            extra=data,
        )  # fmt: skip

    def to_dict(self) -> dict:
        """Its object in ``metrics.json``."""
        out: dict[str, Any] = {"inference": self.inference.to_dict()} if self.inference else {}
        out |= {"protocol": self.protocol}
        if self.skipped is not None:
            out |= {"skipped": self.skipped, "synthetic": self.synthetic}
        out |= {"n_patients": self.n_patients, "target": self.target.to_dict()}
        for mode in MODES:
            if mode in self.modes:
                out[mode.metrics_key] = self.modes[mode].to_dict()
            elif mode in self.not_measured:
                out[mode.metrics_key] = {"note": self.not_measured[mode]}
        if self.recalibrated is not None:
            out["recalibrated"] = {m.value: f.to_dict() for m, f in self.recalibrated.items()}
        out |= {"slice": self.slice.to_dict()} if self.slice else {}
        out |= {"attention": self.attention} if self.attention is not None else {}
        return out | self.extra

    def write(self, path: Path) -> None:
        """Write ``metrics.json`` at ``path`` (atomically)."""
        write_json(Path(path), self.to_dict())


def read_metrics(path: Path) -> Metrics:
    """A ``metrics.json`` file.

    Raises:
        GliogradeError: missing, unreadable, or not a gliograde ``metrics.json``.
    """
    path = Path(path)
    if not path.is_file():
        raise GliogradeError(f"{path.parent}: no metrics.json; train (and evaluate) the run first")
    try:
        return Metrics.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise GliogradeError(
            f"{path}: not a gliograde metrics.json ({type(err).__name__}: {err}); write it "
            "again with `gliograde evaluate RUN`"
        ) from None
