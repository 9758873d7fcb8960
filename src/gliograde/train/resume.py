"""Continuing an interrupted ``train``: the checkpoint to start from, the options that must not
change, and the CSV log that Lightning would otherwise start again."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

from gliograde.core.devices import resolve_device
from gliograde.core.errors import UsageError
from gliograde.run import Run
from gliograde.run.config import TrainConfig
from gliograde.train.precision import recorded_precision

RESUME_KEYS = (
    "store",
    "epochs",
    "batch_size",
    "lr",
    "epoch_slices",
    "seed",
    "balance",
    "full",
    "select",
    "select_fraction",
    "precision",
    "backbone",
    "context",
    "grid",
)


def check_resume(config: TrainConfig, out: Path) -> None:
    """``--resume`` continues the same schedule: the options that shape it must not change."""
    if not config.resume or not (out / "config.json").is_file():
        return
    old = Run.open(out).train_config
    old = replace(old, precision=recorded_precision(old, resolve_device(config.device)))
    changed = [k for k in RESUME_KEYS if getattr(old, k) != getattr(config, k)]
    if changed:
        shown = ", ".join(f"{k} (run {getattr(old, k)}, now {getattr(config, k)})" for k in changed)
        raise UsageError(
            f"{out}: --resume continues the run as it was started; these options differ: "
            f"{shown} (use the run's options, or a new --out)"
        )


def checkpoint_epoch(path: Path) -> int:
    """The last completed epoch recorded in a Lightning checkpoint."""
    from gliograde.model.weights import load_checkpoint

    return int(load_checkpoint(path)["epoch"])


def read_log(path: Path, until_epoch: int | None = None) -> list[dict]:
    """Rows of a Lightning ``metrics.csv`` (those of epochs ≤ ``until_epoch`` if given)."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if until_epoch is None:
        return rows
    return [r for r in rows if r.get("epoch", "") != "" and int(r["epoch"]) <= until_epoch]


def write_log(path: Path, rows: list[dict]) -> None:
    fields = sorted({k for r in rows for k in r})
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
