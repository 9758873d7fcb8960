"""The bench's printed table: one section per measurement, then the verdicts."""

from __future__ import annotations

from gliograde.bench.report import TARGETS

NAMES = {
    "article": "NIfTI per item (article)",
    "monai_cache": "MONAI CacheDataset, float32",
    "monai_cache_fp16": "MONAI CacheDataset, float16",
    "monai_persistent": "MONAI PersistentDataset, float32",
    "monai_persistent_fp16": "MONAI PersistentDataset, float16",
    "store": "gliograde slice store (page cache; larger than RAM)",
    "store_resident": "gliograde --resident (one float16 tensor)",
}


def format_results(r: dict) -> str:
    m = r["machine"]
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, "
        f"Python {m['python']}, torch {m['torch']}, GPU {m['gpu'] or 'none'}",
    ]
    lines += loader_lines(r["loaders"], r["config"]["batch_size"])
    lines += training_lines(r["training"])
    lines += backbone_lines(r.get("backbones"))
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


TRAINING_NAMES = {
    "alone_fp32": "model alone, fp32",
    "alone_bf16": "model alone, bf16",
    "end_to_end_fp32": "end to end (train's path), fp32",
    "end_to_end_bf16": "end to end, bf16",
    "end_to_end_bf16_resident": "end to end, bf16, --resident",
}


def training_lines(t: dict) -> list[str]:
    e, flops = t["epoch_with_validation"], t["flops"]["train_flop_per_slice"]
    lines = [
        "",
        f"b. training at {t['size']}×{t['size']}, batch {t['batch_size']}, {t['steps']} timed "
        f"steps after warm-up, best of {len(t['all_slices_per_s']['alone_fp32'])} "
        f"(train --precision auto is {t['auto_precision']} here)      slices/s  GFLOP/s   runs",
    ]
    for name, label in TRAINING_NAMES.items():
        rate, runs = t["slices_per_s"][name], t["all_slices_per_s"][name]
        shown = ", ".join(f"{x:.1f}" for x in runs)
        lines.append(f"   {label:<73}{rate:>9.1f}{rate * flops / 1e9:>9.0f}   ({shown})")
    lines += peak_lines(t)
    lines.append(
        f"   one epoch with its checkpoint selection: {e['epoch_s']:.1f} s ({e['train_slices']} "
        f"training slices; {e['select_slices']} select slices scored in "
        f"{e['validation_s']:.1f} s)"
    )
    return lines


def backbone_lines(b: dict | None) -> list[str]:
    """Each backbone alone: training items/s (slices, or a 3D network's volumes) and peak
    memory (``train --backbone``)."""
    if not b:
        return []
    lines = [
        "",
        "b2. each backbone alone, training on random inputs             items/s   peak RSS MB   "
        "peak GPU MB",
    ]
    for name, m in b.items():
        gpu = "n/a" if m.get("peak_gpu_mb") is None else f"{m['peak_gpu_mb']:.0f}"
        grid, size = m.get("grid"), m["size"]
        what = f"{grid}³ volumes" if grid else f"{size}×{size} slices"
        label = f"{name}: {what}, batch {m['batch_size']}, {m.get('precision', '')}"
        lines.append(f"   {label:<60}{m['slices_per_s']:>9.2f}{m['peak_rss_mb']:>14.0f}{gpu:>14}")
    return lines


def peak_lines(t: dict) -> list[str]:
    """The FLOPs of a training slice, and every candidate for the peak with the one taken."""
    f, peak = t["flops"], t["peak"]
    lines = [
        "   FLOPs per training slice (torch.utils.flop_counter, forward + backward): "
        f"{f['train_flop_per_slice'] / 1e9:.2f} G "
        f"(forward {f['forward_flop_per_slice'] / 1e9:.2f} G)"
    ]
    for p in ("fp32", "bf16"):
        k = peak["kernels"]
        parts = [
            f"matmul {k[f'matmul_{p}'] / 1e9:.0f}",
            f"conv {k[f'conv_{p}'] / 1e9:.0f}",
        ]
        if peak["chip"]:
            c = peak["chip"]
            parts.append(
                f"chip {c[p] / 1e9:.0f} ({c['cores']} cores × {c['clock_ghz']:.2f} GHz nominal "
                f"× {c['flop_per_cycle'][p]} FLOP/cycle; the best kernel implies "
                f"{c['implied_clock_ghz'][p]:.2f} GHz)"
            )
        best = peak["peak"][p]
        lines.append(
            f"   peak {p} GFLOP/s: {', '.join(parts)}: taken {best['flop_per_s'] / 1e9:.0f} "
            f"({best['from']})"
        )
    return lines


def prepare_lines(prep: dict) -> list[str]:
    lines = ["", "c. prepare vs the load floors          floor s  nibabel s  prepare s  ratio"]
    for w, v in prep.items():
        lines.append(
            f"   {w} worker(s){'':<26}{v['floor_s']:>8.1f}{v['nibabel_floor_s']:>11.1f}"
            f"{v['prepare_s']:>11.1f}{v['ratio']:>7.2f}"
        )
    return lines


def predict_lines(p: dict) -> list[str]:
    lines = [
        "",
        "d. predict one patient, 5-fold ensemble at 240×240: the process (start included) "
        "against its forward passes alone",
    ]
    for path, label in (("seg", "with seg"), ("noseg", "without seg")):
        v = p[path]
        runs = ", ".join(f"{x:.1f}" for x in v["all_wall_s"])
        lines.append(
            f"   {label:<12} {v['wall_s']:.1f} s best of ({runs}), {v['n_slices']} slices; "
            f"forward alone {v['forward_s']:.1f} s ({v['precision']}): ratio {v['ratio']:.2f}"
        )
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
        shown = "n/a" if v["value"] is None else f"{v['value']:.3g}"
        if v["target"] is None:
            lines.append(f"   {k:<35}{shown:>10}   information, no target")
            continue
        kind = "≥" if TARGETS[k][1] == "min" else "≤"
        state = "met" if v["met"] else "MISSED"
        lines.append(f"   {k:<35}{shown:>10}   target {kind} {v['target']:<6g} {state}")
    return lines + [f"\nbench wall time: {r['wall_s']:.0f} s"]
