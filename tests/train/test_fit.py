"""What the fit does on each device: workers, precision (and its record), and what --compile
compiles."""

import pytest
import torch

from gliograde.core.errors import UsageError
from gliograde.run.config import TrainConfig
from gliograde.train.fit import loader_workers, resolve_precision
from helpers.runs import train_config


def test_resident_slices_use_no_cpu_worker():
    gpu = TrainConfig("s", "o")
    assert loader_workers(gpu, "gpu") == 8 and loader_workers(gpu, "cpu") == 0
    assert loader_workers(TrainConfig("s", "o", resident=True), "gpu") == 0
    assert loader_workers(TrainConfig("s", "o", resident=True, workers=4), "gpu") == 0
    assert loader_workers(TrainConfig("s", "o", workers=3), "gpu") == 3


@pytest.mark.parametrize(
    "capability, expected", [((8, 0), "bf16"), ((9, 0), "bf16"), ((7, 5), "fp16")]
)
def test_fp16_with_a_scaler_where_bf16_is_missing(monkeypatch, capability, expected):
    """Ampere and later compute bf16; a T4 (7.5) or V100 (7.0) only emulates it: fp16 there,
    although torch.cuda.is_bf16_supported() says yes (it counts emulation)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", "gpu") == expected
    assert resolve_precision("fp32", "gpu") == "fp32"


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_precision_on_a_cpu_is_bf16_only_where_it_is_native(monkeypatch, native, expected):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert resolve_precision("auto", "cpu") == expected
    assert resolve_precision("bf16", "cpu") == "bf16" and resolve_precision("fp32", "cpu") == "fp32"


def test_an_unknown_precision_is_refused():
    with pytest.raises(UsageError, match="--precision"):
        TrainConfig("s", "o", precision="fp8")


def test_the_run_records_its_precision_and_resume_refuses_another(tiny_run, tmp_path, monkeypatch):
    """config.json records what auto resolved to; --resume with another precision is refused
    before anything is trained."""
    import json

    from gliograde.train import fit
    from gliograde.train.folds import train_folds

    store, _, _ = tiny_run
    monkeypatch.setattr(
        fit, "resolve_precision", lambda choice, acc: choice.replace("auto", "fp32")
    )
    out = tmp_path / "run"
    train_folds(train_config(store, out, folds=[0], select="last"))
    assert json.loads((out / "config.json").read_text())["precision"] == "fp32"
    weights = (out / "fold_0" / "model.safetensors").read_bytes()
    train_folds(train_config(store, out, folds=[0], select="last", resume=True))  # same: fine
    with pytest.raises(UsageError, match="options differ: precision"):
        train_folds(
            train_config(store, out, folds=[0], select="last", resume=True, precision="bf16")
        )
    assert (out / "fold_0" / "model.safetensors").read_bytes() == weights


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
