"""The whole bench: its configuration, the run, the verdicts and the printed table."""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from gliograde.bench.loaders import LOADER_KINDS
from gliograde.bench.pipeline import bench_predict
from gliograde.bench.process import in_fresh_process
from gliograde.bench.scans import bench_raw_scan
from gliograde.core.console import say
from gliograde.core.files import write_json

BRATS_SHAPE = (240, 240, 155)
TARGETS = {  # name: (target, "min": at least, "max": at most, "info": no target)
    "store_vs_article": (100.0, "min"),  # the store at least 100× the article's style
    "store_vs_monai_cache": (1.0, "min"),  # the page-cache store against MONAI's RAM cache
    "store_vs_monai_persistent": (2.0, "min"),  # at least 2× MONAI's PersistentDataset
    "store_mem_vs_monai_cache": (0.5, "max"),  # RSS + warm page cache vs the leaner MONAI cache
    "store_resident_vs_monai_cache": (1.5, "min"),  # --resident against MONAI's best cache
    "store_resident_mem_vs_monai_cache": (1.0, "max"),  # ... and its memory, the leaner MONAI
    "train_bf16_vs_fp32": (1.0, "min"),  # end to end: auto's bf16 must pay where it is chosen
    "train_vs_model": (0.9, "min"),  # end to end at least 0.9 of the model alone (auto)
    "train_vs_peak": (0.5, "min"),  # end-to-end training FLOP/s against the chip's peak (auto)
    "prepare_vs_floor": (2.5, "max"),  # prepare at most 2.5× the same-inflater floor, 1 worker
    "anon_growth": (0.10, "max"),  # private memory within 10 % from 20 to 200 subjects
    "predict_vs_forward_seg": (1.5, "max"),  # the predict process against its forward passes
    "predict_vs_forward_noseg": (1.5, "max"),
    "predict_ensemble_seg_s": (None, "info"),  # seconds move between machines of one kind
    "predict_ensemble_noseg_s": (None, "info"),
    "dicom_to_grade_s": (90.0, "max"),  # one raw head from DICOM to graded, skull stripping incl.
    "train_3d_peak_mb": (4096.0, "max"),  # each 3D network alone, default grid and batch (b2)
}


@dataclass
class BenchConfig:
    """Options of ``gliograde bench``."""

    subjects: int = 20
    batch_size: int = 32
    train_steps: int = 30  # timed, after the warm-up steps
    train_repeats: int = 2  # each training measurement, interleaved; the best is kept
    article_slices: int = 64  # the article's style is slow: a few batches tell its rate
    loader_slices: int | None = None  # None: a whole epoch of the store's slices
    memory_subjects: tuple[int, int] = (20, 200)
    memory_steps: int = 20
    work: str | None = None  # keep the data here (default: a temporary folder, removed)
    json_out: str | None = None


def machine() -> dict:
    import torch

    from gliograde.core.parallel import default_workers

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu,
        "cores": default_workers(),
        "memory_gb": round(memory, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": gpu,
    }


def run_bench(config: BenchConfig) -> dict:
    """Run every measurement; return (and optionally write as JSON) the results and verdicts."""
    results: dict = {"machine": machine(), "config": asdict(config)}
    keep = config.work is not None
    root = (
        Path(config.work)
        if config.work is not None
        else Path(tempfile.mkdtemp(prefix="gliograde-bench-"))
    )
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        cohort = synthetic(root / "cohort", config.subjects, BRATS_SHAPE, seed=0)
        say("bench: prepare against the load floors")
        results["prepare"] = in_fresh_process("measure_prepare", cohort=str(cohort), root=str(root))
        store = root / "store_w1_0"
        results["loaders"] = bench_loaders(config, cohort, store, root)
        say("bench: training, model alone and end to end, each in its own process")
        results["training"] = bench_training(config, store)
        say("bench: each backbone alone, each in its own process")
        results["backbones"] = bench_backbones(config, store, results["training"])
        say("bench: predict one patient with a 5-fold ensemble, with and without seg")
        results["predict"] = bench_predict(cohort, brain_store(cohort, root), root)
        say("bench: one raw head from a DICOM export to a grade")
        results["raw_scan"] = bench_raw_scan(root, root / "timing-run")
        results["memory"] = bench_memory(config, root, store)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    results["wall_s"] = time.perf_counter() - started
    results["verdicts"] = verdicts(results)
    if config.json_out:
        write_json(Path(config.json_out), results)
    return results


def brain_store(cohort: Path, root: Path) -> Path:
    """The cohort prepared as ``prepare`` does by default (``--slices brain``): the store of a
    run that can grade with and without a segmentation."""
    from gliograde.core.parallel import default_workers
    from gliograde.preprocess.slices import PrepareConfig
    from gliograde.store.write import prepare

    store = root / "brain-store"
    if not (store / "manifest.json").is_file():
        prepare(cohort, store, PrepareConfig("brain"), workers=default_workers(), quiet=True)
    return store


