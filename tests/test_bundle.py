"""The MONAI Bundle export: run by MONAI's own runner, offline, it answers as predict does."""

import csv
import json
import os
import subprocess
import sys

import pytest

from gliograde.core.errors import UsageError
from gliograde.export import export_run
from gliograde.predict import predict_subjects


def read_rows(text: str) -> dict[str, dict]:
    return {row["subject"]: row for row in csv.DictReader(text.splitlines())}


def test_the_bundle_runs_with_monai_and_matches_predict(tiny_run, synth_small, tmp_path):
    _, run, _ = tiny_run
    bundle = tmp_path / "bundle"
    assert export_run(run, "monai-bundle", bundle) == []
    for name in (
        "configs/metadata.json",
        "configs/inference.json",
        "models/run/config.json",
        "models/run/fold_0/model.safetensors",
        "models/run/fold_1/model.safetensors",
        "models/run/MODEL_CARD.md",
        "docs/README.md",
        "docs/data_license.txt",
        "LICENSE",
    ):
        assert (bundle / name).is_file(), name
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    image = meta["network_data_format"]["inputs"]["image"]
    assert image["num_channels"] == 4
    assert image["channel_def"] == {"0": "FLAIR", "1": "T1ce", "2": "T1", "3": "T2"}
    assert meta["network_data_format"]["outputs"]["pred"]["channel_def"] == {
        "0": "LGG",
        "1": "HGG",
    }
    assert "Apache License" in (bundle / "LICENSE").read_text()

    out = tmp_path / "out"
    env = os.environ | {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    cmd = [
        sys.executable, "-m", "monai.bundle", "run",
        "--config_file", str(bundle / "configs" / "inference.json"),
        "--bundle_root", str(bundle),
        "--dataset_dir", str(synth_small),
        "--output_dir", str(out),
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    got = read_rows((out / "predictions.csv").read_text())

    from gliograde.predict import predictions_csv

    want = read_rows(predictions_csv(predict_subjects([synth_small], run)))
    assert sorted(got) == sorted(want) and len(want) == 10
    for subject, row in want.items():
        assert got[subject]["grade"] == row["grade"]
        for key in ("p_hgg", "p_hgg_uncalibrated", "uncertainty"):
            assert float(got[subject][key]) == pytest.approx(float(row[key]), abs=1e-4)


def test_the_bundle_goes_into_a_new_folder(tiny_run, tmp_path):
    (tmp_path / "used.txt").write_text("x")
    with pytest.raises(UsageError, match="not empty"):
        export_run(tiny_run[1], "monai-bundle", tmp_path)
