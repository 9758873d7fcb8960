"""``gliograde bench --gpu``: training, ``predict`` and a 5-fold cross-validation at full size.

Made for a GPU, it runs wherever it is started (on the device ``train`` would choose):

a. training slices/s at 240×240: the model alone on a batch already on the device against
   ``train``'s own path end to end, both with ``--resident``, ``--compile`` and ``train``'s
   automatic precision (bf16 where the device computes it natively);
b. ``predict`` in patients per second: one process grading a cohort with a 5-fold ensemble
   (untrained weights: the time does not depend on them), process start included;
c. the wall time of ``gliograde train`` (5-fold cross-validation, its defaults plus
   ``--resident --compile``) on a SYNTHETIC cohort the size of BraTS 2020 (369 subjects).

``--smoke`` runs the same code at tiny sizes, on the CPU in CI, so that the code is proven
before a GPU is lent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from gliograde.bench.printing import backbone_lines
from gliograde.bench.process import in_fresh_process
from gliograde.bench.report import BRATS_SHAPE, machine, met
from gliograde.core.console import say
from gliograde.core.files import write_json

TARGETS = {  # on an H100-class GPU (issue 26)
    "gpu_end_to_end_slices_per_s": (10_000.0, "min"),
    "gpu_end_to_end_vs_model": (0.9, "min"),
    "gpu_cv_minutes": (10.0, "max"),
}


@dataclass
class GpuBenchConfig:
    """Options of ``gliograde bench --gpu``."""

    subjects: int = 369  # BraTS 2020's training cohort
    shape: tuple[int, int, int] = BRATS_SHAPE
    batch_size: int = 256
    steps: int = 50  # timed, after the warm-up steps
    predict_subjects: int = 20
    epochs: int | None = None  # None: train's default
    compile: bool = True
    volume_batch: int = 16  # the 3D backbones' batch
    grid: int | None = None  # the 3D backbones' grid (None: train's default, 96)
    work: str | None = None  # keep the data here (default: a temporary folder, removed)
    json_out: str | None = None
    smoke: bool = False

    @classmethod
    def smoke_test(cls, work: str | None = None, json_out: str | None = None) -> GpuBenchConfig:
        """The same code at tiny sizes (CI, on the CPU): 20 subjects of 48×48×24 (6 LGG, so 5
        folds), 2 steps of 8 (3D: 2 volumes of 32³), 1 epoch of cross-validation; ``--compile``
        on the end-to-end line alone."""
        return cls(
            subjects=20,
            shape=(48, 48, 24),
            batch_size=8,
            steps=2,
            predict_subjects=2,
            epochs=1,
            volume_batch=2,
            grid=32,
            work=work,
            json_out=json_out,
            smoke=True,
        )


def run_gpu_bench(config: GpuBenchConfig) -> dict:
    """Run the three measurements; return (and optionally write as JSON) results and verdicts."""
    results: dict = {"machine": machine(), "config": asdict(config)}
    keep = config.work is not None
    root = (
        Path(config.work)
        if config.work is not None
        else Path(tempfile.mkdtemp(prefix="gliograde-gpu-bench-"))
    )
    root.mkdir(parents=True, exist_ok=True)
    try:
        store = brain_store(config, root)
        say("bench --gpu: training, model alone and end to end")
        results["training"] = gpu_training(config, store)
        say("bench --gpu: each backbone alone")
        results["backbones"] = gpu_backbones(config, results["training"])
        say(f"bench --gpu: predict {config.predict_subjects} patients in one process")
        results["predict"] = predict_rate(config, root, store)
        say(f"bench --gpu: 5-fold cross-validation on {config.subjects} SYNTHETIC subjects")
        results["cross_validation"] = cross_validation(config, root, store)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    results["verdicts"] = gpu_verdicts(results)
    if config.json_out:
        write_json(Path(config.json_out), results)
    return results


def brain_store(config: GpuBenchConfig, root: Path) -> Path:
    """The SYNTHETIC cohort prepared as ``prepare`` does by default (brain slices, 5 folds)."""
    from gliograde.bench.report import synthetic
    from gliograde.core.parallel import default_workers
    from gliograde.preprocess.slices import PrepareConfig
    from gliograde.store.write import prepare

    cohort = synthetic(root / "cohort", config.subjects, config.shape, seed=0)
    store = root / "store"
    if not (store / "manifest.json").is_file():
        say("bench --gpu: prepare (brain slices)")
        prepare(cohort, store, PrepareConfig("brain"), workers=default_workers(), quiet=True)
    return store


def gpu_training(config: GpuBenchConfig, store: Path) -> dict:
    """Slices/s of the model alone and of ``train``'s path, each in a fresh process."""
    from gliograde.core.devices import resolve_device
    from gliograde.store.read import SliceStore
    from gliograde.train.precision import resolve_precision

    size = SliceStore(store).manifest.slice_size
    precision = resolve_precision("auto", resolve_device("auto"))
    options = {"batch_size": config.batch_size, "steps": config.steps, "compile": config.compile}
    # Smoke mode: the model alone uncompiled; the end-to-end line compiles train's own path
    # with the aot_eager backend (train.fit.COMPILE_BACKEND): the graph and its backward are
    # captured as for inductor, but inductor's lowering and C++ code for the CPU would add a
    # minute of CI, and its GPU code is only made on a GPU anyway.
    alone_compiled = config.compile and not config.smoke
    backend = None if not config.compile else "aot_eager" if config.smoke else "inductor"
    alone = in_fresh_process(
        "measure_model_alone",
        size=size,
        precision=precision,
        **options | {"compile": alone_compiled},
    )
    end_to_end = in_fresh_process(
        "measure_end_to_end",
        store=str(store),
        precision=precision,
        resident=True,
        compile_backend=backend,
        **options,
    )
    return {
        "model_alone_slices_per_s": alone["slices_per_s"],
        "end_to_end_slices_per_s": end_to_end["slices_per_s"],
        "precision": precision,
        "size": size,
        "model_alone_compile": alone_compiled,
        "compile_backend": backend,
        "compiled_graphs": end_to_end["compiled_graphs"],
        **options,
    }


