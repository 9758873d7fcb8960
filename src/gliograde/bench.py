"""``gliograde bench``: gliograde's data path and training measured against the usual ways.

One run, one SYNTHETIC cohort in BraTS geometry (240×240×155, ``.nii.gz``), on this machine:

a. Loader throughput (slices/s through a DataLoader, batch 32, the same workers for all) and
   memory, for the same tumour slices read three ways: the reference article's style (each item
   opens the patient's NIfTI files and reads one slice), MONAI's ``CacheDataset`` (whole
   volumes cached in RAM, a slice cut out per item), and gliograde's slice store.
b. Training throughput end to end (store → augmentation → Lightning step) against the model
   alone on random tensors already in memory (this device's ceiling), at 240×240.
c. ``prepare`` against merely loading the same NIfTI files with nibabel (the I/O floor), with 1
   worker and one per core.
d. ``predict`` of one patient from ``.nii.gz`` files, process start included (one 240×240 model
   with untrained weights: the time does not depend on the values).
e. Private memory (``RssAnon``: resident memory that is not a file's pages) at its peak while
   training on stores of 20 and of 200 subjects, built small (64×64×48) to keep the bench short.

Each measurement that allocates runs in a fresh process, so that its peak memory is its own.
Timings are the best of repeated runs where a measurement is short.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gliograde import MODALITIES

SMALL_SHAPE = (64, 64, 48)
WARMUP_STEPS = 2
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


# --- memory ----------------------------------------------------------------------------------


def proc_status() -> dict[str, float]:
    """VmRSS, VmHWM (peak RSS), RssAnon and RssFile of this process, in MB."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) / 1024
    return out


class PeakMemory(threading.Thread):
    """Samples ``/proc/self/status`` every 10 ms and keeps the peaks (RSS, RssAnon)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_rss = self.peak_anon = 0.0
        self._done = threading.Event()

    def run(self):
        while not self._done.is_set():
            s = proc_status()
            self.peak_rss = max(self.peak_rss, s["VmRSS"])
            self.peak_anon = max(self.peak_anon, s["RssAnon"])
            time.sleep(0.01)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self.join()
        s = proc_status()
        self.peak_rss = max(self.peak_rss, s["VmRSS"], s["VmHWM"])
        self.peak_anon = max(self.peak_anon, s["RssAnon"])


def in_fresh_process(measure: str, **kwargs) -> dict:
    """Run ``measure(**kwargs)`` of this module in a new Python process; return its result."""
    cmd = [sys.executable, "-m", "gliograde.bench", measure, json.dumps(kwargs)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"bench {measure} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- a. loaders ------------------------------------------------------------------------------


def slice_items(store: Path) -> list[tuple[str, int, int]]:
    """(subject, z, label) of every slice in the store: all three loaders read these."""
    from gliograde.dataset import SliceStore

    index = SliceStore(store).index
    return list(zip(index.subject.tolist(), index.z.tolist(), index.label.tolist()))


def nifti_paths(cohort: Path, subject: str) -> list[str]:
    return [str(cohort / subject / f"{subject}_{m}.nii.gz") for m in MODALITIES]


def article_dataset(cohort: Path, items):
    """The reference article's style: each item opens the four NIfTI files, reads one slice."""
    import nibabel as nib
    import torch
    from torch.utils.data import Dataset

    class NiftiSlices(Dataset):
        def __len__(self):
            return len(items)

        def __getitem__(self, i):
            subject, z, label = items[i]
            planes = [np.asarray(nib.load(p).dataobj[..., z], dtype=np.float32)
                      for p in nifti_paths(cohort, subject)]  # fmt: skip
            return torch.from_numpy(np.stack(planes)), label

    return NiftiSlices()


def monai_dataset(cohort: Path, items):
    """MONAI's CacheDataset: whole 4-channel float32 volumes in RAM, a slice cut out per item.

    ``copy_cache=False``: no transform changes the cached volume, so MONAI may hand it out
    without copying (its fastest setting).
    """
    import torch
    from monai.data import CacheDataset
    from monai.transforms import Compose, EnsureTyped, LoadImaged
    from torch.utils.data import Dataset

    subjects = sorted({s for s, _, _ in items})
    position = {s: i for i, s in enumerate(subjects)}
    load = Compose([LoadImaged(keys="image", image_only=True, ensure_channel_first=True),
                    EnsureTyped(keys="image", dtype=torch.float32, track_meta=False)])  # fmt: skip
    data = [{"image": nifti_paths(cohort, s)} for s in subjects]
    volumes = CacheDataset(data, load, cache_rate=1.0, num_workers=1, progress=False,
                           copy_cache=False)  # fmt: skip

    class CachedSlices(Dataset):
        def __len__(self):
            return len(items)

        def __getitem__(self, i):
            subject, z, label = items[i]
            return volumes[position[subject]]["image"][..., z].clone(), label

    return CachedSlices()


