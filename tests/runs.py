"""A run folder built without training (random weights), for tests of how runs are read."""

from __future__ import annotations

import json
from pathlib import Path

import torch


def fake_run(folder: Path, size: int = 32, folds: int = 2) -> Path:
    """A structurally complete run: config, frozen splits, fold weights, checksums, calibration."""
    from safetensors.torch import save_file

    from gliograde.model.network import GradeNet
    from gliograde.model.weights import sha256_of
    from gliograde.preprocess.slices import PrepareConfig
    from gliograde.run import RUN_FORMAT

    folder.mkdir(parents=True)
    options = vars(PrepareConfig(size=size, min_tumor_pixels=20))
    manifest = {"options": options, "slice_shape": [4, size, size], "subjects": ["A", "B"]}
    config = {
        "run_format": RUN_FORMAT,
        "store": "unused",
        "folds": None,
        "store_manifest": manifest,
    }
    (folder / "config.json").write_text(json.dumps(config, default=list))
    (folder / "splits.json").write_text(json.dumps([{"train": ["A"], "val": ["B"]}] * folds))
    checksums = {}
    torch.manual_seed(0)
    for k in range(folds):
        (folder / f"fold_{k}").mkdir()
        path = folder / f"fold_{k}" / "model.safetensors"
        state = {n: v.contiguous() for n, v in GradeNet(plain=True).state_dict().items()}
        save_file(state, path, metadata={"slice_size": str(size)})
        checksums[f"fold_{k}/model.safetensors"] = sha256_of(path)
    (folder / "checksums.json").write_text(json.dumps(checksums))
    rule = {"temperature": 1.0, "bias": 0.0, "applied": False, "threshold": 0.5}
    (folder / "calibration.json").write_text(json.dumps({"seg": rule, "noseg": rule}))
    return folder


def read_run(folder: Path) -> None:
    """Everything predict reads from a run before it sees a patient."""
    from gliograde.infer.models import load_models
    from gliograde.run import Run

    run = Run.open(folder)
    load_models(run.weights())
    run.calibration()
    run.splits()
