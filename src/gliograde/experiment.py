"""What ``gliograde train`` runs: train the folds (:mod:`gliograde.train`), then grade each
fold's held-out patients once (:mod:`gliograde.assess.crossval`).

The two steps live in their own layers; this module only puts them in order, above both (the
training layer cannot import evaluation, which grades with what training wrote).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gliograde.run.config import TrainConfig

if TYPE_CHECKING:
    from gliograde.assess.record import Metrics


def train_and_evaluate(config: TrainConfig, precision: str = "auto") -> Metrics | None:
    """Train the folds, then grade each fold's held-out patients once, in ``precision`` (the
    grading's, as ``predict --precision``; the training's is ``config.precision``).

    Returns:
        The out-of-fold metrics; None for ``--full`` and on DDP ranks other than 0.
    """
    from gliograde.assess.crossval import evaluate_cross_validation
    from gliograde.assess.modelcard import write_model_card
    from gliograde.core.devices import resolve_device
    from gliograde.run import Run
    from gliograde.train.fit import is_global_zero, leave_process_group
    from gliograde.train.folds import train_folds

    train_folds(config)
    leave_process_group()  # no collective follows: grading runs on rank 0 alone
    if not is_global_zero():
        return None
    if config.full:  # no held-out patient: the card says so
        write_model_card(Run.open(Path(config.out)))
        return None
    return evaluate_cross_validation(Path(config.out), resolve_device(config.device), precision)
