"""predict's cache of raw scans preprocessed, on a small synthetic DICOM export."""

import json

import numpy as np

from gliograde.scans.simulate import write_exam

AFFINE = np.diag([-1.0, -1.0, 3.0, 1.0])
ROLES = ("flair", "t1ce", "t1", "t2")


def export(folder, seed=0):
    rng = np.random.default_rng(seed)
    write_exam(folder, {r: rng.integers(0, 900, (12, 10, 10), dtype=np.int16) for r in ROLES},
               AFFINE)  # fmt: skip
    return folder


def test_the_cache_is_reused_until_the_export_changes(tmp_path, monkeypatch):
    """predict's cache, the folder given: the same export is preprocessed once; a changed file,
    or a failure, means preprocessing again. The environment steers nothing below the command
    line."""
    import gliograde.scans.inputs as inputs_module
    from gliograde.scans.cached import preprocess_raw_inputs

    folder = export(tmp_path / "exam")
    monkeypatch.setenv("GLIOGRADE_CACHE", str(tmp_path / "elsewhere"))  # the CLI's, not this
    cache = tmp_path / "cache"
    calls = []

    def fake_preprocess(inputs, out, series_map=None):
        calls.append(out)
        if len(calls) == 3:
            return {}, {"P001": "disk full"}, []
        (out / "P001").mkdir(parents=True, exist_ok=True)
        record = {"series": {"flair": {"uid": "1.2"}}}
        (out / "P001" / "preprocess.json").write_text(json.dumps(record))
        return {"P001": record}, {}, []

    monkeypatch.setattr(inputs_module, "preprocess_inputs", fake_preprocess)
    first, raw = preprocess_raw_inputs([folder], cache)
    again, _ = preprocess_raw_inputs([folder], cache)
    assert len(calls) == 1 and first == again and raw.sources["P001"] == (folder, {"1.2"})
    assert first[0].parent.parent == cache / "preprocessed"
    assert not (tmp_path / "elsewhere").exists()
    victim = sorted(folder.iterdir())[0]
    victim.write_bytes(victim.read_bytes() + b"\0\0")  # one file changed
    preprocess_raw_inputs([folder], cache)
    assert len(calls) == 2 and calls[1] != calls[0]
    victim.write_bytes(victim.read_bytes() + b"\0\0")
    _, failed = preprocess_raw_inputs([folder], cache)  # fails once ...
    _, raw = preprocess_raw_inputs([folder], cache)  # ... and is tried again
    assert failed.errors == {"P001": "disk full"} and len(calls) == 4 and raw.errors == {}
