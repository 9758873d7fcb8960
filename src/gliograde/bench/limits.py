"""How close training is to the chip's limit: FLOPs per training slice and the peak FLOP/s.

The FLOPs of a training step are counted with ``torch.utils.flop_counter`` on the real step
(forward through both heads, backward), not from a formula. The peak is taken as the highest
of three things, all shown (``../shared/design/cpu-peak.md``): the best measured matrix product,
the best measured large channels-last convolution, and, on a CPU whose vector units are known,
the chip's arithmetic (cores × clock × FLOP per cycle per core).
"""

from __future__ import annotations

import time

from gliograde import MODALITIES
from gliograde.bench.training import synchronize

PEAK_REPEATS = 10
MATMUL_SIZE = 2048
CONV_SHAPE = (16, 128, 60, 60)  # batch, channels in and out, height, width: a ResNet18 stage
CONV_KERNEL = 3


def measure_flops(size: int, batch_size: int = 2) -> dict:
    """FLOPs of one training step per slice at ``size``×``size``: forward through both heads,
    both losses, backward (the optimiser's update is left out: a few FLOPs per weight)."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from gliograde.model.network import build_model

    model = build_model().train()
    x = torch.randn(batch_size, len(MODALITIES), size, size)
    y, tumor = torch.randint(0, 2, (batch_size,)), torch.ones(batch_size)
    with FlopCounterMode(display=False) as counter:
        logits, tumor_logit = model.forward_heads(x)
        forward = counter.get_total_flops()
        loss = F.cross_entropy(logits, y) + F.binary_cross_entropy_with_logits(tumor_logit, tumor)
        loss.backward()
    total = counter.get_total_flops()
    return {
        "forward_flop_per_slice": forward / batch_size,
        "train_flop_per_slice": total / batch_size,
        "size": size,
    }


def best_rate(fn, flop: float, device: str) -> float:
    """FLOP/s of ``fn``'s best of ``PEAK_REPEATS`` calls, after two warm-up calls."""

    for _ in range(2):
        fn()
    synchronize(device)
    best = float("inf")
    for _ in range(PEAK_REPEATS):
        started = time.perf_counter()
        fn()
        synchronize(device)
        best = min(best, time.perf_counter() - started)
    return flop / best


def kernel_rates(device: str = "cpu") -> dict:
    """Best measured FLOP/s of a square matrix product and of a large channels-last 3×3
    convolution (ResNet18's stage 2 shape, forward), in float32 and in bfloat16."""
    import torch
    import torch.nn.functional as F

    out = {}
    n = MATMUL_SIZE
    b, c, h, w = CONV_SHAPE
    conv_flop = 2 * b * c * c * CONV_KERNEL**2 * h * w
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(n, n, device=device, dtype=dtype)
        out[f"matmul_{name}"] = best_rate(lambda a=a: a @ a, 2 * n**3, device)
        x = torch.randn(b, c, h, w, device=device, dtype=dtype)
        x = x.contiguous(memory_format=torch.channels_last)
        k = torch.randn(c, c, CONV_KERNEL, CONV_KERNEL, device=device, dtype=dtype)
        k = k.contiguous(memory_format=torch.channels_last)
        out[f"conv_{name}"] = best_rate(
            lambda x=x, k=k: F.conv2d(x, k, padding=1), conv_flop, device
        )
    return out


ZEN5_FLOP_PER_CYCLE = {"fp32": 64, "bf16": 128}
"""FLOP per cycle per core of AMD Zen 5 with full-width AVX-512 (EPYC 9005): two 512-bit FMA
pipes, 2 × 16 float32 lanes × 2 FLOP; bfloat16 dot products (``VDPBF16PS``) do two products
per float32 lane, assumed here on the same two pipes. Source: A. J. Yee, "Zen5's AVX512
Teardown" (numberworld.org, 2024), for the pipes; the bf16 rate is our assumption."""


def chip_arithmetic() -> dict | None:
    """The chip's arithmetic peak, where the CPU is one whose vector units are known (AMD family
    26, Zen 5): cores × clock × FLOP per cycle; the clock is the TSC's (the nominal clock, a
    lower bound of the boost clock). None on other CPUs."""
    import os

    info: dict[str, str] = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    zen5 = info.get("vendor_id") == "AuthenticAMD" and info.get("cpu family") == "26"
    if not zen5 or "bogomips" not in info:
        return None
    clock_mhz = float(info["bogomips"]) / 2  # BogoMIPS is twice the TSC's MHz on x86
    cores = len(os.sched_getaffinity(0))
    per_cycle = ZEN5_FLOP_PER_CYCLE
    return {
        "cores": cores,
        "clock_ghz": clock_mhz / 1000,
        "flop_per_cycle": per_cycle,
        **{k: cores * clock_mhz * 1e6 * v for k, v in per_cycle.items()},
    }


def measure_peak(device: str = "cpu") -> dict:
    """Every candidate for the peak, and the peak in each precision (the highest of them)."""
    import torch

    kernels = kernel_rates(device)
    chip = chip_arithmetic() if device == "cpu" else None
    if chip is not None:  # the clock the best kernel implies, were it at the chip's arithmetic
        chip["implied_clock_ghz"] = {
            p: max(kernels[f"matmul_{p}"], kernels[f"conv_{p}"])
            / (chip["cores"] * chip["flop_per_cycle"][p] * 1e9)
            for p in ("fp32", "bf16")
        }
    peak = {}
    for p in ("fp32", "bf16"):
        candidates = {k: v for k, v in kernels.items() if k.endswith(p)}
        if chip is not None:
            candidates["chip"] = chip[p]
        limit = max(candidates, key=candidates.__getitem__)
        peak[p] = {"flop_per_s": candidates[limit], "from": limit}
    return {"kernels": kernels, "chip": chip, "peak": peak, "threads": torch.get_num_threads()}