def store_dataset(store: Path):
    from gliograde.dataset import SliceDataset

    return SliceDataset(store)


def measure_loader(kind: str, cohort: str, store: str, batch_size: int, max_slices: int) -> dict:
    """Slices/s through a DataLoader (0 workers: in this process) and the memory it took."""
    import torch
    from torch.utils.data import DataLoader

    if kind == "monai":
        import monai  # noqa: F401  (its import is not the loader's memory)
    items = slice_items(Path(store))
    baseline = proc_status()["VmRSS"]
    with PeakMemory() as peak:
        started = time.perf_counter()
        if kind == "article":
            ds = article_dataset(Path(cohort), items)
        elif kind == "monai":
            ds = monai_dataset(Path(cohort), items)
        else:
            ds = store_dataset(Path(store))
        setup = time.perf_counter() - started
        loader = DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=0,
                            generator=torch.Generator().manual_seed(0))  # fmt: skip
        n, started = 0, time.perf_counter()
        for batch in loader:
            n += len(batch["x"] if isinstance(batch, dict) else batch[0])
            if n >= max_slices:
                break
        elapsed = time.perf_counter() - started
    return {"slices_per_s": n / elapsed, "slices": n, "setup_s": setup,
            "peak_rss_mb": peak.peak_rss, "added_rss_mb": peak.peak_rss - baseline,
            "peak_anon_mb": peak.peak_anon}  # fmt: skip


# --- b. training -----------------------------------------------------------------------------


