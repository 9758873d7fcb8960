"""One device vocabulary: auto, cpu, cuda (and gpu, the older name of cuda)."""

import pytest
import torch

from gliograde.core.devices import device_choice, resolve_device
from gliograde.core.errors import GliogradeError, UsageError
from gliograde.run.config import TrainConfig


def test_gpu_still_means_cuda_and_other_names_are_refused():
    assert [device_choice(d) for d in ("auto", "cpu", "cuda", "gpu")] == [
        "auto", "cpu", "cuda", "cuda",
    ]  # fmt: skip
    with pytest.raises(UsageError, match="--device tpu: choose auto, cpu or cuda"):
        device_choice("tpu")
    assert TrainConfig("s", "o", device="gpu").device == "cuda"  # config.json records cuda


@pytest.mark.parametrize("visible", [True, False])
def test_auto_is_cuda_where_pytorch_sees_a_gpu(monkeypatch, visible):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: visible)
    assert resolve_device("auto") == ("cuda" if visible else "cpu")
    assert resolve_device("cpu") == "cpu"
    if visible:
        assert resolve_device("gpu") == resolve_device("cuda") == "cuda"
    else:
        with pytest.raises(GliogradeError, match="--device gpu: no CUDA GPU is visible"):
            resolve_device("gpu")
