"""The whole bench: its configuration, the run, the verdicts and the printed table."""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from gliograde.bench.pipeline import bench_predict, bench_prepare
from gliograde.bench.process import in_fresh_process
from gliograde.core.console import say
from gliograde.core.files import write_json

BRATS_SHAPE = (240, 240, 155)
TARGETS = {  # name: (target, "at least" or "at most")
    "store_vs_article": (100.0, "min"),  # the store at least 100× the article's style
    "store_vs_monai_cache": (1.0, "min"),  # at least MONAI CacheDataset's best throughput
    "store_vs_monai_persistent": (2.0, "min"),  # at least 2× MONAI's PersistentDataset
    "store_mem_vs_monai_cache": (0.5, "max"),  # RSS + warm page cache vs the leaner MONAI cache
    "train_vs_model": (0.9, "min"),  # end-to-end training at least 0.9 of the model alone
    "prepare_vs_floor": (1.5, "max"),  # prepare at most 1.5× the same-inflater floor, 1 worker
    "anon_growth": (0.10, "max"),  # private memory within 10 % from 20 to 200 subjects
    "predict_ensemble_noseg_s": (10.0, "max"),  # 5-fold ensemble, no seg, process start incl.
    "predict_ensemble_seg_s": (6.0, "max"),  # the same with the segmentation
}
LOADERS = ("article", "monai_cache", "monai_cache_fp16", "monai_persistent", "store")


