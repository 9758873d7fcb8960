"""``STORE/manifest.json`` as a typed record: what a store holds and how it was prepared.

Every module reads a store's manifest through :class:`StoreManifest`; none reads the JSON by
key. The file keeps its documented keys (``docs``: the store format), so stores and runs made
by earlier versions read as they are: a manifest without ``target`` is the grade's, one without
``labels`` has its classes under ``grades``, one without ``profile`` is not checked for
out-of-distribution patients.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from gliograde import MODALITIES
from gliograde.core.errors import GliogradeError
from gliograde.io.target import Target
from gliograde.preprocess.slices import PrepareConfig

STORE_VERSION = 1


@dataclass(frozen=True)
class StoreManifest:
    """A slice store's subjects, their classes, the slice shape and the ``prepare`` options."""

    source: str
    layout: str
    subjects: list[str]
    target: Target
    labels: dict[str, str]  # subject → its class of the target
    slice_shape: tuple[int, int, int]  # (4, H, W)
    options: PrepareConfig  # what predict repeats
    n_slices: int
    folds: int
    skipped: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    synthetic: bool = False
    profile: dict | None = None  # ranges of the subjects' profiles (infer.guard)
    versions: dict[str, str] = field(default_factory=dict)
    channels: tuple[str, ...] = MODALITIES
    store_version: int = STORE_VERSION
    class_counts: dict[str, int] | None = None  # kept instead of labels where they are private

    def counts(self) -> dict[str, int]:
        """Subjects per class, in the target's order."""
        if self.class_counts is not None:
            return dict(self.class_counts)
        values = list(self.labels.values())
        return {c: values.count(c) for c in self.target.classes}

    def without_subjects(self) -> StoreManifest:
        """The manifest with no subject id, label or local path: counts per class instead, the
        source as its folder's name (what a shared model may carry)."""
        return replace(
            self,
            source=Path(self.source).name,
            subjects=[],
            labels={},
            skipped={},
            warnings={},
            notes=[],
            class_counts=self.counts(),
        )

    @property
    def slice_size(self) -> int:
        """The in-plane size of a slice (the models' input is ``slice_size²``)."""
        return int(self.slice_shape[-1])

    @property
    def resized(self) -> bool:
        """Whether ``prepare --size`` resized every slice."""
        return self.options.size is not None

    @property
    def min_tumor(self) -> int:
        """Tumour pixels a slice needs to count as a tumour slice."""
        return int(self.options.min_tumor_pixels)

    @property
    def can_grade_without_seg(self) -> bool:
        """Whether the tumour head saw slices without tumour (a ``brain`` or ``all`` store)."""
        return self.options.slices != "tumor"

    def prepare_config(self) -> PrepareConfig:
        """The options to preprocess a new patient exactly as this store's subjects were."""
        return replace(self.options)

    @classmethod
    def from_dict(cls, data: dict, where: Path | str = "manifest.json") -> StoreManifest:
        """The record of a manifest's JSON object.

        Raises:
            GliogradeError: a key every manifest has is missing or of the wrong type.
        """
        try:
            shape = tuple(int(v) for v in data["slice_shape"])
            if len(shape) != 3 or not isinstance(data["options"], dict):
                raise TypeError("slice_shape or options")
            labels = data.get("labels") or data.get("grades") or {}
            return cls(
                source=str(data.get("source", "unknown")),
                layout=str(data.get("layout", "unknown")),
                subjects=list(data.get("subjects", labels)),
                target=Target.of_dict(data.get("target")),
                labels=dict(labels),
                slice_shape=shape,
                options=PrepareConfig.from_dict(data["options"]),
                n_slices=int(data.get("n_slices", 0)),
                folds=int(data.get("folds", 0)),
                skipped=dict(data.get("skipped", {})),
                warnings=dict(data.get("warnings", {})),
                notes=list(data.get("notes", [])),
                synthetic=bool(data.get("synthetic", False)),
                profile=data.get("profile"),
                versions=dict(data.get("versions", {})),
                channels=tuple(data.get("channels", MODALITIES)),
                store_version=int(data.get("store_version", STORE_VERSION)),
                class_counts=data.get("class_counts"),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise GliogradeError(
                f"{where}: not a gliograde store manifest (no valid {err}); written by another "
                "version of gliograde? prepare the store (and train the run) again"
            ) from None

    def to_dict(self) -> dict:
        """The JSON object of ``manifest.json`` (``grades`` repeats ``labels`` for the grade).

        A manifest :meth:`without_subjects` writes no key that could hold a patient's id.
        """
        out = {
            "store_version": self.store_version,
            "source": self.source,
            "layout": self.layout,
            "subjects": list(self.subjects),
            "target": self.target.to_dict(),
            "labels": dict(self.labels),
            "grades": dict(self.labels) if self.target.is_grade else {},
            "skipped": dict(self.skipped),
            "warnings": dict(self.warnings),
            "n_slices": self.n_slices,
            "slice_shape": list(self.slice_shape),
            "channels": list(self.channels),
            "options": self.options.to_dict(),
            "folds": self.folds,
            "notes": list(self.notes),
            "synthetic": self.synthetic,
            "profile": self.profile,
            "versions": dict(self.versions),
        }
        if self.class_counts is None:
            return out
        private = ("subjects", "labels", "grades", "skipped", "warnings", "notes")
        return {k: v for k, v in out.items() if k not in private} | {
            "class_counts": dict(self.class_counts)
        }
