"""``gliograde export`` of the tiny SYNTHETIC run: each format gives PyTorch's outputs on real
slices of the store, and what cannot be exported is one clear line."""

import json

import numpy as np
import pytest

from gliograde.export import FORMATS
from gliograde.store.read import SliceStore
from helpers.cli import invoke

pytestmark = pytest.mark.slow  # exports a trained run


@pytest.mark.parametrize("fmt", ["safetensors", "torchscript", "onnx"])
def test_export_matches_pytorch(tiny_run, tmp_path, fmt):
    import torch

    from gliograde.export import BothHeads, export_run, run_exported
    from gliograde.infer.models import load_models

    _, run, _ = tiny_run
    done = export_run(run, fmt, tmp_path)
    assert [e.file for e in done] == [f"fold_0{FORMATS[fmt]}", f"fold_1{FORMATS[fmt]}"]
    assert all(e.max_abs_diff <= 1e-4 for e in done)
    record = json.loads((tmp_path / "export.json").read_text())
    assert record["input"]["shape"] == ["N", 4, 32, 32]
    assert [m["file"] for m in record["formats"][fmt]] == [e.file for e in done]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*(e.file for e in done), "export.json", "MODEL_CARD.md"]  # the run's card goes along
    )
    # Independently of export_run's own check: real slices from the store, batch of 5.
    store = SliceStore(run.parent / "store")
    x = torch.from_numpy(
        np.asarray(store.read_subject(store.subjects[0], "images")[:5], dtype=np.float32)
    )
    reference = BothHeads(load_models([run / "fold_1" / "model.safetensors"])[0]).eval()
    with torch.inference_mode():
        expected = [t.numpy() for t in reference(x)]
    got = run_exported(fmt, tmp_path / done[1].file, x)
    assert got[0].shape == (5, 2) and got[1].shape == (5,)
    assert max(np.abs(a - b).max() for a, b in zip(expected, got)) <= 1e-4
    if fmt == "safetensors":  # the exported weights say their input size, as train's do
        from gliograde.run.folder import trained_slice_size

        assert trained_slice_size(tmp_path / done[1].file) == "32"


def test_export_refuses_an_unknown_format(tiny_run):
    from gliograde.core.errors import UsageError
    from gliograde.export import export_run

    with pytest.raises(UsageError, match="choose one of safetensors, torchscript, onnx"):
        export_run(tiny_run[1], "tflite")


def test_export_of_a_folder_that_is_not_a_run_is_one_clear_line(tmp_path):
    result = invoke("export", tmp_path)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"gliograde: error: {tmp_path}: not a gliograde run (no config.json); "
        "give the folder `gliograde train` wrote"
    )
