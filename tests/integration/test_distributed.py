"""Training beyond one process: DDP with 2 CPU processes (gloo), launched by torchrun.

Single-process and DDP runs differ in one known way on CPU: PyTorch has no SyncBatchNorm there,
so each process normalises over its half of the batch and the saved BatchNorm statistics are
rank 0's, from half the slices. Everything else is the same: the initial weights, the slices in
each global step (the ranks deal out one sampler sequence, tested below), the number of
optimiser steps and the averaged gradients. The tolerance: the DDP run must differ from the
single-process run with the same seed by less than two single-process runs with different seeds
differ, i.e. DDP may not move the result more than the run-to-run noise a user already accepts.
Measured on these tiny 32×32 models, mean |Δ validation loss| over folds and epochs: DDP 0.017,
another seed 0.027 (the half-batch BatchNorm is not a small effect at 8 slices per process; on
GPUs ``train`` uses SyncBatchNorm).
"""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from gliograde.model.weights import load_checkpoint
from gliograde.run.config import TrainConfig
from gliograde.store.read import SliceStore
from gliograde.store.splits import load_splits
from gliograde.train.sampling import IndexedSlices, make_train_loader

TRAIN = [
    "--device",
    "cpu",
    "--epochs",
    "2",
    "--epoch-slices",
    "64",
    "--batch-size",
    "16",
    "--no-augment",
    "--patience",
    "0",
]


@pytest.fixture(scope="module")
def store(tiny_store):
    """32×32 brain slices of synth_small in 2 folds: the session's ``tiny_store`` (training
    only reads its store)."""
    return tiny_store


