"""The MONAI Bundle export: run by MONAI's own runner, offline, it answers as predict does."""

import csv
import json
import os
import subprocess
import sys

import pytest

from gliograde.core.errors import UsageError
from gliograde.export import export_run
from gliograde.predict import predict_subjects, predictions_csv

OFFLINE = {  # any attempt to reach the internet through a proxy-aware client fails
    name: "http://127.0.0.1:9"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY")
}


def read_rows(text: str) -> dict[str, dict]:
    return {row["subject"]: row for row in csv.DictReader(text.splitlines())}


def run_bundle(bundle, data, out, *extra):
    cmd = [
        sys.executable, "-m", "monai.bundle", "run",
        "--config_file", str(bundle / "configs" / "inference.json"),
        "--bundle_root", str(bundle),
        "--dataset_dir", str(data),
        "--output_dir", str(out),
        "--device", "cpu",
        *extra,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"} | OFFLINE
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=out.parent)


@pytest.fixture(scope="module")
def bundle(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "bundle"
    assert export_run(tiny_run[1], "monai-bundle", out) == []
    return out


def test_the_bundle_holds_what_monai_expects_and_no_patient(bundle):
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
    outputs = meta["network_data_format"]["outputs"]["pred"]["channel_def"]
    assert outputs == {"0": "LGG", "1": "HGG"}
    assert "Apache License" in (bundle / "LICENSE").read_text()
    shared = (bundle / "models" / "run" / "config.json").read_text()
    for private in ("Synth_0001", "/tmp", '"grades"', '"subjects"'):
        assert private not in shared  # counts per class instead; folder names, not paths
    assert json.loads(shared)["store_manifest"]["class_counts"] == {"HGG": 6, "LGG": 4}


def test_the_bundle_runs_with_monai_and_matches_predict(bundle, tiny_run, synth_small, tmp_path):
    out = tmp_path / "out"
    result = run_bundle(bundle, synth_small, out, "--ignore_seg", "false")
    assert result.returncode == 0, result.stderr[-2000:]
    got = read_rows((out / "predictions.csv").read_text())
    want = read_rows(predictions_csv(predict_subjects([synth_small], tiny_run[1], device="cpu")))
    assert sorted(got) == sorted(want) and len(want) == 10
    for subject, row in want.items():
        assert got[subject]["used_seg"] == "True"  # "false" read as false
        for key, expected in row.items():
            if key.startswith("p_hgg") or key == "uncertainty":
                assert float(got[subject][key]) == pytest.approx(float(expected), abs=1e-4)
            else:
                assert got[subject][key] == expected, (subject, key)


def test_the_bundle_grades_without_seg_when_asked(bundle, tiny_run, synth_small, tmp_path):
    subject = synth_small / "Synth_0002"
    out = tmp_path / "out"
    result = run_bundle(bundle, subject, out, "--ignore_seg", "true")
    assert result.returncode == 0, result.stderr[-2000:]
    got = read_rows((out / "predictions.csv").read_text())["Synth_0002"]
    want = predict_subjects([subject], tiny_run[1], ignore_seg=True, device="cpu")[0].to_dict()
    assert got["used_seg"] == "False"
    assert float(got["p_hgg"]) == pytest.approx(want["p_hgg"], abs=1e-4)


def test_a_subject_that_cannot_be_graded_fails_the_run(bundle, tmp_path):
    out = tmp_path / "out"
    result = run_bundle(bundle, tmp_path / "no-such-folder", out)
    assert result.returncode != 0
    assert "not graded" in result.stderr
    rows = read_rows((out / "predictions.csv").read_text())
    assert len(rows) == 1 and next(iter(rows.values()))["error"]


def test_the_bundle_goes_into_a_new_folder(tiny_run, tmp_path):
    (tmp_path / "used.txt").write_text("x")
    with pytest.raises(UsageError, match="not empty"):
        export_run(tiny_run[1], "monai-bundle", tmp_path)
