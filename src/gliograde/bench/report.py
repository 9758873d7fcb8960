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

SMALL_SHAPE = (64, 64, 48)
TARGETS = {
    "store_vs_article": 100.0,  # store loader at least 100× the article's style
    "store_vs_monai": 1.0,  # at least MONAI CacheDataset's throughput ...
    "store_rss_vs_monai": 0.1,  # ... with at most 1/10 of its memory
    "train_vs_model": 0.9,  # end-to-end training at least 0.9 of the model alone
    "prepare_vs_floor": 1.5,  # prepare at most 1.5× the nibabel load floor
    "anon_growth": 0.10,  # private memory within 10 % between 20 and 200 subjects
    "predict_s": 6.0,  # one patient, process start included
}


@dataclass
class BenchConfig:
    """Options of ``gliograde bench``."""

    subjects: int = 20
    batch_size: int = 32
    train_steps: int = 8
    article_slices: int = 64  # the article's style is slow: a few batches tell its rate
    loader_slices: int = 1024
    memory_subjects: tuple[int, int] = (20, 200)
    memory_steps: int = 40
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
        cohort = synthetic(root / "cohort", config.subjects, (240, 240, 155), seed=0)
        say("bench: prepare against the nibabel load floor")
        results["prepare"] = bench_prepare(cohort, root)
        store = root / "store_w1_0"
        results["loaders"] = bench_loaders(config, cohort, store)
        say("bench: training, model alone and end to end, each in its own process")
        results["training"] = bench_training(config, store)
        say("bench: predict one patient")
        results["predict"] = bench_predict(cohort, store, root)
        results["memory"] = bench_memory(config, root)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    results["wall_s"] = time.perf_counter() - started
    results["verdicts"] = verdicts(results)
    if config.json_out:
        write_json(Path(config.json_out), results)
    return results


def synthetic(folder: Path, n: int, shape: tuple[int, int, int], seed: int) -> Path:
    """A SYNTHETIC cohort (reused when already there)."""
    from gliograde.io.synth import synth_cohort

    if not (folder / "name_mapping.csv").is_file():
        say(f"bench: writing {n} SYNTHETIC subjects ({'×'.join(map(str, shape))})")
        synth_cohort(
            folder, n, 0.3, seed=seed, shape=shape, workers=os.cpu_count() or 1, quiet=True
        )
    return folder


def bench_loaders(config: BenchConfig, cohort: Path, store: Path) -> dict:
    out = {}
    for kind, n in (
        ("article", config.article_slices),
        ("monai", config.loader_slices),
        ("store", config.loader_slices),
    ):
        say(f"bench: loader, {kind}")
        out[kind] = in_fresh_process(
            "measure_loader",
            kind=kind,
            cohort=str(cohort),
            store=str(store),
            batch_size=config.batch_size,
            max_slices=n,
        )
    return out


def bench_training(config: BenchConfig, store: Path) -> dict:
    from gliograde.store.read import SliceStore

    size = SliceStore(store).manifest["slice_shape"][-1]
    alone = in_fresh_process(
        "measure_model_alone", size=size, batch_size=config.batch_size, steps=config.train_steps
    )
    end_to_end = in_fresh_process(
        "measure_end_to_end",
        store=str(store),
        batch_size=config.batch_size,
        steps=config.train_steps,
    )
    return {
        "model_alone_slices_per_s": alone["slices_per_s"],
        "end_to_end_slices_per_s": end_to_end["slices_per_s"],
        **alone,
    }


def bench_memory(config: BenchConfig, root: Path) -> dict:
    from gliograde.preprocess.slices import PrepareConfig
    from gliograde.store.write import prepare

    out = {}
    for n in config.memory_subjects:
        say(f"bench: private memory while training on {n} subjects ({SMALL_SHAPE})")
        small = synthetic(root / f"small{n}", n, SMALL_SHAPE, seed=1)
        small_store = root / f"small{n}-store"
        if not (small_store / "manifest.json").is_file():
            prepare(small, small_store, PrepareConfig("tumor", min_tumor_pixels=20), quiet=True)
        out[str(n)] = in_fresh_process(
            "measure_train_memory",
            store=str(small_store),
            batch_size=config.batch_size,
            steps=config.memory_steps,
        )
    return out


