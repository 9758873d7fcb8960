"""c and d. ``prepare`` against the NIfTI load floors; ``predict`` wall times."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def inflate_floor(subject) -> str:
    """Inflate a subject's ``.nii.gz`` files with the inflater ``prepare`` uses (ISA-L's when
    installed) and view them as arrays: what ``prepare`` cannot go below."""
    from gliograde.io.nifti import file_proxy, gunzip_image, open_image

    for path in subject.files.values():
        img = open_image(path)
        raw = gunzip_image(path, img)
        np.frombuffer(raw, dtype=img.get_data_dtype(), offset=int(file_proxy(img).offset))
    return subject.subject_id


def nibabel_floor(subject) -> str:
    """Load a subject's files with nibabel's own (streaming) reader: the usual way."""
    from gliograde.io.nifti import load_nifti

    for path in subject.files.values():
        np.asanyarray(load_nifti(path).dataobj)
    return subject.subject_id


def timed(fn, *args, **kwargs) -> float:
    """Seconds ``fn(*args, **kwargs)`` took (an iterator it returns is run to its end)."""
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    if hasattr(result, "__next__"):
        list(result)
    return time.perf_counter() - started


def measure_prepare(cohort: str, root: str, repeats: int = 2) -> dict:
    """:func:`bench_prepare` in a fresh process that has not imported PyTorch, as the
    ``prepare`` command has not (with PyTorch imported, the same in-process ``prepare`` took
    about 20 % longer here)."""
    return bench_prepare(Path(cohort), Path(root), repeats)


def bench_prepare(cohort: Path, root: Path, repeats: int = 2) -> dict:
    """Best-of-``repeats`` wall times of the floors and of ``prepare``, per worker count.

    With 1 worker everything runs in this process (no pool); with one per core the floors run in
    the same kind of pool as ``prepare``, so both pay its start-up. Both run with the memory
    settings of ``gliograde prepare`` (:mod:`gliograde.core.memory`).
    """
    from gliograde.core.memory import reuse_freed_memory
    from gliograde.core.parallel import default_workers, map_with_progress
    from gliograde.io.layouts import discover
    from gliograde.preprocess.slices import PrepareConfig
    from gliograde.store.write import prepare

    subjects = discover(cohort).subjects
    reuse_freed_memory()  # as the prepare command does, for the floors and prepare alike
    out = {}
    for workers in sorted({1, default_workers()}):
        runs: dict[str, list[float]] = {"floor_s": [], "nibabel_floor_s": [], "prepare_s": []}
        for r in range(repeats):  # interleaved, so that all see the same machine state
            for key, fn in (("floor_s", inflate_floor), ("nibabel_floor_s", nibabel_floor)):
                runs[key].append(timed(map_with_progress, fn, subjects, workers, "", quiet=True))
            target = root / f"store_w{workers}_{r}"
            shutil.rmtree(target, ignore_errors=True)
            seconds = timed(
                prepare, cohort, target, PrepareConfig("tumor"), workers=workers, quiet=True
            )
            runs["prepare_s"].append(seconds)
        best = {k: min(v) for k, v in runs.items()}
        out[str(workers)] = best | {
            "ratio": best["prepare_s"] / best["floor_s"],
            "nibabel_ratio": best["prepare_s"] / best["nibabel_floor_s"],
            "all": runs,
        }
    return out


def timing_run(store: Path, run: Path, folds: int = 5) -> Path:
    """A run folder of ``folds`` untrained fold models (the time does not depend on the weights),
    complete as ``train`` writes one: config, folds, weights with their checksums, calibration."""
    import torch
    from safetensors.torch import save_file

    from gliograde.model.network import GradeNet
    from gliograde.run import Run
    from gliograde.run.config import RunConfig, TrainConfig
    from gliograde.store.read import SliceStore

    manifest = SliceStore(store).manifest
    train = TrainConfig(store=str(store), out=str(run), folds=list(range(folds)))
    opened = Run.create(run, RunConfig(train, manifest))
    for k in range(folds):
        torch.manual_seed(k)
        weights = {n: v.contiguous() for n, v in GradeNet().state_dict().items()}
        path = opened.fold_dir(k) / "model.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(weights, path, metadata={"slice_size": str(manifest.slice_size)})
        opened.record_weights(path)
    opened.write_uncalibrated()
    return run


def measure_forward(run: str, n_slices: int, repeats: int = 3) -> dict:
    """The forward passes alone of what ``predict`` runs on one patient: the run's models loaded
    as ``predict`` loads them (not timed), then every scored slice as is and the top
    ``TTA_SLICES`` flipped two ways, on slices already in memory, in ``predict``'s precision.
    Best of ``repeats`` after one warm-up."""
    import torch

    from gliograde.infer.grader import Grader
    from gliograde.infer.models import VARIANTS, run_models, slice_outputs
    from gliograde.infer.patient import TTA_SLICES

    grader = Grader.open(Path(run))
    size = grader.run.manifest.slice_size
    x = torch.randn(n_slices, 4, size, size)

    def forward():
        slice_outputs(grader.models, x)
        run_models(grader.models, x[:TTA_SLICES], variants=VARIANTS[1:])

    forward()
    times = [timed(forward) for _ in range(repeats)]
    return {"forward_s": min(times), "all_forward_s": times, "precision": grader.precision}


def bench_predict(cohort: Path, store: Path, root: Path, repeats: int = 3) -> dict:
    """``gliograde predict`` of one patient with a 5-fold ensemble, with and without its
    segmentation, process start included, best of ``repeats`` (``store``: a ``brain`` store);
    and the ensemble's forward passes alone on as many slices, in a fresh process."""
    from gliograde.bench.process import in_fresh_process

    run = timing_run(store, root / "timing-run", folds=5)
    subject = sorted(p for p in cohort.iterdir() if p.is_dir())[0]
    cmd = [sys.executable, "-m", "gliograde", "predict", str(run), str(subject)]
    out: dict = {"subject": subject.name, "folds": 5}
    for path, extra in (("seg", []), ("noseg", ["--ignore-seg"])):
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            result = subprocess.run([*cmd, "--json", *extra], capture_output=True, text=True)
            times.append(time.perf_counter() - started)
            if result.returncode != 0:
                raise RuntimeError(f"predict failed:\n{result.stderr[-2000:]}")
        n = json.loads(result.stdout)[0]["n_slices"]
        forward = in_fresh_process("measure_forward", run=str(run), n_slices=n, repeats=repeats)
        wall = min(times)
        out[path] = {"wall_s": wall, "all_wall_s": times, "n_slices": n, **forward}
        out[path]["ratio"] = wall / forward["forward_s"]
    return out
