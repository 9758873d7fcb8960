"""What the fit does on each device: workers, precision, and what --compile compiles."""

import pytest
import torch

from gliograde.run.config import TrainConfig
from gliograde.train.fit import loader_workers, precision
from helpers.runs import train_config


def test_resident_slices_use_no_cpu_worker():
    gpu = TrainConfig("s", "o")
    assert loader_workers(gpu, "gpu") == 8 and loader_workers(gpu, "cpu") == 0
    assert loader_workers(TrainConfig("s", "o", resident=True), "gpu") == 0
    assert loader_workers(TrainConfig("s", "o", resident=True, workers=4), "gpu") == 0
    assert loader_workers(TrainConfig("s", "o", workers=3), "gpu") == 3


@pytest.mark.parametrize(
    "capability, expected", [((8, 0), "bf16-mixed"), ((9, 0), "bf16-mixed"), ((7, 5), "16-mixed")]
)
def test_fp16_with_a_scaler_where_bf16_is_missing(monkeypatch, capability, expected):
    """Ampere and later compute bf16; a T4 (7.5) or V100 (7.0) only emulates it: fp16 there,
    although torch.cuda.is_bf16_supported() says yes (it counts emulation)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert precision("gpu") == expected
    assert precision("cpu") == "32-true"


def test_compile_compiles_what_training_calls(tiny_run, tmp_path, monkeypatch):
    """--compile must compile forward_heads (what every step calls), and steps must use it."""
    from gliograde.train import fit
    from gliograde.train.folds import train_folds

    store, _, _ = tiny_run
    compiled, calls = [], []

    def fake_compile(fn, *args, **kwargs):  # records what is compiled, counts its calls
        compiled.append(getattr(fn, "__name__", type(fn).__name__))

        def wrapper(*a, **k):
            calls.append(1)
            return fn(*a, **k)

        return wrapper

    monkeypatch.setattr(fit.torch, "compile", fake_compile)
    config = train_config(store, tmp_path / "run", folds=[0], compile=True, select="last")
    train_folds(config)
    assert compiled == ["forward_heads"] and len(calls) == 32 // 16
    assert (tmp_path / "run" / "fold_0" / "model.safetensors").is_file()