def synthetic(folder: Path, n: int, shape: tuple[int, int, int], seed: int) -> Path:
    """A SYNTHETIC cohort (reused when already there)."""
    from gliograde.io.synth import synth_cohort

    if not (folder / "name_mapping.csv").is_file():
        say(f"bench: writing {n} SYNTHETIC subjects ({'×'.join(map(str, shape))})")
        synth_cohort(
            folder, n, 0.3, seed=seed, shape=shape, workers=os.cpu_count() or 1, quiet=True
        )
    return folder


def bench_loaders(config: BenchConfig, cohort: Path, store: Path, root: Path) -> dict:
    out = {}
    cache_dir = root / "monai-persistent"
    for kind in LOADER_KINDS:
        say(f"bench: loader, {kind}")
        shutil.rmtree(cache_dir, ignore_errors=True)
        out[kind] = in_fresh_process(
            "measure_loader",
            kind=kind,
            cohort=str(cohort),
            store=str(store),
            cache_dir=str(cache_dir),
            batch_size=config.batch_size,
            max_slices=config.article_slices if kind == "article" else config.loader_slices,
        )
    shutil.rmtree(cache_dir, ignore_errors=True)
    return out


# name: (measure, its options); "auto" is the precision train resolves to
TRAINING_RUNS: dict[str, tuple[str, dict[str, object]]] = {
    "alone_fp32": ("measure_model_alone", {"precision": "fp32"}),
    "alone_bf16": ("measure_model_alone", {"precision": "bf16"}),
    "end_to_end_fp32": ("measure_end_to_end", {"precision": "fp32"}),
    "end_to_end_bf16": ("measure_end_to_end", {"precision": "bf16"}),
    "end_to_end_bf16_resident": ("measure_end_to_end", {"precision": "bf16", "resident": True}),
}


def bench_training(config: BenchConfig, store: Path) -> dict:
    """Each training measurement in a fresh process, repeated ``train_repeats`` times
    interleaved (the machine's state drifts), the best kept; then an epoch with validation, the
    FLOPs of a training slice and the chip's peak."""
    from gliograde.core.devices import resolve_device
    from gliograde.store.read import SliceStore
    from gliograde.train.precision import resolve_precision

    size = SliceStore(store).manifest.slice_size
    steps = {"batch_size": config.batch_size, "steps": config.train_steps}
    where = {"size": size} | steps
    runs: dict[str, list[float]] = {name: [] for name in TRAINING_RUNS}
    epochs = []
    for _ in range(config.train_repeats):
        for name, (measure, options) in TRAINING_RUNS.items():
            at = where if measure == "measure_model_alone" else {"store": str(store)} | steps
            runs[name].append(in_fresh_process(measure, **at, **options)["slices_per_s"])
        epochs.append(in_fresh_process("measure_epoch_with_validation", store=str(store), **steps))
    return {
        "slices_per_s": {name: max(v) for name, v in runs.items()},
        "all_slices_per_s": runs,
        "auto_precision": resolve_precision("auto", resolve_device("auto")),
        "epoch_with_validation": min(epochs, key=lambda r: r["epoch_s"]),
        "flops": in_fresh_process("measure_flops", size=size),
        "peak": in_fresh_process("measure_peak", device=resolve_device("auto")),
        **where,
    }


def bench_backbones(config: BenchConfig, store: Path, training: dict) -> dict:
    """Each backbone's training items/s alone and its process's peak memory, in ``train``'s
    automatic precision, each in a fresh process: the 2D and 2.5D ones on slices of the store's
    size in the bench's batch, the 3D ones on volumes of their default grid in ``train``'s
    default batch for them (:data:`~gliograde.run.config.VOLUME_BATCH`)."""
    from gliograde.core.devices import resolve_device
    from gliograde.model.backbones import BACKBONES, Backbone
    from gliograde.run.config import VOLUME_BATCH
    from gliograde.train.precision import resolve_precision

    out = {}
    for name in BACKBONES:
        at = {"size": training["size"], "batch_size": config.batch_size}
        precision = measured_precision(training)
        if Backbone.named(name).is_3d:
            at["batch_size"] = VOLUME_BATCH
            precision = resolve_precision("auto", resolve_device("auto"), volumes=True)
        at |= {"steps": config.train_steps, "precision": precision, "backbone": name}
        out[name] = in_fresh_process("measure_model_alone", **at)
    return out


