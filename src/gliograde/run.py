"""A run folder as one object: what ``train`` wrote and every later command reads.

::

    RUN/config.json                 every option of train, the store's manifest, versions
    RUN/splits.json                 the store's patient-level folds, frozen at training time
    RUN/fold_K/split.json           train / select (inner selection) / val patients of fold K
    RUN/fold_K/model.safetensors    fold K's weights
    RUN/fold_K/checkpoints/, logs/  Lightning's checkpoints and logs
    RUN/full/model.safetensors      the --full model (every subject), when trained
    RUN/calibration.json            calibration and flag thresholds (written by evaluation)
    RUN/metrics.json, predictions_*.csv, *.png, report.html, explain/
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gliograde.core.errors import GliogradeError, UsageError


@dataclass
class Run:
    """A trained run folder, opened for reading."""

    path: Path
    config: dict

    @classmethod
    def open(cls, path: Path) -> Run:
        """Open ``path`` as a run.

        Raises:
            GliogradeError: not a run folder (no ``config.json``).
        """
        path = Path(path)
        config_path = path / "config.json"
        if not config_path.is_file():
            raise GliogradeError(
                f"{path}: not a gliograde run (no config.json); give the folder "
                "`gliograde train` wrote"
            )
        return cls(path, json.loads(config_path.read_text()))

    @property
    def manifest(self) -> dict:
        """The manifest of the store the run was trained on."""
        return self.config["store_manifest"]

    @property
    def store_options(self) -> dict:
        """The preprocessing options of that store (what ``predict`` repeats)."""
        return dict(self.manifest["options"])

    @property
    def min_tumor(self) -> int:
        """Tumour pixels a slice needs to count as a tumour slice."""
        return int(self.store_options.get("min_tumor_pixels", 1))

    @property
    def can_grade_without_seg(self) -> bool:
        """Whether the tumour head saw slices without tumour (a ``brain`` or ``all`` store)."""
        return self.store_options.get("slices") != "tumor"

    def fold_dirs(self) -> list[Path]:
        """``fold_K`` folders that hold trained weights, in fold order."""
        found = [p.parent for p in self.path.glob("fold_*/model.safetensors")]
        return sorted(found, key=lambda p: int(p.name.split("_")[1]))

    def folds(self) -> list[int]:
        """The folds with trained weights."""
        return [int(p.name.split("_")[1]) for p in self.fold_dirs()]

    def weights(self, fold: int | None = None) -> list[Path]:
        """The weights ``predict`` uses: fold ``fold``'s, else the full model or every fold's.

        Raises:
            GliogradeError: no trained model; UsageError: no such fold.
        """
        if fold is not None:
            path = self.path / f"fold_{fold}" / "model.safetensors"
            if not path.is_file():
                have = ", ".join(map(str, self.folds())) or "none"
                raise UsageError(f"--fold {fold}: {self.path} has no such fold (folds: {have})")
            return [path]
        full = self.path / "full" / "model.safetensors"
        weights = [full] if full.is_file() else [p / "model.safetensors" for p in self.fold_dirs()]
        if not weights:
            raise GliogradeError(
                f"{self.path}: no trained model (model.safetensors) in it; train it first"
            )
        return weights

    def splits(self) -> list[dict[str, list[str]]]:
        """The folds frozen into the run (not the store's current file)."""
        path = self.path / "splits.json"
        if not path.is_file():
            raise GliogradeError(f"{path}: not found; this run was not trained with folds")
        return json.loads(path.read_text())

    def fold_split(self, fold: int) -> dict[str, list[str]]:
        """``fold_K/split.json``: the fold's ``train``, ``select`` and ``val`` patients."""
        path = self.path / f"fold_{fold}" / "split.json"
        if not path.is_file():
            raise GliogradeError(f"{path}: not found; the fold was not trained")
        return json.loads(path.read_text())

    def calibration(self) -> dict:
        """``calibration.json`` (``{}`` before the run was evaluated)."""
        path = self.path / "calibration.json"
        return json.loads(path.read_text()) if path.is_file() else {}