def gpu_backbones(config: GpuBenchConfig, training: dict) -> dict:
    """Each backbone's training rate alone and its peak memory (the GPU's and the process's), in
    ``train``'s automatic precision, each in a fresh process: 2D and 2.5D at the store's slice
    size in the bench's batch, 3D on volumes of ``config.grid`` in ``config.volume_batch``."""
    from gliograde.core.devices import resolve_device
    from gliograde.model.backbones import BACKBONES, Backbone
    from gliograde.train.precision import resolve_precision

    device = resolve_device("auto")
    out = {}
    for name in BACKBONES:
        volumes = Backbone.named(name).is_3d
        at = {"size": training["size"], "steps": config.steps, "backbone": name}
        at["batch_size"] = config.volume_batch if volumes else config.batch_size
        at["precision"] = resolve_precision("auto", device, volumes)
        at["grid"] = config.grid if volumes else None
        out[name] = in_fresh_process("measure_model_alone", **at)
    return out


def predict_rate(config: GpuBenchConfig, root: Path, store: Path) -> dict:
    """``gliograde predict RUN SUBJECT…`` of ``predict_subjects`` patients in one process."""
    from gliograde.bench.pipeline import timing_run

    run = timing_run(store, root / "timing-run", folds=5)
    cohort = root / "cohort"
    subjects = sorted(p for p in cohort.iterdir() if p.is_dir())[: config.predict_subjects]
    cmd = [sys.executable, "-m", "gliograde", "predict", str(run), *map(str, subjects), "--json"]
    wall, output = timed_command(cmd)
    graded = len(json.loads(output))
    return {"patients": graded, "wall_s": wall, "patients_per_s": graded / wall}