@dataclass
class BenchConfig:
    """Options of ``gliograde bench``."""

    subjects: int = 20
    batch_size: int = 32
    train_steps: int = 30  # timed, after the warm-up steps
    article_slices: int = 64  # the article's style is slow: a few batches tell its rate
    loader_slices: int = 1024
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
    root = Path(config.work) if keep else Path(tempfile.mkdtemp(prefix="gliograde-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        cohort = synthetic(root / "cohort", config.subjects, BRATS_SHAPE, seed=0)
        say("bench: prepare against the load floors")
        results["prepare"] = bench_prepare(cohort, root)
        store = root / "store_w1_0"
        results["loaders"] = bench_loaders(config, cohort, store, root)
        say("bench: training, model alone and end to end, each in its own process")
        results["training"] = bench_training(config, store)
        say("bench: predict one patient with a 5-fold ensemble, with and without seg")
        results["predict"] = bench_predict(cohort, brain_store(cohort, root), root)
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
    for kind in LOADERS:
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


def bench_training(config: BenchConfig, store: Path) -> dict:
    from gliograde.store.read import SliceStore

    size = SliceStore(store).manifest["slice_shape"][-1]
    steps = {"batch_size": config.batch_size, "steps": config.train_steps}
    alone = in_fresh_process("measure_model_alone", size=size, **steps)
    end_to_end = in_fresh_process("measure_end_to_end", store=str(store), **steps)
    epoch = in_fresh_process("measure_epoch_with_validation", store=str(store), **steps)
    return {
        "model_alone_slices_per_s": alone["slices_per_s"],
        "end_to_end_slices_per_s": end_to_end["slices_per_s"],
        "epoch_with_validation": epoch,
        **alone,
    }


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
    """Each target: the measured value, the target, and whether it is met.

    MONAI is given its best setting for each comparison: the faster of its two in-memory caches
    for throughput, the leaner of them for memory.
    """
    lo, mem, p = r["loaders"], r["memory"], r["predict"]
    rate = {k: v["slices_per_s"] for k, v in lo.items()}
    monai_rate = max(rate["monai_cache"], rate["monai_cache_fp16"])
    monai_mem = min(lo["monai_cache"]["memory_mb"], lo["monai_cache_fp16"]["memory_mb"])
    a, b = (mem[k]["peak_anon_mb"] for k in sorted(mem, key=int))
    t = r["training"]
    values = {
        "store_vs_article": rate["store"] / rate["article"],
        "store_vs_monai_cache": rate["store"] / monai_rate,
        "store_vs_monai_persistent": rate["store"] / rate["monai_persistent"],
        "store_mem_vs_monai_cache": lo["store"]["memory_mb"] / monai_mem,
        "train_vs_model": t["end_to_end_slices_per_s"] / t["model_alone_slices_per_s"],
        "prepare_vs_floor": r["prepare"]["1"]["ratio"],
        "anon_growth": abs(b - a) / a,
        "predict_ensemble_noseg_s": p["noseg"]["wall_s"],
        "predict_ensemble_seg_s": p["seg"]["wall_s"],
    }
    out = {}
    for name, value in values.items():
        target, kind = TARGETS[name]
        out[name] = {"value": value, "target": target, "met": met(value, target, kind)}
    return out


def met(value: float, target: float, kind: str) -> bool:
    return value >= target if kind == "min" else value <= target


NAMES = {
    "article": "NIfTI per item (article)",
    "monai_cache": "MONAI CacheDataset, float32",
    "monai_cache_fp16": "MONAI CacheDataset, float16",
    "monai_persistent": "MONAI PersistentDataset",
    "store": "gliograde slice store",
}


def format_results(r: dict) -> str:
    m = r["machine"]
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, "
        f"Python {m['python']}, torch {m['torch']}, GPU {m['gpu'] or 'none'}",
    ]
    lines += loader_lines(r["loaders"]) + training_lines(r["training"])
    lines += prepare_lines(r["prepare"]) + predict_lines(r["predict"])
    lines += memory_lines(r["memory"]) + verdict_lines(r)
    return "\n".join(lines)


def mb(value) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def loader_lines(lo: dict) -> list[str]:
    head = "slices/s warm  cold  set-up s  added RSS MB  page cache MB  memory MB"
    lines = ["", f"a. loaders, 240×240 tumour slices, batch 32, 0 workers   {head}"]
    for kind, v in lo.items():
        lines.append(
            f"   {NAMES[kind]:<38}{v['slices_per_s']:>19.0f}{v['cold_slices_per_s']:>6.0f}"
            f"{v['setup_s']:>10.1f}{v['added_rss_mb']:>14.0f}{mb(v['page_cache_mb']):>15}"
            f"{v['memory_mb']:>11.0f}"
        )
    return lines


def training_lines(t: dict) -> list[str]:
    e = t["epoch_with_validation"]
    return [
        "",
        f"b. training at {t['size']}×{t['size']}, batch {t['batch_size']}, {t['steps']} timed "
        f"steps: model alone {t['model_alone_slices_per_s']:.1f} slices/s, end to end "
        f"{t['end_to_end_slices_per_s']:.1f} slices/s",
        f"   one epoch with validation: {e['epoch_s']:.1f} s ({e['train_slices']} training "
        f"slices, {e['select_slices']} select slices scored in {e['validation_s']:.1f} s)",
    ]


def prepare_lines(prep: dict) -> list[str]:
    lines = ["", "c. prepare vs the load floors          floor s  nibabel s  prepare s  ratio"]
    for w, v in prep.items():
        lines.append(
            f"   {w} worker(s){'':<26}{v['floor_s']:>8.1f}{v['nibabel_floor_s']:>11.1f}"
            f"{v['prepare_s']:>11.1f}{v['ratio']:>7.2f}"
        )
    return lines


def predict_lines(p: dict) -> list[str]:
    lines = ["", "d. predict one patient, 5-fold ensemble at 240×240, process start included"]
    for path, label in (("seg", "with seg"), ("noseg", "without seg")):
        v = p[path]
        runs = ", ".join(f"{x:.1f}" for x in v["all_wall_s"])
        lines.append(f"   {label:<12} {v['wall_s']:.1f} s best of ({runs}), {v['n_slices']} slices")
    return lines


def memory_lines(mem: dict) -> list[str]:
    lines = ["", "e. peak private memory (RssAnon) while training at 240×240"]
    for n, v in mem.items():
        lines.append(
            f"   {n:>4} subjects ({v['slices']} slices): {v['peak_anon_mb']:.0f} MB "
            f"(peak RSS {v['peak_rss_mb']:.0f} MB)"
        )
    return lines


def verdict_lines(r: dict) -> list[str]:
    lines = ["", "targets"]
    for k, v in r["verdicts"].items():
        kind = "≥" if TARGETS[k][1] == "min" else "≤"
        state = "met" if v["met"] else "MISSED"
        lines.append(f"   {k:<27}{v['value']:>10.3g}   target {kind} {v['target']:<6g} {state}")
    return lines + [f"\nbench wall time: {r['wall_s']:.0f} s"]