def measure_training(store: str, batch_size: int, steps: int) -> dict:
    """Training slices/s: the model alone on in-memory tensors, then the whole training path."""
    import lightning as L
    import torch
    import torch.nn.functional as F

    from gliograde.dataset import SliceStore
    from gliograde.model import build_model
    from gliograde.train import TrainConfig, train_one

    slices = SliceStore(Path(store))
    size = slices.manifest["slice_shape"][-1]
    torch.manual_seed(0)
    model = build_model().to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch_size, len(MODALITIES), size, size).contiguous(
        memory_format=torch.channels_last
    )
    y = torch.randint(0, 2, (batch_size,))
    tumor = torch.ones(batch_size)

    def step():
        logits, tumor_logit = model.forward_heads(x)
        loss = F.cross_entropy(logits, y) + 0.5 * F.binary_cross_entropy_with_logits(
            tumor_logit, tumor
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(WARMUP_STEPS):  # oneDNN picks its kernels, the allocator grows
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    alone = steps * batch_size / (time.perf_counter() - started)

    class StepTimer(L.Callback):
        """From the end of the warm-up batches to the end of the last."""

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if batch_idx == WARMUP_STEPS - 1:
                self.started = time.perf_counter()
            self.ended = time.perf_counter()

    timer = StepTimer()
    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(store=store, out=out, full=True, epochs=1, batch_size=batch_size,
                             epoch_slices=(steps + WARMUP_STEPS) * batch_size, device="cpu",
                             workers=0,
                             progress=False)  # fmt: skip
        train_one(config, slices, Path(out), slices.subjects, [], extra_callbacks=[timer])
    end_to_end = steps * batch_size / (timer.ended - timer.started)
    return {"model_alone_slices_per_s": alone, "end_to_end_slices_per_s": end_to_end,
            "size": size, "batch_size": batch_size, "steps": steps}  # fmt: skip


def measure_train_memory(store: str, batch_size: int, steps: int) -> dict:
    """Peak private memory (RssAnon) while training on ``store`` (no validation)."""
    from gliograde.dataset import SliceStore
    from gliograde.train import TrainConfig, train_one

    slices = SliceStore(Path(store))
    with tempfile.TemporaryDirectory() as out, PeakMemory() as peak:
        config = TrainConfig(store=store, out=out, full=True, epochs=1, batch_size=batch_size,
                             epoch_slices=steps * batch_size, device="cpu", workers=0,
                             progress=False)  # fmt: skip
        train_one(config, slices, Path(out), slices.subjects, [])
    return {"peak_anon_mb": peak.peak_anon, "peak_rss_mb": peak.peak_rss,
            "subjects": len(slices.subjects), "slices": len(slices.index)}  # fmt: skip


# --- c. prepare ------------------------------------------------------------------------------


def load_floor(subject) -> str:
    """Merely load a subject's NIfTI files with nibabel: what prepare cannot go below."""
    import nibabel as nib

    for path in subject.files.values():
        np.asanyarray(nib.load(path).dataobj)
    return subject.subject_id


def bench_prepare(cohort: Path, root: Path, repeats: int = 2) -> dict:
    """Best-of-``repeats`` wall times of the nibabel floor and of ``prepare``, per worker count."""
    from gliograde.layouts import discover
    from gliograde.parallel import default_workers, map_with_progress
    from gliograde.store import PrepareConfig, prepare

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
            prepare(cohort, target, PrepareConfig(), workers=workers, quiet=True)
            full.append(time.perf_counter() - started)
        out[str(workers)] = {"floor_s": min(floor), "prepare_s": min(full),
                             "ratio": min(full) / min(floor), "all_floor_s": floor,
                             "all_prepare_s": full}  # fmt: skip
    return out


# --- d. predict ------------------------------------------------------------------------------


def timing_run(store: Path, run: Path) -> Path:
    """A run folder with one untrained 240×240 model, for timing ``predict``."""
    from safetensors.torch import save_file

    from gliograde.dataset import SliceStore
    from gliograde.model import GradeNet
    from gliograde.store import write_json

    (run / "fold_0").mkdir(parents=True, exist_ok=True)
    write_json(run / "config.json", {"store_manifest": SliceStore(store).manifest})
    weights = {k: v.contiguous() for k, v in GradeNet(plain=True).state_dict().items()}
    save_file(weights, run / "fold_0" / "model.safetensors")
    return run


def bench_predict(cohort: Path, store: Path, root: Path, repeats: int = 3) -> dict:
    run = timing_run(store, root / "timing-run")
    subject = sorted(p for p in cohort.iterdir() if p.is_dir())[0]
    cmd = [sys.executable, "-m", "gliograde", "predict", str(subject), "--model", str(run),
           "--json"]  # fmt: skip
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise RuntimeError(f"predict failed:\n{result.stderr[-2000:]}")
    answer = json.loads(result.stdout)[0]
    return {"wall_s": min(times), "all_wall_s": times, "n_slices": answer["n_slices"],
            "subject": subject.name}  # fmt: skip


# --- the whole bench -------------------------------------------------------------------------


def machine() -> dict:
    import torch

    from gliograde.parallel import default_workers

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": default_workers(), "memory_gb": round(memory, 1),
            "python": platform.python_version(), "torch": torch.__version__,
            "gpu": gpu}  # fmt: skip


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_bench(config: BenchConfig) -> dict:
    """Run every measurement; return (and optionally write as JSON) the results and verdicts."""
    from gliograde.store import PrepareConfig, prepare
    from gliograde.synth import synth_cohort

    results: dict = {"machine": machine(), "config": asdict(config)}
    keep = config.work is not None
    root = Path(config.work) if keep else Path(tempfile.mkdtemp(prefix="gliograde-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        cohort = root / "cohort"
        if not (cohort / "name_mapping.csv").is_file():
            say(f"bench: writing {config.subjects} SYNTHETIC subjects (240×240×155)")
            synth_cohort(cohort, config.subjects, 0.3, seed=0, workers=os.cpu_count() or 1,
                         quiet=True)  # fmt: skip
        say("bench: prepare against the nibabel load floor")
        results["prepare"] = bench_prepare(cohort, root)
        store = root / "store_w1_0"
        for kind, n in (("article", config.article_slices), ("monai", config.loader_slices),
                        ("store", config.loader_slices)):  # fmt: skip
            say(f"bench: loader, {kind}")
            results.setdefault("loaders", {})[kind] = in_fresh_process(
                "measure_loader", kind=kind, cohort=str(cohort), store=str(store),
                batch_size=config.batch_size, max_slices=n)  # fmt: skip
        say("bench: training, model alone and end to end")
        results["training"] = in_fresh_process("measure_training", store=str(store),
                                               batch_size=config.batch_size,
                                               steps=config.train_steps)  # fmt: skip
        say("bench: predict one patient")
        results["predict"] = bench_predict(cohort, store, root)
        results["memory"] = {}
        for n in config.memory_subjects:
            say(f"bench: private memory while training on {n} subjects ({SMALL_SHAPE})")
            small = root / f"small{n}"
            if not (small / "name_mapping.csv").is_file():
                synth_cohort(small, n, 0.3, seed=1, shape=SMALL_SHAPE, quiet=True,
                             workers=os.cpu_count() or 1)  # fmt: skip
            small_store = root / f"small{n}-store"
            if not (small_store / "manifest.json").is_file():
                prepare(small, small_store, PrepareConfig(min_tumor_pixels=20), quiet=True)
            results["memory"][str(n)] = in_fresh_process(
                "measure_train_memory", store=str(small_store), batch_size=config.batch_size,
                steps=config.memory_steps)  # fmt: skip
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    results["wall_s"] = time.perf_counter() - started
    results["verdicts"] = verdicts(results)
    if config.json_out:
        Path(config.json_out).write_text(json.dumps(results, indent=2) + "\n")
    return results


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
    return {k: {"value": v, "target": TARGETS[k],
                "met": v <= TARGETS[k] if k in at_most else v >= TARGETS[k]}
            for k, v in out.items()}  # fmt: skip


def format_results(r: dict) -> str:
    m, lo, t, p, mem = r["machine"], r["loaders"], r["training"], r["predict"], r["memory"]
    lines = [f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, "
             f"Python {m['python']}, torch {m['torch']}, GPU {m['gpu'] or 'none'}", "",
             "a. loader (DataLoader, batch 32, 0 workers)  slices/s   setup s   "
             "peak RSS MB   added RSS MB"]  # fmt: skip
    names = {"article": "NIfTI per item (article)", "monai": "MONAI CacheDataset",
             "store": "gliograde slice store"}  # fmt: skip
    for kind, v in lo.items():
        lines.append(f"   {names[kind]:<41}{v['slices_per_s']:>9.1f}{v['setup_s']:>10.1f}"
                     f"{v['peak_rss_mb']:>14.0f}{v['added_rss_mb']:>15.0f}")  # fmt: skip
    lines += ["", f"b. training at {t['size']}×{t['size']}, batch {t['batch_size']}: model alone "
              f"{t['model_alone_slices_per_s']:.1f} slices/s, end to end "
              f"{t['end_to_end_slices_per_s']:.1f} slices/s", "",
              f"c. prepare vs nibabel load floor{'floor s':>25}   prepare s   ratio"]  # fmt: skip
    for w, v in r["prepare"].items():
        lines.append(f"   {w} worker(s){'':<37}{v['floor_s']:>7.1f}{v['prepare_s']:>12.1f}"
                     f"{v['ratio']:>8.2f}")  # fmt: skip
    lines += ["", f"d. predict one patient ({p['n_slices']} slices, one 240×240 model), process "
              f"start included: {p['wall_s']:.1f} s (runs: "
              f"{', '.join(f'{x:.1f}' for x in p['all_wall_s'])})", "",
              "e. peak private memory (RssAnon) while training"]  # fmt: skip
    for n, v in mem.items():
        lines.append(f"   {n:>4} subjects ({v['slices']} slices): {v['peak_anon_mb']:.0f} MB "
                     f"(peak RSS {v['peak_rss_mb']:.0f} MB)")  # fmt: skip
    lines += ["", "targets"]
    for k, v in r["verdicts"].items():
        lines.append(f"   {k:<22}{v['value']:>10.3g}   target {v['target']:<6g} "
                     f"{'met' if v['met'] else 'MISSED'}")  # fmt: skip
    lines.append(f"\nbench wall time: {r['wall_s']:.0f} s")
    return "\n".join(lines)


def main() -> None:
    """``python -m gliograde.bench MEASURE JSON``: one measurement in a fresh process."""
    measure, kwargs = sys.argv[1], json.loads(sys.argv[2])
    allowed = {"measure_loader", "measure_training", "measure_train_memory"}
    if measure not in allowed:
        raise SystemExit(f"unknown measurement {measure}")
    print(json.dumps(globals()[measure](**kwargs)))


if __name__ == "__main__":
    main()
