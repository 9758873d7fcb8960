"""c and d. ``prepare`` against the NIfTI load floor; ``predict`` wall time."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def load_floor(subject) -> str:
    """Merely load a subject's NIfTI files with nibabel: what prepare cannot go below."""
    import nibabel as nib

    for path in subject.files.values():
        np.asanyarray(nib.load(path).dataobj)
    return subject.subject_id


def bench_prepare(cohort: Path, root: Path, repeats: int = 2) -> dict:
    """Best-of-``repeats`` wall times of the nibabel floor and of ``prepare``, per worker count."""
    from gliograde.core.parallel import default_workers, map_with_progress
    from gliograde.io.layouts import discover
    from gliograde.preprocess.slices import PrepareConfig
    from gliograde.store.write import prepare

    subjects = discover(cohort).subjects
    out = {}
    for workers in sorted({1, default_workers()}):
        floor, full = [], []
        for r in range(repeats):  # interleaved, so that both see the same machine state
            started = time.perf_counter()
            list(map_with_progress(load_floor, subjects, workers, "floor", quiet=True))
            floor.append(time.perf_counter() - started)
            target = root / f"store_w{workers}_{r}"
            shutil.rmtree(target, ignore_errors=True)
            started = time.perf_counter()
            prepare(cohort, target, PrepareConfig("tumor"), workers=workers, quiet=True)
            full.append(time.perf_counter() - started)
        out[str(workers)] = {
            "floor_s": min(floor),
            "prepare_s": min(full),
            "ratio": min(full) / min(floor),
            "all_floor_s": floor,
            "all_prepare_s": full,
        }
    return out


def timing_run(store: Path, run: Path) -> Path:
    """A run folder with one untrained model (the time does not depend on the weights), complete
    as ``train`` writes one: config, folds, weights with their checksum, calibration."""
    from safetensors.torch import save_file

    from gliograde.core.files import write_json
    from gliograde.model.network import GradeNet
    from gliograde.model.weights import sha256_of
    from gliograde.run import RUN_FORMAT, UNCALIBRATED
    from gliograde.store.read import SliceStore

    manifest = SliceStore(store).manifest
    (run / "fold_0").mkdir(parents=True, exist_ok=True)
    config = {"run_format": RUN_FORMAT, "folds": [0], "store": str(store)}
    write_json(run / "config.json", config | {"store_manifest": manifest})
    weights = {k: v.contiguous() for k, v in GradeNet(plain=True).state_dict().items()}
    path = run / "fold_0" / "model.safetensors"
    save_file(weights, path, metadata={"slice_size": str(manifest["slice_shape"][-1])})
    write_json(run / "checksums.json", {"fold_0/model.safetensors": sha256_of(path)})
    write_json(run / "calibration.json", UNCALIBRATED)
    return run


def bench_predict(cohort: Path, store: Path, root: Path, repeats: int = 3) -> dict:
    run = timing_run(store, root / "timing-run")
    subject = sorted(p for p in cohort.iterdir() if p.is_dir())[0]
    cmd = [
        sys.executable,
        "-m",
        "gliograde",
        "predict",
        str(subject),
        "--model",
        str(run),
        "--json",
    ]
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise RuntimeError(f"predict failed:\n{result.stderr[-2000:]}")
    answer = json.loads(result.stdout)[0]
    return {
        "wall_s": min(times),
        "all_wall_s": times,
        "n_slices": answer["n_slices"],
        "subject": subject.name,
    }
