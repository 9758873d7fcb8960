"""Runs trained before training and inference built one module (MONAI's ResNet in ``train``,
a plain-PyTorch twin in ``predict``) load into :class:`GradeNet` and give the same outputs."""

import hashlib

import pytest
import torch
from safetensors.torch import save_file

from gliograde.infer.models import load_models
from gliograde.model.network import GradeNet
from gliograde.train.fit import export_weights
from helpers.reference import MonaiGradeNet, randomise

OLD_LAYOUT_SHA256 = "43d73e6ba689c2bd7bfca900760fe752db4732269712494f73848bfece7afd48"
"""Of ``layout(GradeNet(plain=True))`` and of ``layout(GradeNet())`` (MONAI's ResNet) at commit
fb9ec3c, the last one with two networks: the names, shapes and dtypes every earlier run holds."""


def layout(model: torch.nn.Module) -> str:
    return "\n".join(f"{k} {tuple(v.shape)} {v.dtype}" for k, v in model.state_dict().items())


def test_the_state_dict_keeps_the_layout_of_earlier_runs():
    text = layout(GradeNet())
    assert len(text.splitlines()) == 124
    assert hashlib.sha256(text.encode()).hexdigest() == OLD_LAYOUT_SHA256, text


def outputs(model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(4, 4, 48, 48, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        return model.forward_heads(x)


def assert_same(got, want, atol):
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=atol)


@pytest.mark.parametrize("prefix", ["model.", "model._orig_mod."])
def test_weights_train_exported_from_monais_resnet_load_with_the_same_outputs(tmp_path, prefix):
    """``train`` saved MONAI's network: a Lightning checkpoint (the whole model compiled in
    some runs: ``_orig_mod.``) exported by ``export_weights``, as it still is."""
    old = randomise(MonaiGradeNet(num_classes=3)).eval()
    state = {prefix + k: v for k, v in old.state_dict().items()}
    state["class_weights"] = torch.ones(3)  # GradeModule's own buffer, not the network's
    checkpoint = tmp_path / "last.ckpt"
    torch.save({"state_dict": state, "epoch": 1}, checkpoint)
    weights = export_weights(checkpoint, tmp_path / "model.safetensors", slice_size=48)
    want = outputs(old)
    assert want[0].shape == (4, 3) and want[0].abs().max() > 1e-3
    assert_same(outputs(load_models([weights], fold_bn=False)[0]), want, atol=1e-6)
    assert_same(outputs(load_models([weights])[0]), want, atol=1e-5)  # batch-norms folded


def test_weights_saved_from_the_plain_twin_load_with_the_same_outputs(tmp_path):
    """``GradeNet(plain=True).state_dict()`` saved as is (tests' and the bench's runs): the same
    layout as MONAI's (the hash above), so MONAI's network stands in for the twin, gone."""
    old = randomise(MonaiGradeNet(), seed=1).eval()
    weights = tmp_path / "model.safetensors"
    state = {k: v.contiguous() for k, v in old.state_dict().items()}
    save_file(state, weights, metadata={"slice_size": "48"})
    assert_same(outputs(load_models([weights], fold_bn=False)[0]), outputs(old), atol=1e-6)


def test_bundles_exported_before_still_build_their_network():
    """Their ``inference.json`` names ``GradeNet(plain=True)``; MONAI's config API builds it."""
    from monai.bundle import ConfigParser

    target = {"_target_": "gliograde.model.network.GradeNet", "plain": True, "num_classes": 3}
    network = ConfigParser({"network_def": target}).get_parsed_content("network_def")
    assert isinstance(network, GradeNet) and layout(network) == layout(GradeNet(num_classes=3))
