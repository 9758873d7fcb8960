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
from gliograde.bench.pipeline import bench_predict, bench_prepare
from gliograde.bench.process import in_fresh_process
from gliograde.bench.scans import bench_raw_scan
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
    "dicom_to_grade_s": (90.0, "max"),  # one raw head from DICOM to graded, skull stripping incl.
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


def bench_training(config: BenchConfig, store: Path) -> dict:
    """Model alone, end to end, and an epoch with validation, each in a fresh process, repeated
    ``train_repeats`` times interleaved (the machine's state drifts): the best of each."""
    from gliograde.store.read import SliceStore

    size = SliceStore(store).manifest.slice_size
    steps = {"batch_size": config.batch_size, "steps": config.train_steps}
    runs: dict[str, list[dict]] = {"alone": [], "end_to_end": [], "epoch": []}
    for _ in range(config.train_repeats):
        runs["alone"].append(in_fresh_process("measure_model_alone", size=size, **steps))
        runs["end_to_end"].append(in_fresh_process("measure_end_to_end", store=str(store), **steps))
        runs["epoch"].append(
            in_fresh_process("measure_epoch_with_validation", store=str(store), **steps)
        )
    best = {k: max(v, key=lambda r: r["slices_per_s"]) for k, v in runs.items() if k != "epoch"}
    return {
        "model_alone_slices_per_s": best["alone"]["slices_per_s"],
        "end_to_end_slices_per_s": best["end_to_end"]["slices_per_s"],
        "all_model_alone": [r["slices_per_s"] for r in runs["alone"]],
        "all_end_to_end": [r["slices_per_s"] for r in runs["end_to_end"]],
        "epoch_with_validation": min(runs["epoch"], key=lambda r: r["epoch_s"]),
        "size": size,
        **steps,
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

    MONAI is given its best setting for each comparison: the faster of its float32 and float16
    variants for throughput, the leaner for memory. A value that could not be measured (no
    ``fincore`` to count the page cache) is None and not met.
    """
    lo, mem, p, t = r["loaders"], r["memory"], r["predict"], r["training"]
    rate = {k: v["slices_per_s"] for k, v in lo.items()}
    monai_cache = ("monai_cache", "monai_cache_fp16")
    monai_mem = [lo[k]["memory_mb"] for k in monai_cache]
    store_mem = lo["store"]["memory_mb"]
    a, b = (mem[k]["peak_anon_mb"] for k in sorted(mem, key=int))
    values = {
        "store_vs_article": rate["store"] / rate["article"],
        "store_vs_monai_cache": rate["store"] / max(rate[k] for k in monai_cache),
        "store_vs_monai_persistent": rate["store"]
        / max(rate["monai_persistent"], rate["monai_persistent_fp16"]),
        "store_mem_vs_monai_cache": None if store_mem is None else store_mem / min(monai_mem),
        "train_vs_model": t["end_to_end_slices_per_s"] / t["model_alone_slices_per_s"],
        "prepare_vs_floor": r["prepare"]["1"]["ratio"],
        "anon_growth": abs(b - a) / a,
        "predict_ensemble_noseg_s": p["noseg"]["wall_s"],
        "predict_ensemble_seg_s": p["seg"]["wall_s"],
        "dicom_to_grade_s": r["raw_scan"]["wall_s"],
    }
    out = {}
    for name, value in values.items():
        target, kind = TARGETS[name]
        out[name] = {"value": value, "target": target, "met": met(value, target, kind)}
    return out


def met(value: float | None, target: float, kind: str) -> bool:
    if value is None:
        return False
    return value >= target if kind == "min" else value <= target


NAMES = {
    "article": "NIfTI per item (article)",
    "monai_cache": "MONAI CacheDataset, float32",
    "monai_cache_fp16": "MONAI CacheDataset, float16",
    "monai_persistent": "MONAI PersistentDataset, float32",
    "monai_persistent_fp16": "MONAI PersistentDataset, float16",
    "store": "gliograde slice store",
}


def format_results(r: dict) -> str:
    m = r["machine"]
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, "
        f"Python {m['python']}, torch {m['torch']}, GPU {m['gpu'] or 'none'}",
    ]
    lines += loader_lines(r["loaders"], r["config"]["batch_size"])
    lines += training_lines(r["training"])
    lines += prepare_lines(r["prepare"]) + predict_lines(r["predict"])
    lines += memory_lines(r["memory"]) + raw_scan_lines(r["raw_scan"]) + verdict_lines(r)
    return "\n".join(lines)


def mb(value) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def loader_lines(lo: dict, batch_size: int) -> list[str]:
    head = "slices/s warm  cold  set-up s  added RSS MB  page cache MB  memory MB"
    lines = ["", f"a. loaders, the store's tumour slices, batch {batch_size}, 0 workers   {head}"]
    for kind, v in lo.items():
        cold = f"{v['cold_slices_per_s']:.0f}" + ("" if v.get("evicted", True) else "*")
        lines.append(
            f"   {NAMES[kind]:<47}{v['slices_per_s']:>10.0f}{cold:>6}"
            f"{v['setup_s']:>10.1f}{v['added_rss_mb']:>14.0f}{mb(v['page_cache_mb']):>15}"
            f"{mb(v['memory_mb']):>11}"
        )
    if not all(v.get("evicted", True) for v in lo.values()):
        lines.append("   * its files could not be evicted (tmpfs?): cold is warm there")
    return lines


def training_lines(t: dict) -> list[str]:
    e = t["epoch_with_validation"]

    def runs(key: str) -> str:
        return ", ".join(f"{x:.1f}" for x in t[key])

    return [
        "",
        f"b. training at {t['size']}×{t['size']}, batch {t['batch_size']}, {t['steps']} timed "
        f"steps, best of ({runs('all_model_alone')}) and ({runs('all_end_to_end')}): model "
        f"alone {t['model_alone_slices_per_s']:.1f} slices/s, end to end "
        f"{t['end_to_end_slices_per_s']:.1f} slices/s",
        f"   one epoch with its checkpoint selection: {e['epoch_s']:.1f} s ({e['train_slices']} "
        f"training slices; {e['select_slices']} select slices scored in "
        f"{e['validation_s']:.1f} s)",
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
    if len(mem) == 2:
        (n1, a), (n2, b) = sorted(mem.items(), key=lambda kv: int(kv[0]))
        per = (b["peak_anon_mb"] - a["peak_anon_mb"]) / (int(n2) - int(n1))
        lines.append(f"   growth: {per:+.2f} MB per subject")
    return lines


def raw_scan_lines(raw: dict) -> list[str]:
    steps = ", ".join(f"{k} {v:.1f}" for k, v in raw["steps_s"].items())
    return [
        "",
        f"f. predict from a DICOM export ({raw['dicom_files']} files, one SYNTHETIC head with "
        "skull), process start included",
        f"   {raw['wall_s']:.1f} s in all; preprocessing {raw['preprocess_s']:.1f} s ({steps})",
    ]


def verdict_lines(r: dict) -> list[str]:
    lines = ["", "targets"]
    for k, v in r["verdicts"].items():
        kind = "≥" if TARGETS[k][1] == "min" else "≤"
        state = "met" if v["met"] else "MISSED"
        shown = "n/a" if v["value"] is None else f"{v['value']:.3g}"
        lines.append(f"   {k:<27}{shown:>10}   target {kind} {v['target']:<6g} {state}")
    return lines + [f"\nbench wall time: {r['wall_s']:.0f} s"]
