"""What the fit does on each device: workers, precision (and its record), and what --compile
compiles."""

import pytest
import torch

from gliograde.core.errors import UsageError
from gliograde.run.config import TrainConfig
from gliograde.train.fit import loader_workers
from gliograde.train.precision import resolve_precision
from helpers.runs import train_config


def test_resident_slices_use_no_cpu_worker():
    gpu = TrainConfig("s", "o")
    assert loader_workers(gpu, "cuda") == 8 and loader_workers(gpu, "cpu") == 0
    assert loader_workers(TrainConfig("s", "o", resident=True), "cuda") == 0
    assert loader_workers(TrainConfig("s", "o", resident=True, workers=4), "cuda") == 0
    assert loader_workers(TrainConfig("s", "o", workers=3), "cuda") == 3


@pytest.mark.parametrize(
    "capability, expected", [((8, 0), "bf16"), ((9, 0), "bf16"), ((7, 5), "fp16")]
)
def test_fp16_with_a_scaler_where_bf16_is_missing(monkeypatch, capability, expected):
    """Ampere and later compute bf16; a T4 (7.5) or V100 (7.0) only emulates it: fp16 there,
    although torch.cuda.is_bf16_supported() says yes (it counts emulation)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", "cuda") == expected
    assert resolve_precision("fp32", "cuda") == "fp32"


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_precision_on_a_cpu_is_bf16_only_where_it_is_native(monkeypatch, native, expected):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert resolve_precision("auto", "cpu") == expected
    assert resolve_precision("bf16", "cpu") == "bf16" and resolve_precision("fp32", "cpu") == "fp32"


def test_an_unknown_precision_is_refused():
    with pytest.raises(UsageError, match="--precision"):
        TrainConfig("s", "o", precision="fp8")


@pytest.mark.slow  # trains fold 0, then resumes it
def test_the_run_records_its_precision_and_resume_refuses_another(
    tiny_store, tmp_path, monkeypatch
):
    """config.json records what auto resolved to; --resume with auto keeps it, and with another
    precision is refused before anything is trained."""
    import json

    from gliograde.train import precision
    from gliograde.train.folds import train_folds

    store = tiny_store
    monkeypatch.setattr(precision, "native_bf16", lambda device: False)  # auto: fp32 on a CPU
    out = tmp_path / "run"
    train_folds(train_config(store, out, folds=[0], select="last"))
    assert json.loads((out / "config.json").read_text())["precision"] == "fp32"
    weights = (out / "fold_0" / "model.safetensors").read_bytes()
    monkeypatch.setattr(precision, "native_bf16", lambda device: True)  # auto would be bf16 now
    train_folds(train_config(store, out, folds=[0], select="last", resume=True))
    assert json.loads((out / "config.json").read_text())["precision"] == "fp32"  # kept
    bf16 = train_config(store, out, folds=[0], select="last", resume=True, precision="bf16")
    with pytest.raises(UsageError, match=r"options differ: precision \(run fp32, now bf16\)"):
        train_folds(bf16)
    assert (out / "fold_0" / "model.safetensors").read_bytes() == weights


def test_a_run_from_before_the_precision_was_recorded_resumes_in_float32(fake_tiny_run, tmp_path):
    """Training on a CPU was float32 before --precision existed: a resumed old run stays so."""
    import json

    from gliograde.run.config import TrainConfig
    from gliograde.train.precision import recorded_precision, with_resolved_precision

    old = TrainConfig("s", "o")  # precision "auto": what an old config.json reads as
    assert recorded_precision(old, "cpu") == "fp32"
    run = tmp_path / "old-run"
    run.mkdir()
    record = json.loads((fake_tiny_run[1] / "config.json").read_text())
    record.pop("precision", None)
    (run / "config.json").write_text(json.dumps(record))
    resumed = with_resolved_precision(train_config(fake_tiny_run[0], run, resume=True), run)
    assert resumed.precision == "fp32"


def test_3d_networks_train_in_float32_on_a_cpu_unless_asked():
    from gliograde.train.precision import resolve_precision

    assert resolve_precision("auto", "cpu", volumes=True) == "fp32"
    assert resolve_precision("bf16", "cpu", volumes=True) == "bf16"  # asked for: as asked


def test_resume_refuses_another_grid_for_a_3d_run(tmp_path):
    from gliograde.core.errors import UsageError
    from gliograde.train.resume import check_resume
    from helpers.runs import fake_run, train_config

    run = fake_run(tmp_path / "run", backbone="resnet10-3d")  # trained at 32³
    same = {"folds": None, "backbone": "resnet10-3d", "resume": True, "precision": "fp32"}
    check_resume(train_config("unused", run, grid=32, **same), run)
    with pytest.raises(UsageError, match=r"grid \(run 32, now 64\)"):
        check_resume(train_config("unused", run, grid=64, **same), run)


def test_a_3d_run_trains_no_tumour_head_and_grades_in_float32_on_a_cpu(tmp_path):
    """Every volume holds tumour, so the tumour head's loss is off; and ``auto`` grades a 3D
    network in float32 on a CPU, the precision it trains in there."""
    import torch

    from gliograde.infer.models import load_models
    from gliograde.run import Run
    from helpers.runs import fake_run, train_config

    assert train_config("s", "o", backbone="resnet10-3d").tumor_loss_weight == 0.0
    assert train_config("s", "o").tumor_loss_weight == 0.5
    run = fake_run(tmp_path / "run", backbone="resnet10-3d")
    models = load_models(Run.open(run).weights(), "cpu", precision="auto")
    assert models.grid == 32 and models.dtype == torch.float32
    assert load_models(Run.open(run).weights(), "cpu", precision="bf16").dtype == torch.bfloat16
