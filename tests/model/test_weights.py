import pytest
import torch

from gliograde.core.errors import UnsafeFileError
from gliograde.model.weights import load_checkpoint, load_state_dict


class RunsCode:
    """Unpickling this would create a file: a stand-in for code hidden in a model file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_that_runs_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": RunsCode(marker)}, path)
    with pytest.raises(UnsafeFileError, match="refused"):
        load_checkpoint(path)
    assert not marker.exists()


def test_plain_state_dicts_and_safetensors_load(tmp_path):
    from safetensors.torch import save_file

    state = {"a": torch.arange(3.0), "b": torch.ones(2, 2)}
    torch.save(state, tmp_path / "w.pt")
    save_file(state, tmp_path / "w.safetensors")
    for name in ("w.pt", "w.safetensors"):
        loaded = load_state_dict(tmp_path / name)
        assert set(loaded) == {"a", "b"} and torch.equal(loaded["a"], state["a"])