def bench_memory(config: BenchConfig, root: Path, first_store: Path) -> dict:
    """Peak private memory while training at 240×240 on the bench's store and on a larger one."""
    from gliograde.core.parallel import default_workers
    from gliograde.preprocess.slices import PrepareConfig
    from gliograde.store.read import SliceStore
    from gliograde.store.write import prepare

    out = {}
    for n in config.memory_subjects:
        store = first_store
        if len(SliceStore(first_store).subjects) != n:
            cohort = synthetic(root / f"cohort{n}", n, BRATS_SHAPE, seed=1)
            store = root / f"store{n}"
            if not (store / "manifest.json").is_file():
                prepare(
                    cohort, store, PrepareConfig("tumor"), workers=default_workers(), quiet=True
                )
        say(f"bench: private memory while training on {n} subjects (240×240)")
        out[str(n)] = in_fresh_process(
            "measure_train_memory",
            store=str(store),
            batch_size=config.batch_size,
            steps=config.memory_steps,
        )
    return out


def verdicts(r: dict) -> dict:
    """Each target: the measured value, the target, and whether it is met (None: information).

    MONAI is given its best setting for each comparison: the faster of its float32 and float16
    variants for throughput, the leaner for memory. A value that could not be measured (no
    ``fincore`` to count the page cache) is None and not met.
    """
    lo, mem, p = r["loaders"], r["memory"], r["predict"]
    rate = {k: v["slices_per_s"] for k, v in lo.items()}
    monai_cache = max(rate["monai_cache"], rate["monai_cache_fp16"])
    counted = [lo[k]["memory_mb"] for k in ("monai_cache", "monai_cache_fp16")]
    monai_mem = min((m for m in counted if m is not None), default=None)
    a, b = (mem[k]["peak_anon_mb"] for k in sorted(mem, key=int))
    values = {
        "store_vs_article": rate["store"] / rate["article"],
        "store_vs_monai_cache": rate["store"] / monai_cache,
        "store_vs_monai_persistent": rate["store"]
        / max(rate["monai_persistent"], rate["monai_persistent_fp16"]),
        "store_mem_vs_monai_cache": ratio_or_none(lo["store"]["memory_mb"], monai_mem),
        "store_resident_vs_monai_cache": rate["store_resident"] / monai_cache,
        "store_resident_mem_vs_monai_cache": ratio_or_none(
            lo["store_resident"]["memory_mb"], monai_mem
        ),
        **training_values(r["training"]),
        "prepare_vs_floor": r["prepare"]["1"]["ratio"],
        "anon_growth": abs(b - a) / a,
        "predict_vs_forward_seg": p["seg"]["ratio"],
        "predict_vs_forward_noseg": p["noseg"]["ratio"],
        "predict_ensemble_seg_s": p["seg"]["wall_s"],
        "predict_ensemble_noseg_s": p["noseg"]["wall_s"],
        "dicom_to_grade_s": r["raw_scan"]["wall_s"],
        "train_3d_peak_mb": peak_3d(r.get("backbones")),
    }
    out = {}
    for name, value in values.items():
        target, kind = TARGETS[name]
        if name == "train_bf16_vs_fp32" and r["training"]["auto_precision"] != "bf16":
            target, kind = None, "info"  # train does not choose bf16 here: nothing to judge
        out[name] = {"value": value, "target": target, "met": met(value, target, kind)}
    return out


def peak_3d(backbones: dict | None) -> float | None:
    """The highest training peak (RSS) among the 3D backbones, at their default grid and batch;
    None when the bench ran without its backbone section."""
    peaks = [m["peak_rss_mb"] for m in (backbones or {}).values() if m.get("grid")]
    return max(peaks) if peaks else None


def ratio_or_none(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def training_values(t: dict) -> dict:
    """The training verdicts: bf16 against fp32 end to end, end to end against the model alone
    in ``train``'s own precision (auto), and that end-to-end rate in FLOP/s against the peak."""
    rate, auto = t["slices_per_s"], measured_precision(t)
    flop_per_s = rate[f"end_to_end_{auto}"] * t["flops"]["train_flop_per_slice"]
    return {
        "train_bf16_vs_fp32": rate["end_to_end_bf16"] / rate["end_to_end_fp32"],
        "train_vs_model": rate[f"end_to_end_{auto}"] / rate[f"alone_{auto}"],
        "train_vs_peak": flop_per_s / t["peak"]["peak"][auto]["flop_per_s"],
    }


def measured_precision(t: dict) -> str:
    """``train``'s automatic precision, among those measured (fp16, on GPUs without bf16, is
    not: there the comparisons are in fp32)."""
    return t["auto_precision"] if t["auto_precision"] in ("fp32", "bf16") else "fp32"


def met(value: float | None, target: float | None, kind: str) -> bool | None:
    if kind == "info":
        return None
    if value is None:
        return False
    if target is None:
        raise ValueError(f"a {kind!r} verdict needs a target")
    return value >= target if kind == "min" else value <= target
