"""Fast inference: folded batch-norms, the precision rule, and seg grading on tumour slices only."""

import copy
import subprocess
import sys

import numpy as np
import pytest
import torch

from gliograde.core.errors import UsageError
from gliograde.infer import models as infer_models
from gliograde.infer.models import fold_batch_norms, inference_dtype
from gliograde.model.network import GradeNet


def test_folding_batch_norms_keeps_the_outputs_and_removes_every_batch_norm():
    torch.manual_seed(0)
    model = GradeNet()
    for m in model.modules():  # statistics far from the identity, so that folding matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    model.eval()
    folded = fold_batch_norms(copy.deepcopy(model))
    x = torch.randn(3, 4, 48, 48)
    with torch.no_grad():
        want, got = model.forward_heads(x), folded.forward_heads(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 20
    for a, b in zip(want, got):
        assert torch.allclose(a, b, atol=1e-4)
        assert not torch.allclose(a, torch.zeros_like(a))


def test_precision_follows_its_argument_and_the_hardware_never_the_environment(monkeypatch):
    monkeypatch.setenv("GLIOGRADE_PRECISION", "bf16")  # read by the command line only
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert inference_dtype("cpu", "fp32") == inference_dtype("cpu") == torch.float32
    assert inference_dtype("cpu", "bf16") == torch.bfloat16
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert inference_dtype("cpu") == torch.bfloat16  # auto: native bfloat16 here
    assert inference_dtype("cpu", "fp32") == torch.float32
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # emulation too
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (7, 5))  # a T4
    assert inference_dtype("cuda") == torch.float32
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))  # an H100
    assert inference_dtype("cuda") == torch.bfloat16
    with pytest.raises(UsageError, match="--precision half: choose auto, fp32 or bf16"):
        inference_dtype("cpu", "half")


def test_an_open_grader_keeps_its_precision_whatever_the_environment_says(tmp_path, monkeypatch):
    """The precision is fixed when the Grader opens: changing GLIOGRADE_PRECISION afterwards
    changes nothing (and a bad precision stops before any weights are read)."""
    from gliograde.infer.grader import Grader
    from gliograde.infer.models import run_models
    from helpers.runs import fake_run

    run = fake_run(tmp_path / "run")
    x = torch.randn(6, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    exact = Grader.open(run, device="cpu", precision="fp32")
    fast = Grader.open(run, device="cpu", precision="bf16")
    before = run_models(exact.models, x)[0]
    for value in ("bf16", "fp16"):
        monkeypatch.setenv("GLIOGRADE_PRECISION", value)
        assert np.array_equal(run_models(exact.models, x)[0], before)
    assert (exact.precision, fast.precision) == ("fp32", "bf16")
    assert not np.array_equal(run_models(fast.models, x)[0], before)  # bf16 would show
    (run / "fold_0" / "model.safetensors").write_bytes(b"")
    with pytest.raises(UsageError, match="--precision fp16"):
        Grader.open(run, device="cpu", precision="fp16")


def test_load_models_folds_every_batch_norm_and_refuses_training_mode(fake_tiny_run):
    from gliograde.infer.models import load_models
    from gliograde.run import Run

    weights = Run.open(fake_tiny_run[1]).weights()
    folded = load_models(weights)[0]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    kept = load_models(weights, fold_bn=False)[0]  # what exports write
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in kept.modules()) == 20
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(GradeNet().train())


def test_loaded_models_keep_their_weights_when_the_file_is_replaced(tmp_path):
    """``load_models`` gives the network the file's tensors instead of initialising it first
    (on the meta device, without what PyTorch imports there for ``normal_``: SymPy, 2 s): copies,
    or a run replaced on disk would crash a process holding its models (SIGBUS)."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in GradeNet().state_dict().items()}
    weights = tmp_path / "model.safetensors"
    save_file(state, weights, metadata={"slice_size": "32"})
    code = (
        "import sys; from gliograde.infer.models import load_models\n"
        "model = load_models([sys.argv[1]], fold_bn=False)[0]\n"
        "open(sys.argv[1], 'wb').close()\n"  # emptied, as rewriting the run would
        "print(sum(float(t.double().sum()) for t in model.state_dict().values()))\n"
        "print('sympy' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(weights)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    want = sum(float(t.double().sum()) for t in state.values())
    total, sympy = done.stdout.split()
    assert float(total) == pytest.approx(want, rel=1e-12) and sympy == "False"


def test_bf16_changes_slice_probabilities_by_little(fake_tiny_run, monkeypatch):
    from gliograde.infer.models import load_models, run_models
    from gliograde.run import Run

    run = Run.open(fake_tiny_run[1])
    x = torch.randn(8, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    exact, _ = run_models(load_models(run.weights(), precision="fp32"), x)
    fast, _ = run_models(load_models(run.weights(), precision="bf16"), x)
    assert not np.array_equal(exact, fast)  # bf16 was used
    assert np.abs(exact - fast).max() < 0.02


def test_with_a_segmentation_only_tumor_slices_go_through_the_models(
    fake_tiny_run, synth_small, monkeypatch
):
    """The same answer as scoring every slice (cross-validation's pass), for fewer slices."""
    from gliograde.infer.grader import Grader, tumor_pixels
    from gliograde.io.layouts import discover

    grader = Grader.open(fake_tiny_run[1], precision="fp32")
    run = grader.run
    subject = discover(synth_small).subjects[0]
    examined = grader.examine(subject)
    slices = examined.slices
    pixels = tumor_pixels(slices)
    tumor = int((pixels >= run.min_tumor).sum())
    assert examined.with_seg and 0 < tumor < len(pixels)

    seen = []
    real = infer_models.run_models

    def counting(models_, slices_, *args, **kwargs):
        seen.append(len(slices_))
        return real(models_, slices_, *args, **kwargs)

    monkeypatch.setattr(infer_models, "run_models", counting)
    result = grader.grade_examined(examined)
    assert seen[0] == tumor  # the first pass: tumour slices only (then the flips)
    monkeypatch.setattr(infer_models, "run_models", real)
    x = torch.from_numpy(slices.images.astype(np.float32))
    every = grader.evidence(x, pixels)["seg"]
    assert result.evidence.p == pytest.approx(every.p, abs=1e-6)
    assert result.evidence.slice_spread == pytest.approx(every.slice_spread, abs=1e-6)
    assert result.evidence.tta_spread == pytest.approx(every.tta_spread, abs=1e-6)
    assert result.evidence.n_slices == every.n_slices == tumor
    assert np.isnan(result.evidence.slice_p[pixels < run.min_tumor]).all()