def gliograde(*args, ddp=False):
    launcher = [sys.executable, "-m", "gliograde"]
    if ddp:
        launcher = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "gliograde",
        ]
    result = subprocess.run([*launcher, *map(str, args)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def patient_p(run):  # P(HGG) per subject
    with open(run / "predictions_patients.csv", newline="") as f:
        return {r["subject"]: float(r["p_hgg"]) for r in csv.DictReader(f)}


def validation_rows(run, fold):
    with open(run / f"fold_{fold}" / "logs" / "metrics.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("val_n_slices")]


@pytest.mark.slow  # trains, once alone and once under torchrun
def test_ddp_counts_each_patient_once_and_matches_one_process(store, tmp_path):
    single, ddp, other_seed = tmp_path / "single", tmp_path / "ddp", tmp_path / "seed1"
    gliograde("train", store, "--out", single, *TRAIN)
    gliograde("train", store, "--out", ddp, *TRAIN, "--devices", "2", ddp=True)
    gliograde("train", store, "--out", other_seed, *TRAIN, "--seed", "1")

    slices = SliceStore(store)
    odd = []
    for k in range(len(load_splits(store))):
        # Lightning's "validation" is checkpoint selection, on the fold's inner split
        select = json.loads((ddp / f"fold_{k}" / "split.json").read_text())["select"]
        n_slices = len(slices.rows(select))
        odd.append(n_slices % 2)
        rows = validation_rows(ddp, k)
        assert len(rows) == 2  # one selection pass per epoch
        for r in rows:  # DistributedSampler pads an odd count; the gather removes the repeats
            assert float(r["val_n_slices"]) == n_slices
            assert float(r["val_n_patients"]) == len(select) > 0
        steps = [
            load_checkpoint(run / f"fold_{k}/checkpoints/last.ckpt")["global_step"]
            for run in (single, ddp)
        ]
        assert steps[0] == steps[1] == 2 * (64 // 16)
    assert 1 in odd  # at least one fold really needed padding under 2 processes

    # Each validation loss is of the model at that epoch, measured on the gathered predictions.
    losses = {
        run: np.array([float(r["val_loss"]) for k in (0, 1) for r in validation_rows(run, k)])
        for run in (single, ddp, other_seed)
    }
    ddp_shift = np.abs(losses[ddp] - losses[single]).mean()
    seed_shift = np.abs(losses[other_seed] - losses[single]).mean()
    print(f"mean |Δ val_loss|: DDP {ddp_shift:.4f}, other seed {seed_shift:.4f}")
    assert ddp_shift < seed_shift, (ddp_shift, seed_shift)
    assert sorted(patient_p(ddp)) == sorted(slices.subjects)  # rank 0 wrote every prediction


def test_ranks_deal_out_the_same_global_batches(store):
    """What Lightning does with our sampler under DDP: each global step sees the same slices."""
    from lightning.fabric.utilities.distributed import DistributedSamplerWrapper
    from torch.utils.data import BatchSampler

    s = SliceStore(store)
    ds = IndexedSlices(s, s.subjects, 20, sorted(s.subjects))
    config = TrainConfig(store=str(store), out="unused", batch_size=8, epoch_slices=64)
    single = [b.tolist() for b in (batch["item"] for batch in make_train_loader(ds, config, 0, 20))]
    ranks = []
    for rank in range(2):
        loader = make_train_loader(ds, config, 0, 20, world_size=2)
        assert loader.batch_size == 4
        sampler = DistributedSamplerWrapper(
            loader.sampler, num_replicas=2, rank=rank, shuffle=False
        )
        ranks.append(list(BatchSampler(sampler, loader.batch_size, drop_last=True)))
    assert len(single) == len(ranks[0]) == len(ranks[1]) == 8
    for k, batch in enumerate(single):
        assert sorted(batch) == sorted(ranks[0][k] + ranks[1][k])


def test_global_batch_must_divide_among_processes():
    from gliograde.core.errors import UsageError
    from gliograde.train.sampling import per_process_batch

    assert per_process_batch(32, 4) == 8
    with pytest.raises(UsageError, match="multiple of 3"):
        per_process_batch(32, 3)


def test_ddp_draws_new_slices_each_epoch(store):
    """Under DDP, Lightning wraps our sampler; set_epoch must reach it, or every epoch would draw
    the same slices (Lightning before 2.6.1 did not forward it)."""
    from lightning.fabric.utilities.distributed import DistributedSamplerWrapper

    s = SliceStore(store)
    ds = IndexedSlices(s, s.subjects, 20, sorted(s.subjects))
    config = TrainConfig(store=str(store), out="unused", batch_size=8, epoch_slices=64)
    loader = make_train_loader(ds, config, 0, 20, world_size=2)
    wrapper = DistributedSamplerWrapper(loader.sampler, num_replicas=2, rank=0, shuffle=False)
    epochs = []
    for epoch in (0, 1):
        wrapper.set_epoch(epoch)
        epochs.append(list(wrapper))
    assert epochs[0] != epochs[1]
    loader.sampler.set_epoch(1)  # rank 0 takes every other draw of the epoch's sequence
    assert epochs[1] == list(loader.sampler)[0::2]


STOP_TRAIN = [
    *TRAIN[:2], "--epochs", "6", "--epoch-slices", "256", *TRAIN[6:], "--devices", "2",
    "--fold", "0",
]  # fmt: skip


def ddp_command(*args) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "gliograde", *map(str, args),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def ddp_straight(store, tmp_path_factory):
    """Fold 0 trained under DDP, never interrupted."""
    out = tmp_path_factory.mktemp("ddp-straight") / "run"
    gliograde("train", store, "--out", out, *STOP_TRAIN, ddp=True)
    return out


@pytest.mark.slow  # trains under torchrun, stopped and resumed
@pytest.mark.parametrize(
    "stop", ["SIGTERM to the launcher", "Ctrl-C to the process group"], ids=["SIGTERM", "Ctrl-C"]
)
def test_a_stopped_ddp_train_says_how_to_resume_and_resumes_exactly(
    store, ddp_straight, tmp_path, stop
):
    """A scheduler's SIGTERM to torchrun (which passes it on to its workers), or Ctrl-C in a
    terminal (SIGINT to every process of the group, and torchrun's echo of it): both ranks stop
    together at a batch's end (gliograde.train.signals) and say how to resume; ``--resume``
    under DDP ends with exactly the uninterrupted DDP run's weights."""
    import os
    import signal
    import time

    import torch

    from gliograde.model.weights import load_state_dict

    stopped = tmp_path / "run"
    proc = subprocess.Popen(
        ddp_command("train", store, "--out", stopped, *STOP_TRAIN),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    last = stopped / "fold_0" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not last.is_file():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-3000:]
        time.sleep(0.01)
    if stop.startswith("SIGTERM"):
        proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0
    said = [line for line in err.splitlines() if "gliograde: error: fold_0: stopped" in line]
    assert said and "run the same command with --resume to continue" in said[0], err[-3000:]
    assert not (stopped / "fold_0" / "model.safetensors").exists()
    assert load_checkpoint(last)["epoch"] < 5  # it stopped before the end

    gliograde("train", store, "--out", stopped, *STOP_TRAIN, "--resume", ddp=True)
    want = load_state_dict(ddp_straight / "fold_0" / "checkpoints" / "last.ckpt")
    got = load_state_dict(last)
    assert want.keys() == got.keys()
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=0, msg=k)
