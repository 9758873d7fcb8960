"""The options of ``train``, recorded in ``RUN/config.json`` with every run."""

from __future__ import annotations

from dataclasses import dataclass

from gliograde.core.errors import UsageError

SELECT_MODES = ("inner", "last")


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
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "auto"
    devices: int = 1  # per node; DDP when devices × nodes > 1
    nodes: int = 1
    balance: str = "weights"  # "weights" (class-weighted loss) or "sampler" (balanced sampling)
    epoch_slices: int | None = None  # slices drawn per epoch (default: every training slice)
    augment: bool = True
    patience: int = 5
    select: str = "inner"
    select_fraction: float = 0.2
    tumor_loss_weight: float = 0.5
    workers: int = -1  # DataLoader workers; -1: 0 on CPU, up to 8 on GPU
    compile: bool = False
    resident: bool = False  # keep the training slices on the device (GPU memory)
    pretrained: str | None = None
    resume: bool = False
    progress: bool = True

    def __post_init__(self):
        if self.balance not in ("weights", "sampler"):
            raise UsageError("--balance must be 'weights' or 'sampler'")
        if self.device not in ("auto", "cpu", "gpu"):
            raise UsageError("--device must be auto, cpu or gpu")
        if self.select not in SELECT_MODES:
            raise UsageError("--select must be 'inner' or 'last'")
        if not 0.05 <= self.select_fraction <= 0.5:
            raise UsageError("--select-fraction must be between 0.05 and 0.5")
