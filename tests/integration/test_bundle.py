"""The MONAI Bundle export: run by MONAI's own runner, offline, it answers as predict does."""

import json

import pytest

from gliograde.core.errors import UsageError
from gliograde.export import export_run
from gliograde.predict import PredictOptions, predict_subjects
from gliograde.predict.formats import predictions_csv
from helpers.bundle import read_rows, run_bundle

pytestmark = pytest.mark.slow  # trains (tiny_run); runs MONAI's bundle in a child process


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
    want = read_rows(
        predictions_csv(predict_subjects([synth_small], tiny_run[1], PredictOptions(device="cpu")))
    )
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
    want = predict_subjects([subject], tiny_run[1], PredictOptions(ignore_seg=True, device="cpu"))[
        0
    ].to_dict()
    assert got["used_seg"] == "False"
    assert float(got["p_hgg"]) == pytest.approx(want["p_hgg"], abs=1e-4)


def test_out_of_distribution_is_refused_or_forced_as_predict_does(bundle, tiny_run, tmp_path):
    """A SYNTHETIC subject on another grid than the run's phantoms: without ``force`` its row's
    error is predict's own refusal; with ``--force true`` it is graded, flagged and its
    reasons listed, the figures those of ``predict --force``."""
    from gliograde.io.synth import synth_cohort

    cohort = tmp_path / "other-grid"
    synth_cohort(cohort, subjects=2, seed=8, shape=(80, 80, 48), quiet=True)
    subject = next(p for p in cohort.iterdir() if p.is_dir())
    for force in (False, True):
        out = tmp_path / f"out-{force}"
        result = run_bundle(bundle, subject, out, "--force", str(force).lower())
        assert (result.returncode == 0) is force, result.stderr[-2000:]
        got = read_rows((out / "predictions.csv").read_text())[subject.name]
        options = PredictOptions(force=force, device="cpu")
        want = read_rows(predictions_csv(predict_subjects([subject], tiny_run[1], options)))
        want = want[subject.name]
        if force:
            assert got["flag"] == "uncertain" and got["error"] == ""
            assert got["out_of_distribution"] == want["out_of_distribution"] != ""
            assert "grid 80×80×48, trained on 64×64×40" in got["out_of_distribution"]
            assert float(got["p_hgg"]) == pytest.approx(float(want["p_hgg"]), abs=1e-4)
        else:
            assert got["error"] == want["error"]
            assert got["error"].startswith("out of distribution: grid 80×80×48")
            assert "not graded" in result.stderr


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
