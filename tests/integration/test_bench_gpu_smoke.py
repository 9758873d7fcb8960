"""``gliograde bench --gpu --smoke``: the GPU bench's code, run at tiny sizes on the CPU, so that
it is proven before a GPU is lent. Nothing here is judged by speed."""

import json

import pytest

from helpers.cli import invoke

pytestmark = pytest.mark.slow  # trains (a 5-fold cross-validation) and compiles


def test_the_gpu_bench_runs_end_to_end_in_smoke_mode(tmp_path):
    out = tmp_path / "gpu.json"
    result = invoke("bench", "--gpu", "--smoke", "--work", tmp_path / "work", "--save", out)
    assert result.exit_code == 0, result.output
    assert "SMOKE MODE" in result.output and "patients/s" in result.output
    r = json.loads(out.read_text())
    t, p, cv = r["training"], r["predict"], r["cross_validation"]
    assert t["model_alone_slices_per_s"] > 0 and t["end_to_end_slices_per_s"] > 0
    assert t["size"] == 48 and t["compile"] is True and t["model_alone_compile"] is False
    assert t["compile_backend"] == "aot_eager" and t["compiled_graphs"] >= 1  # no C++ made
    assert "--compile on, backend aot_eager (the model alone: off)" in result.output
    assert p["patients"] == 2 and p["patients_per_s"] == p["patients"] / p["wall_s"]
    assert cv["folds"] == [f"fold_{k}" for k in range(5)]  # every fold trained
    config = json.loads((tmp_path / "work" / "cv-run" / "config.json").read_text())
    assert config["resident"] and config["precision"] in ("fp32", "bf16")
    assert config["compile"] is False and cv["compile"] is False  # smoke: compiled in line a
    assert config["epochs"] == 1
    assert all(v["met"] is None for v in r["verdicts"].values())  # smoke: not judged
    assert r["verdicts"]["gpu_cv_minutes"]["value"] == cv["wall_s"] / 60
    b = r["backbones"]  # each backbone alone, in the smoke mode's tiny sizes
    assert set(b) == {"resnet18", "densenet121", "resnet18-2.5d", "resnet10-3d", "densenet121-3d"}
    assert b["resnet10-3d"]["grid"] == 32 and b["resnet10-3d"]["batch_size"] == 2
    assert b["resnet18"]["grid"] == 0 and b["resnet18"]["batch_size"] == 8
    assert all(m["slices_per_s"] > 0 and m["peak_rss_mb"] > 100 for m in b.values())
    assert "resnet10-3d: 32³ volumes, batch 2" in result.output
