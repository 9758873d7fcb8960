"""The options of ``train`` (:class:`TrainConfig`) and ``RUN/config.json``, which records them
with the store's manifest (:class:`RunConfig`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from gliograde.core.devices import device_choice
from gliograde.core.errors import GliogradeError, UsageError
from gliograde.store.manifest import StoreManifest

if TYPE_CHECKING:
    from gliograde.model.backbones import Backbone

SELECT_MODES = ("inner", "last")
SLICE_BATCH = 32
VOLUME_BATCH = 4
"""A 3D network's default batch: with 4 volumes at the default 96³ grid in float32, each 3D
network's training stays under 4 GB on a CPU, and with 8 DenseNet121-3D's does not (the bench's
backbone lines; the figures: docs/results/index.md, "2D, 2.5D or 3D?")."""
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
"""``train --precision``: auto, fp32 or bf16. ``fp16`` is what auto resolves to on GPUs without
native bfloat16 (float16 with a gradient scaler); a run records the resolved one."""


@dataclass
class TrainConfig:
    """Options of ``train``; written to ``RUN/config.json``.

    ``select`` says how each fold's checkpoint is chosen. ``inner``: on an inner validation
    split (``select_fraction`` of the fold's training patients, stratified by grade), which also
    drives early stopping. ``last``: the weights after ``epochs`` epochs, no selection at all.
    Either way the fold's own validation patients are never read before their final prediction.
    """

    store: str
    out: str
    folds: list[int] | None = None  # None: all folds of the store
    full: bool = False
    epochs: int = 20
    batch_size: int = 0  # 0 (or None): 32 slices, or for 3D 4 volumes (VOLUME_BATCH)
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "auto"
    devices: int = 1  # per node; DDP when devices × nodes > 1
    nodes: int = 1
    balance: str = "weights"  # "weights" (class-weighted loss) or "sampler" (balanced sampling)
    epoch_slices: int | None = None  # slices (3D: volumes) drawn per epoch (default: as many
    # as the fold's training items)
    augment: bool = True
    patience: int = 5
    select: str = "inner"
    select_fraction: float = 0.2
    tumor_loss_weight: float = 0.5
    workers: int = -1  # DataLoader workers; -1: 0 on CPU, up to 8 on GPU
    compile: bool = False
    resident: bool = False  # the training slices read once into one tensor on the device
    precision: str = "auto"  # auto, fp32 or bf16; config.json records what auto resolved to
    pretrained: str | None = None
    backbone: str = "resnet18"  # gliograde.model.backbones; runs made before are resnet18
    context: int | None = None  # 2.5D: neighbours each side (None: 1 for 2.5D, else 0)
    grid: int | None = None  # 3D: the volume's side (None: 96 for 3D, else 0)
    resume: bool = False
    progress: bool = True

    def __post_init__(self):
        if self.balance not in ("weights", "sampler"):
            raise UsageError("--balance must be 'weights' or 'sampler'")
        self.device = device_choice(self.device)  # gpu, the older name, is recorded as cuda
        if self.select not in SELECT_MODES:
            raise UsageError("--select must be 'inner' or 'last'")
        if self.precision not in PRECISIONS:
            raise UsageError("--precision must be auto, fp32 or bf16")
        if not 0.05 <= self.select_fraction <= 0.5:
            raise UsageError("--select-fraction must be between 0.05 and 0.5")
        from gliograde.model.backbones import Backbone  # torch: not for every command's start

        # refuses an unknown backbone, or a context it does not take
        spec = Backbone.named(self.backbone, self.context, self.grid)
        self.context, self.grid = spec.context, spec.grid
        if spec.is_3d:  # every volume holds tumour: the tumour head has nothing to learn
            self.tumor_loss_weight = 0.0
        if not self.batch_size:
            self.batch_size = VOLUME_BATCH if spec.is_3d else SLICE_BATCH
        if spec.is_3d and self.resident:
            raise UsageError(
                "--resident goes with 2D and 2.5D backbones; a 3D one streams its volumes from "
                "the store"
            )
        if self.pretrained is not None:
            self.spec.check_pretrained()

    @property
    def spec(self) -> Backbone:
        """The backbone (its context and grid resolved when the config was made)."""
        from gliograde.model.backbones import Backbone

        return Backbone(self.backbone, self.context or 0, self.grid or 0)

    @classmethod
    def from_options(cls, **options) -> TrainConfig:
        """The config of ``train``'s command-line options: paths and choices become the plain
        strings ``config.json`` records; options this config does not know are refused."""
        from enum import Enum
        from pathlib import PurePath

        def plain(value):
            if isinstance(value, Enum):
                return value.value
            if isinstance(value, PurePath):
                return str(value)
            return list(value) if isinstance(value, tuple | list) else value

        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"TrainConfig has no option {unknown[0]}")
        return cls(**{k: plain(v) for k, v in options.items()})

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """The options a ``config.json`` records (keys of other versions' options ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


RUN_FORMAT = 2
"""What ``config.json``'s ``run_format`` says; a run of another format is refused, not guessed."""


@dataclass(frozen=True)
class RunConfig:
    """``RUN/config.json``: the training options, the store's manifest, and the versions.

    The file is flat: the options of :class:`TrainConfig` at the top level, beside
    ``run_format``, ``store_manifest`` and ``versions``.
    """

    train: TrainConfig
    manifest: StoreManifest
    versions: dict = field(default_factory=dict)
    run_format: int = RUN_FORMAT

    @classmethod
    def from_dict(cls, data: dict, where: Path | str) -> RunConfig:
        """The record of a ``config.json`` object.

        Raises:
            GliogradeError: of another run format, or its manifest or folds are damaged.
        """
        found = data.get("run_format")
        folds = data.get("folds")
        ok_folds = folds is None or (
            isinstance(folds, list) and all(isinstance(k, int) for k in folds)
        )
        another = GliogradeError(
            f"{where}: written by another version of gliograde (run format {found}, "
            f"this version reads {RUN_FORMAT}); train it again with this version of gliograde"
        )
        if found != RUN_FORMAT or not isinstance(data.get("store_manifest"), dict) or not ok_folds:
            raise another
        manifest = StoreManifest.from_dict(data["store_manifest"], where)
        # A MONAI bundle's copy of a run keeps no local path: no store, no out.
        paths = {"store": manifest.source, "out": str(Path(where).parent)}
        try:
            train = TrainConfig.from_dict(paths | data)
        except (TypeError, UsageError) as err:
            raise GliogradeError(
                f"{where}: damaged training options ({err}); train the run again"
            ) from None
        return cls(train, manifest, dict(data.get("versions", {})), found)

    @property
    def gliograde_version(self) -> str:
        """The version of gliograde that trained the run (``?`` when it recorded none)."""
        return str(self.versions.get("gliograde", "?"))

    def to_dict(self) -> dict:
        return asdict(self.train) | {
            "run_format": self.run_format,
            "store_manifest": self.manifest.to_dict(),
            "versions": dict(self.versions),
        }