def cross_validation(config: GpuBenchConfig, root: Path, store: Path) -> dict:
    """The wall time of ``gliograde train STORE --resident [--compile]``: every fold, then the
    out-of-fold grading, process start included."""
    run = root / "cv-run"
    shutil.rmtree(run, ignore_errors=True)
    cmd = [sys.executable, "-m", "gliograde", "train", str(store), "--out", str(run)]
    # Smoke mode: no --compile here, where each fold would compile again on the CPU (minutes
    # of CI); the end-to-end line has run train's --compile path already.
    compiled = config.compile and not config.smoke
    cmd += ["--resident", "--no-progress", "--compile" if compiled else "--no-compile"]
    if config.epochs is not None:
        cmd += ["--epochs", str(config.epochs)]
    wall, _ = timed_command(cmd)
    folds = sorted(p.parent.name for p in run.glob("fold_*/model.safetensors"))
    return {
        "wall_s": wall,
        "minutes": wall / 60,
        "folds": folds,
        "epochs": config.epochs,
        "compile": compiled,
    }


def timed_command(cmd: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[2:4])} failed:\n{result.stderr[-3000:]}")
    return wall, result.stdout


def gpu_verdicts(r: dict) -> dict:
    """The GPU targets; None (not judged) in smoke mode or without a GPU."""
    t = r["training"]
    values = {
        "gpu_end_to_end_slices_per_s": t["end_to_end_slices_per_s"],
        "gpu_end_to_end_vs_model": t["end_to_end_slices_per_s"] / t["model_alone_slices_per_s"],
        "gpu_cv_minutes": r["cross_validation"]["minutes"],
    }
    judged = r["machine"]["gpu"] is not None and not r["config"]["smoke"]
    out = {}
    for name, value in values.items():
        target, kind = TARGETS[name]
        out[name] = {"value": value, "target": target, "met": met(value, target, kind)}
        if not judged:
            out[name]["met"] = None
    return out


def format_gpu_results(r: dict) -> str:
    m, t, p, cv = r["machine"], r["training"], r["predict"], r["cross_validation"]
    smoke = " (SMOKE MODE: tiny sizes, the figures mean nothing)" if r["config"]["smoke"] else ""
    compiled = "on" if t["compile"] else "off"
    if t.get("compile_backend") not in (None, "inductor"):
        compiled += f", backend {t['compile_backend']}"
    if t.get("model_alone_compile", t["compile"]) != t["compile"]:  # smoke mode
        compiled += " (the model alone: off)"
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores, GPU {m['gpu'] or 'none'}, torch {m['torch']}"
        + smoke,
        "",
        f"a. training at {t['size']}×{t['size']}, batch {t['batch_size']}, {t['steps']} timed "
        f"steps, {t['precision']}, --resident, --compile {compiled}",
        f"   model alone {t['model_alone_slices_per_s']:.0f} slices/s, end to end "
        f"{t['end_to_end_slices_per_s']:.0f} slices/s",
        *backbone_lines(r.get("backbones")),
        "",
        f"b. predict, 5-fold ensemble: {p['patients']} patients in {p['wall_s']:.1f} s "
        f"(process start included): {p['patients_per_s']:.2f} patients/s",
        "",
        f"c. 5-fold cross-validation (train --resident{' --compile' if cv['compile'] else ''}, "
        f"{cv['epochs'] or 'default'} epochs) on "
        f"{r['config']['subjects']} SYNTHETIC subjects: {cv['minutes']:.1f} min "
        f"({len(cv['folds'])} folds trained)",
        "",
        "targets (H100-class GPU)",
    ]
    for name, v in r["verdicts"].items():
        state = "not judged" if v["met"] is None else ("met" if v["met"] else "MISSED")
        lines.append(f"   {name:<30}{v['value']:>10.3g}   target {v['target']:g}   {state}")
    return "\n".join(lines)
