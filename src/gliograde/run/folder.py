"""A run folder as one object: what ``train`` wrote and every later command reads.

::

    RUN/config.json                 every option of train, the store's manifest, versions
    RUN/splits.json                 the store's patient-level folds, frozen at training time
    RUN/fold_K/split.json           train / select (inner selection) / val patients of fold K
    RUN/fold_K/model.safetensors    fold K's weights
    RUN/fold_K/checkpoints/, logs/  Lightning's checkpoints and logs
    RUN/full/model.safetensors      the --full model (every subject), when trained
    RUN/calibration.json            calibration and flag thresholds (written by evaluation)
    RUN/checksums.json              SHA-256 of each weight file, checked on load
    RUN/metrics.json, predictions_*.csv, *.png, report.html, explain/

Everything a command needs from the folder is checked when it is read, and each way it can be
wrong (not a run, another version, a missing fold, weights modified since training, a missing
or damaged calibration) is one line naming the file and what to do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gliograde.core.errors import GliogradeError, UsageError
from gliograde.core.files import merge_json, write_json
from gliograde.io.target import Target
from gliograde.run.calibration import Calibration
from gliograde.run.config import RunConfig, TrainConfig
from gliograde.store.manifest import StoreManifest

RETRAIN = "train it again with this version of gliograde"
FULL_NOTE = "not calibrated: a --full run has no held-out patients"


@dataclass
class Run:
    """A run folder: opened for reading with :meth:`open`, made by ``train`` with
    :meth:`create`; its files are written by its methods."""

    path: Path
    config: RunConfig

    @classmethod
    def open(cls, path: Path) -> Run:
        """Open ``path`` as a run.

        Raises:
            GliogradeError: not a run folder (no ``config.json``), or of another version.
        """
        path = Path(path)
        config_path = path / "config.json"
        if not config_path.is_file():
            raise GliogradeError(
                f"{path}: not a gliograde run (no config.json); give the folder "
                "`gliograde train` wrote"
            )
        return cls(path, RunConfig.from_dict(read_object(config_path), config_path))

    @classmethod
    def create(cls, path: Path, config: RunConfig) -> Run:
        """Start a run folder: write its ``config.json``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_json(path / "config.json", config.to_dict())
        return cls(path, config)

    @property
    def train_config(self) -> TrainConfig:
        return self.config.train

    @property
    def manifest(self) -> StoreManifest:
        """The manifest of the store the run was trained on."""
        return self.config.manifest

    @property
    def store_path(self) -> Path:
        """Where the store the run was trained on was."""
        return Path(self.config.train.store)

    @property
    def target(self) -> Target:
        """What the run predicts: the grade, or a ``prepare --target`` column's classes."""
        return self.manifest.target

    @property
    def min_tumor(self) -> int:
        """Tumour pixels a slice needs to count as a tumour slice."""
        return self.manifest.min_tumor

    @property
    def can_grade_without_seg(self) -> bool:
        """Whether the tumour head saw slices without tumour (a ``brain`` or ``all`` store)."""
        return self.manifest.can_grade_without_seg

    def fold_dir(self, fold: int | None) -> Path:
        """``fold_K``, or ``full`` for the ``--full`` model (``fold`` None)."""
        return self.path / ("full" if fold is None else f"fold_{fold}")

    def fold_dirs(self) -> list[Path]:
        """``fold_K`` folders that hold trained weights, in fold order."""
        found = [p.parent for p in self.path.glob("fold_*/model.safetensors")]
        found = [p for p in found if p.name.split("_", 1)[1].isdigit()]
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
            return [self.checked(path)]
        full = self.path / "full" / "model.safetensors"
        if full.is_file():
            return [self.checked(full)]
        expected = self.expected_folds()
        if not expected:
            raise GliogradeError(
                f"{self.path}: no trained model (model.safetensors) in it; train it first"
            )
        weights = [self.path / f"fold_{k}" / "model.safetensors" for k in expected]
        for k, path in zip(expected, weights):
            if not path.is_file():
                raise GliogradeError(
                    f"{path}: missing, so the run is incomplete (fold {k} of {expected}); finish "
                    "it with the same `gliograde train` command and --resume, or use --fold"
                )
        return [self.checked(path) for path in weights]

    def expected_folds(self) -> list[int]:
        """Every fold the run should have: those trained (a run built by several ``--fold``
        calls has each), and those its last ``train`` was asked for (all folds without
        ``--fold``)."""
        asked = self.config.train.folds
        if asked is None:
            path = self.path / "splits.json"
            asked = list(range(len(read_object(path, list)))) if path.is_file() else []
        return sorted(set(asked) | set(self.folds()))

    def checked(self, path: Path) -> Path:
        """``path``, once it reads as weights, its SHA-256 matches the one recorded at training
        time, and it records that it was trained on the run's slice size (weights that record
        no size are refused rather than assumed to fit)."""
        from gliograde.model.weights import RECOVER, sha256_of

        if path.stat().st_size == 0:
            raise GliogradeError(f"{path}: empty model file (0 bytes); {RECOVER}")
        trained = trained_slice_size(path)
        key = str(path.relative_to(self.path))
        recorded = read_object(self.path / "checksums.json").get(key)
        if recorded is None:
            raise GliogradeError(f"{path}: no checksum in checksums.json; {RETRAIN}")
        if sha256_of(path) != recorded:
            raise GliogradeError(
                f"{path}: modified since training (its SHA-256 differs from checksums.json); "
                f"{RECOVER}"
            )
        size = str(self.manifest.slice_size)
        if trained is None:  # every `train` records it; without it, the input size is a guess
            raise GliogradeError(
                f"{path}: records no slice size in its metadata (written by a gliograde older "
                f"than 2026-11-24 or by another tool), so its input size is unknown; {RETRAIN}"
            )
        if trained != size:
            raise GliogradeError(
                f"{path}: trained on {trained}×{trained} slices, but the run's store has "
                f"{size}×{size}; these weights belong to another run"
            )
        return path

    def splits(self) -> list[dict[str, list[str]]]:
        """The folds frozen into the run (not the store's current file)."""
        path = self.path / "splits.json"
        if not path.is_file():
            raise GliogradeError(f"{path}: not found; this run was not trained with folds")
        return read_object(path, list)

    def fold_split(self, fold: int) -> dict[str, list[str]]:
        """``fold_K/split.json``: the fold's ``train``, ``select`` and ``val`` patients."""
        path = self.path / f"fold_{fold}" / "split.json"
        if not path.is_file():
            raise GliogradeError(f"{path}: not found; the fold was not trained")
        split = read_object(path)
        if not all(isinstance(split.get(k), list) for k in ("train", "select", "val")):
            raise GliogradeError(f"{path}: damaged (no train, select and val lists); {RETRAIN}")
        return split

    def calibration(self) -> Calibration:
        """``calibration.json``: per grading mode (``seg``, ``noseg``) the rule and threshold.

        Raises:
            GliogradeError: missing (the run was not evaluated) or damaged.
        """
        path = self.path / "calibration.json"
        if not path.is_file():
            raise GliogradeError(
                f"{path}: missing, so the run's probabilities cannot be calibrated or flagged; "
                "run `gliograde evaluate RUN` to write it"
            )
        return Calibration.from_dict(read_object(path), path)

    def write_calibration(self, calibration: Calibration) -> None:
        calibration.write(self.path / "calibration.json")

    def write_uncalibrated(self) -> None:
        """The calibration of a ``--full`` run: none (it has no held-out patient)."""
        self.write_calibration(Calibration.uncalibrated(self.target, FULL_NOTE))

    def write_splits(self, splits: list[dict[str, list[str]]]) -> None:
        """``splits.json``: the store's folds, frozen into the run."""
        write_json(self.path / "splits.json", splits)

    def write_fold_split(self, fold_dir: Path, split: dict[str, list[str]]) -> None:
        """``fold_K/split.json``: the fold's ``train``, ``select`` and ``val`` patients."""
        fold_dir.mkdir(parents=True, exist_ok=True)
        write_json(fold_dir / "split.json", split)

    def record_weights(self, weights: Path) -> None:
        """Record a weight file's SHA-256 in ``checksums.json`` (checked on every load)."""
        from gliograde.model.weights import sha256_of

        key = str(Path(weights).relative_to(self.path))
        merge_json(self.path / "checksums.json", key, sha256_of(weights))


def finished_dirs(run: Path) -> set[Path]:
    """The folders (``fold_K``, ``full``) of a run folder whose weights ``checksums.json``
    records: those training finished."""
    return {run / key.split("/")[0] for key in read_object(run / "checksums.json")}


def read_object(path: Path, kind: type = dict):
    """A JSON file holding a ``kind`` (dict or list); ``{}``/``[]`` when missing.

    Raises:
        GliogradeError: the file is not JSON of that kind.
    """
    if not path.is_file():
        return kind()
    try:
        value = json.loads(path.read_text())
    except (UnicodeDecodeError, ValueError) as err:
        raise GliogradeError(f"{path}: damaged, not JSON ({err}); {RETRAIN}") from None
    if not isinstance(value, kind):
        raise GliogradeError(f"{path}: damaged, not a JSON {kind.__name__}; {RETRAIN}")
    return value


def trained_slice_size(path: Path) -> str | None:
    """The slice size a weights file records in its metadata (None when it records none).

    Raises:
        GliogradeError: the file is not readable safetensors.
    """
    from gliograde.model.weights import weights_metadata

    return weights_metadata(path).get("slice_size")