def verdicts(r: dict) -> dict:
    """Each target: the measured value, the target, and whether it is met."""
    lo = r["loaders"]
    mem = r["memory"]
    a, b = (mem[k]["peak_anon_mb"] for k in sorted(mem, key=int))
    out = {
        "store_vs_article": lo["store"]["slices_per_s"] / lo["article"]["slices_per_s"],
        "store_vs_monai": lo["store"]["slices_per_s"] / lo["monai"]["slices_per_s"],
        "store_rss_vs_monai": lo["store"]["added_rss_mb"] / lo["monai"]["added_rss_mb"],
        "train_vs_model": r["training"]["end_to_end_slices_per_s"]
        / r["training"]["model_alone_slices_per_s"],
        "prepare_vs_floor": max(v["ratio"] for v in r["prepare"].values()),
        "anon_growth": abs(b - a) / a,
        "predict_s": r["predict"]["wall_s"],
    }
    at_most = {"store_rss_vs_monai", "prepare_vs_floor", "anon_growth", "predict_s"}
    return {
        k: {
            "value": v,
            "target": TARGETS[k],
            "met": v <= TARGETS[k] if k in at_most else v >= TARGETS[k],
        }
        for k, v in out.items()
    }


def format_results(r: dict) -> str:
    m, lo, t, p, mem = r["machine"], r["loaders"], r["training"], r["predict"], r["memory"]
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, "
        f"Python {m['python']}, torch {m['torch']}, GPU {m['gpu'] or 'none'}",
        "",
        "a. loader (DataLoader, batch 32, 0 workers)  slices/s   setup s   "
        "peak RSS MB   added RSS MB",
    ]
    names = {
        "article": "NIfTI per item (article)",
        "monai": "MONAI CacheDataset",
        "store": "gliograde slice store",
    }
    for kind, v in lo.items():
        lines.append(
            f"   {names[kind]:<41}{v['slices_per_s']:>9.1f}{v['setup_s']:>10.1f}"
            f"{v['peak_rss_mb']:>14.0f}{v['added_rss_mb']:>15.0f}"
        )
    lines += [
        "",
        f"b. training at {t['size']}×{t['size']}, batch {t['batch_size']}: model alone "
        f"{t['model_alone_slices_per_s']:.1f} slices/s, end to end "
        f"{t['end_to_end_slices_per_s']:.1f} slices/s",
        "",
        f"c. prepare vs nibabel load floor{'floor s':>25}   prepare s   ratio",
    ]
    for w, v in r["prepare"].items():
        lines.append(
            f"   {w} worker(s){'':<37}{v['floor_s']:>7.1f}{v['prepare_s']:>12.1f}{v['ratio']:>8.2f}"
        )
    lines += [
        "",
        f"d. predict one patient ({p['n_slices']} slices, one 240×240 model), process "
        f"start included: {p['wall_s']:.1f} s (runs: "
        f"{', '.join(f'{x:.1f}' for x in p['all_wall_s'])})",
        "",
        "e. peak private memory (RssAnon) while training",
    ]
    for n, v in mem.items():
        lines.append(
            f"   {n:>4} subjects ({v['slices']} slices): {v['peak_anon_mb']:.0f} MB "
            f"(peak RSS {v['peak_rss_mb']:.0f} MB)"
        )
    return "\n".join(lines + verdict_lines(r))


def verdict_lines(r: dict) -> list[str]:
    lines = ["", "targets"]
    for k, v in r["verdicts"].items():
        met = "met" if v["met"] else "MISSED"
        lines.append(f"   {k:<22}{v['value']:>10.3g}   target {v['target']:<6g} {met}")
    return lines + [f"\nbench wall time: {r['wall_s']:.0f} s"]
