"""b and e. Training throughput end to end against the model alone; private memory."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from gliograde.bench.process import PeakMemory

WARMUP_STEPS = 2


def measure_model_alone(
    size: int,
    batch_size: int,
    steps: int,
    precision: str = "fp32",
    compile: bool = False,
    backbone: str = "resnet18",
    grid: int | None = None,
) -> dict:
    """Training slices/s (a 3D network's: volumes/s, at ``grid``, default its default grid) of
    the model alone on random tensors already in memory (the ceiling),
    in ``precision`` (``bf16``, ``fp16``: autocast, as Lightning's ``bf16-mixed`` and ``16-mixed``
    with its gradient scaler), ``forward_heads``
    compiled as ``train --compile`` compiles it; and the process's peak memory meanwhile (on a
    GPU, also PyTorch's peak allocation there)."""
    with PeakMemory() as peak:
        out = model_alone(size, batch_size, steps, precision, compile, backbone, grid)
    return out | {"peak_rss_mb": peak.peak_rss, "backbone": backbone}


def model_alone(
    size: int,
    batch_size: int,
    steps: int,
    precision: str,
    compile: bool,
    backbone: str,
    grid: int | None = None,
) -> dict:
    """:func:`measure_model_alone`'s work: the network of ``backbone`` trained on one random
    batch, ``steps`` timed steps after the warm-up; returns the rate and the sizes."""
    import torch
    import torch.nn.functional as F

    from gliograde.model.backbones import Backbone
    from gliograde.model.network import build_model

    torch.manual_seed(0)
    spec = Backbone.named(backbone, grid=grid if backbone.endswith("-3d") else None)
    # Module.to takes memory_format (torch's own annotations leave it out)
    model = build_model(spec=spec).to(memory_format=spec.memory_format).train()  # type: ignore[call-overload]
    if compile:
        model.forward_heads = torch.compile(model.forward_heads)
    shape = (batch_size, *spec.input_shape(size))
    x = torch.randn(*shape).contiguous(memory_format=spec.memory_format)
    y, tumor = torch.randint(0, 2, (batch_size,)), torch.ones(batch_size)

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = model.to(device)
    x, y, tumor = (t.to(device) for t in (x, y, tumor))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    low = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device, enabled=precision == "fp16")  # as 16-mixed scales

    def step():
        with torch.autocast(device, dtype=low or torch.float32, enabled=low is not None):
            logits, tumor_logit = model.forward_heads(x)
        logits, tumor_logit = logits.float(), tumor_logit.float()
        tumor_loss = F.binary_cross_entropy_with_logits(tumor_logit, tumor)
        loss = F.cross_entropy(logits, y) + 0.5 * tumor_loss
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(WARMUP_STEPS):  # oneDNN picks its kernels, the allocator grows
        step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    rate = steps * batch_size / (time.perf_counter() - started)
    gpu = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
    return {"slices_per_s": rate, "size": size, "batch_size": batch_size, "steps": steps,
            "peak_gpu_mb": gpu, "grid": spec.grid, "precision": precision}  # fmt: skip


def synchronize(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def measure_end_to_end(
    store: str,
    batch_size: int,
    steps: int,
    precision: str = "fp32",
    resident: bool = False,
    compile: bool = False,
    compile_backend: str | None = None,
) -> dict:
    """Training slices/s through ``train``'s own path: store → augmentation → Lightning step
    (no validation: :func:`measure_epoch_with_validation` times an epoch with it), with
    ``train``'s options ``--precision``, ``--resident`` and ``--compile`` (its backend
    ``compile_backend``, default ``train``'s; this measure runs in a process of its own)."""
    import lightning as L

    from gliograde.store.read import SliceStore
    from gliograde.train import fit

    if compile_backend is not None:  # this process measures, then ends
        fit.COMPILE_BACKEND = compile_backend

    slices = SliceStore(Path(store))

    class StepTimer(L.Callback):
        """From the end of the warm-up batches to the end of the last."""

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            synchronize(str(module.device.type))  # a GPU's queued work is part of the step
            if batch_idx == WARMUP_STEPS - 1:
                self.started = time.perf_counter()
            self.ended = time.perf_counter()

    timer = StepTimer()
    n = (steps + WARMUP_STEPS) * batch_size
    train_one_epoch(
        slices,
        batch_size,
        n,
        [timer],
        options={"precision": precision, "resident": resident, "compile": compile},
    )
    rate = steps * batch_size / (timer.ended - timer.started)
    size = slices.manifest.slice_size
    return {
        "slices_per_s": rate,
        "size": size,
        "batch_size": batch_size,
        "steps": steps,
        "compiled_graphs": compiled_graphs(),
    }


def compiled_graphs() -> int:
    """How many graphs ``torch.compile`` captured in this process (0: nothing was compiled)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def measure_epoch_with_validation(store: str, batch_size: int, steps: int) -> dict:
    """One epoch of ``steps`` batches plus its checkpoint selection on the select patients (a
    fifth of the subjects), as ``train --select inner`` runs it: the wall time of the epoch."""
    import lightning as L

    from gliograde.store.read import SliceStore

    slices = SliceStore(Path(store))

    class EpochTimer(L.Callback):
        """From the epoch's first batch to the end of training: the steps, the selection pass
        (its AUC included) and the checkpoint writes."""

        def on_train_epoch_start(self, trainer, module):
            self.started = time.perf_counter()

        def on_validation_epoch_start(self, trainer, module):
            self.validating = time.perf_counter()

        def on_validation_end(self, trainer, module):
            self.validated = time.perf_counter()

        def on_train_end(self, trainer, module):
            self.ended = time.perf_counter()

    subjects = sorted(slices.subjects)
    select = subjects[::5]
    train = [s for s in subjects if s not in select]
    timer = EpochTimer()
    train_one_epoch(slices, batch_size, steps * batch_size, [timer], train, select)
    validated = int(slices.rows(select).size)
    return {
        "epoch_s": timer.ended - timer.started,
        "validation_s": timer.validated - timer.validating,
        "train_slices": steps * batch_size,
        "select_slices": validated,
    }


def measure_train_memory(store: str, batch_size: int, steps: int) -> dict:
    """Peak private memory (RssAnon) while training on ``store`` (no validation)."""
    from gliograde.store.read import SliceStore

    slices = SliceStore(Path(store))
    with PeakMemory() as peak:
        train_one_epoch(slices, batch_size, steps * batch_size)
    return {
        "peak_anon_mb": peak.peak_anon,
        "peak_rss_mb": peak.peak_rss,
        "subjects": len(slices.subjects),
        "slices": len(slices.index),
    }


def train_one_epoch(
    slices,
    batch_size: int,
    n_slices: int,
    callbacks: list | None = None,
    train: list[str] | None = None,
    select: list[str] | None = None,
    options: dict | None = None,
) -> None:
    """One epoch of ``n_slices`` through ``train``'s own path, into a temporary run (on
    ``train``, default every subject; checkpoint selection on ``select``, default none), with
    ``train``'s defaults (on the GPU where there is one) or the ``TrainConfig`` ``options``."""
    from gliograde.run.config import TrainConfig
    from gliograde.train.fit import train_one

    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(
            store=str(slices.path),
            out=out,
            full=True,
            epochs=1,
            batch_size=batch_size,
            epoch_slices=n_slices,
            progress=False,
            **(options or {}),
        )
        train = slices.subjects if train is None else train
        train_one(config, slices, Path(out), train, select or [], extra_callbacks=callbacks)
