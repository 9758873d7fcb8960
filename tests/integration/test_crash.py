"""kill -9 in the middle of prepare and of train, then the same command again: nothing lost.

Real subprocesses, killed with SIGKILL (no clean-up code can run), on SYNTHETIC data.
"""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from gliograde.io.synth import synth_cohort
from gliograde.model.weights import load_checkpoint, load_state_dict
from gliograde.preprocess.slices import PrepareConfig
from gliograde.store.write import prepare
from gliograde.train.resume import read_log
from helpers.runs import train_config

pytestmark = pytest.mark.slow  # trains in child processes, killed and resumed

CLI = [sys.executable, "-m", "gliograde"]


def gliograde(*args):
    result = subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def start(*args):
    return subprocess.Popen(
        [*CLI, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def kill_when(proc, ready, timeout=120.0):
    """SIGKILL ``proc`` as soon as ``ready()`` holds; fail if it finished first."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "the process ended before it could be killed"
        assert time.monotonic() < deadline, "timed out waiting to kill"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def store_files(store):
    """Relative path → bytes of the slice data and index (what must not depend on a crash)."""
    names = ["index.csv", "splits.json", "options.json"]
    names += [
        str(p.relative_to(store)) for p in sorted((store / "subjects").rglob("*")) if p.is_file()
    ]
    return {n: (store / n).read_bytes() for n in names}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """8 SYNTHETIC subjects, large enough (96×96×60) that prepare takes a few seconds."""
    out = tmp_path_factory.mktemp("crash") / "cohort"
    synth_cohort(out, subjects=8, lgg_fraction=0.4, seed=5, shape=(96, 96, 60), quiet=True)
    return out


def test_kill_9_during_prepare_then_again_gives_the_same_store(cohort, tmp_path):
    straight, crashed = tmp_path / "straight", tmp_path / "crashed"
    gliograde("prepare", cohort, "--out", straight, "--workers", "1")

    proc = start("prepare", cohort, "--out", crashed, "--workers", "1")
    done = crashed / "subjects"
    kill_when(
        proc,
        lambda: (
            done.is_dir() and len([p for p in done.iterdir() if not p.name.startswith(".")]) >= 2
        ),
    )
    assert not (crashed / "manifest.json").exists()  # killed mid-run, not after
    n_before = len([p for p in done.iterdir() if not p.name.startswith(".")])
    assert 2 <= n_before < 8

    gliograde("prepare", cohort, "--out", crashed, "--workers", "1")
    assert not list(done.glob(".tmp-*"))  # the interrupted subject's leftovers are gone
    assert store_files(crashed) == store_files(straight)


@pytest.fixture(scope="module")
def store(cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("crash") / "store"
    prepare(cohort, out, PrepareConfig(slices="brain", size=32, folds=2), quiet=True)
    return out


TRAIN = [
    "--fold",
    "0",
    "--device",
    "cpu",
    "--epochs",
    "5",
    "--epoch-slices",
    "256",
    "--batch-size",
    "16",
    "--patience",
    "0",
    "--no-progress",
]


@pytest.fixture(scope="module")
def straight(store, tmp_path_factory):
    """The same training, never interrupted."""
    out = tmp_path_factory.mktemp("crash") / "straight"
    gliograde("train", store, "--out", out, *TRAIN)
    return out


def assert_same_weights(a_ckpt, b_ckpt):
    a, b = load_state_dict(a_ckpt), load_state_dict(b_ckpt)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=0, msg=k)


def test_kill_9_during_train_then_resume_continues_and_completes(store, straight, tmp_path):
    crashed = tmp_path / "crashed"

    proc = start("train", store, "--out", crashed, *TRAIN)
    last = crashed / "fold_0" / "checkpoints" / "last.ckpt"
    kill_when(proc, last.is_file)  # Lightning writes checkpoints to a temporary file, then moves
    epoch_at_kill = load_checkpoint(last)["epoch"]
    assert epoch_at_kill < 4 and not (crashed / "fold_0" / "model.safetensors").exists()

    result = gliograde("train", store, "--out", crashed, *TRAIN, "--resume")
    assert f"fold_0: resuming after epoch {epoch_at_kill} ({last})" in result.stderr
    final = load_checkpoint(last)
    assert final["epoch"] == 4 and final["global_step"] == 5 * 256 // 16
    # Optimizer, scheduler, sampler and augmentation all continue where they were: the weights
    # are those of the run that was never interrupted (CPU training is deterministic).
    assert_same_weights(straight / "fold_0" / "checkpoints" / "last.ckpt", last)
    log = read_log(crashed / "fold_0" / "logs" / "metrics.csv")
    assert [int(r["epoch"]) for r in log if r.get("val_loss")] == [0, 1, 2, 3, 4]
    assert (crashed / "fold_0" / "model.safetensors").is_file()
    assert (crashed / "predictions_slices.csv").is_file()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stopped_train_says_how_to_resume_and_resumes_exactly(store, straight, tmp_path, sig):
    stopped = tmp_path / "stopped"
    # As from a terminal: SIGINT at its default (a shell's background job would ignore it).
    proc = subprocess.Popen(
        [*CLI, "train", str(store), "--out", str(stopped), *TRAIN],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    last = stopped / "fold_0" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not last.is_file():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("gliograde: error: fold_0: stopped; epochs up to ")
    assert "run the same command with --resume to continue" in line
    assert not (stopped / "fold_0" / "model.safetensors").exists()
    gliograde("train", store, "--out", stopped, *TRAIN, "--resume")
    assert_same_weights(straight / "fold_0" / "checkpoints" / "last.ckpt", last)


def test_a_full_disk_while_training_keeps_finished_folds_only(store, tmp_path, monkeypatch):
    import errno

    from gliograde.core.errors import GliogradeError
    from gliograde.train import fit
    from gliograde.train.folds import train_folds

    export = fit.export_weights
    calls = []

    def full_disk_on_the_second_fold(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return export(*args, **kwargs)

    monkeypatch.setattr(fit, "export_weights", full_disk_on_the_second_fold)
    run = tmp_path / "run"
    config = train_config(store, run, select="last")
    with pytest.raises(GliogradeError, match=r"finished folds kept: fold_0\)"):
        train_folds(config)
    assert (run / "fold_0" / "model.safetensors").is_file() and not (run / "fold_1").exists()
    monkeypatch.setattr(fit, "export_weights", export)
    config.resume = True
    assert train_folds(config) == [0, 1] and (run / "fold_1" / "model.safetensors").is_file()


def test_a_second_train_into_the_same_run_is_told_who_holds_it(store, tmp_path):
    from gliograde.core.lock import FolderBusy
    from gliograde.run.config import TrainConfig
    from gliograde.train.folds import train_folds
    from helpers.processes import lock_held_elsewhere

    run = tmp_path / "run"
    with lock_held_elsewhere(run, "gliograde train") as pid:
        config = TrainConfig(str(store), str(run), folds=[0], epochs=1, device="cpu")
        with pytest.raises(FolderBusy, match=rf"process {pid} .*\(gliograde train, since"):
            train_folds(config)
