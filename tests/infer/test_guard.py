"""The out-of-distribution guard: a patient unlike the run's training data is refused, or with
--force graded, flagged uncertain and told why."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from gliograde.infer.guard import out_of_distribution
from helpers.cli import invoke

TRAINED = {
    "shape": [[240, 240, 155], [240, 240, 155]],
    "spacing_mm": [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]],
    "obliquity_deg": [0.0, 0.0],
    "brain_ml": [1000.0, 1600.0],
    "z_low": [[-2.0] * 4, [-1.5] * 4],
    "z_high": [[3.0] * 4, [4.0] * 4],
}
INSIDE = {
    "shape": [240, 240, 155],
    "spacing_mm": [1.0, 1.0, 1.0],
    "obliquity_deg": 0.0,
    "brain_ml": 1300.0,
    "z_low": [-1.8] * 4,
    "z_high": [3.5] * 4,
}


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"spacing_mm": [0.9, 0.9, 5.5]}, "voxel spacing 0.9×0.9×5.5 mm, trained on 1×1×1 mm"),
        ({"shape": [256, 224, 26]}, "grid 256×224×26, trained on 240×240×155"),
        ({"obliquity_deg": 12.0}, "axes oblique by 12.0°"),
        ({"brain_ml": 3100.0}, "brain volume 3100 mL, trained on 1000–1600 mL (skull not"),
        ({"brain_ml": 700.0}, "brain volume 700 mL"),
        ({"z_high": [3.5, 9.0, 3.5, 3.5]}, "T1ce intensities unlike the training data (upper"),
    ],
)
def test_each_check_by_hand(change, expected):
    assert out_of_distribution(INSIDE, TRAINED) == []
    reasons = out_of_distribution(INSIDE | change, TRAINED)
    assert len(reasons) == 1 and reasons[0].startswith(expected), reasons


def test_a_run_without_recorded_ranges_is_not_checked():
    assert out_of_distribution(INSIDE | {"brain_ml": 9999.0}, None) == []


def rewrite(source, target, change):
    """Copy a subject folder, passing each volume (data, affine) through ``change``."""
    target.mkdir(parents=True)
    for path in source.iterdir():
        img = nib.load(path)
        data, affine = change(np.asanyarray(img.dataobj), img.affine.copy(), "seg" in path.name)
        nib.save(nib.Nifti1Image(data, affine), target / path.name)
    return target


def anisotropic(data, affine, is_seg):
    affine[:3, :3] = np.diag([-0.9, -0.9, 5.5])
    return data, affine


def other_grid(data, affine, is_seg):
    return np.pad(data, ((4, 2), (0, 0), (0, 0)))[:, :, 8:34], affine


def with_skull(data, affine, is_seg):
    if is_seg:
        return data, affine
    head = ndimage.binary_dilation(data != 0, iterations=8)  # scalp and skull: a head's volume
    shell = head & (data == 0)
    out = data.copy()
    out[shell] = int(data.max()) * 3
    return out, affine


@pytest.mark.parametrize(
    "change, reason",
    [(anisotropic, "voxel spacing"), (other_grid, "grid"), (with_skull, "brain volume")],
    ids=["anisotropic", "grid", "skull"],
)
def test_predict_refuses_what_the_run_never_saw_and_grades_it_with_force(
    fake_tiny_run, synth_small, tmp_path, change, reason
):
    from gliograde.predict import PredictOptions, predict_subjects

    _, run, _ = fake_tiny_run
    source = sorted(p for p in synth_small.iterdir() if p.is_dir())[1]
    subject = rewrite(source, tmp_path / source.name, change)
    (refused,) = predict_subjects([subject], run, PredictOptions(device="cpu"))
    assert refused.error.startswith("out of distribution: ") and reason in refused.error
    assert "--force" in refused.error
    (forced,) = predict_subjects([subject], run, PredictOptions(device="cpu", force=True))
    answer = forced.to_dict()
    assert answer["flag"] == "uncertain" and any(reason in r for r in answer["out_of_distribution"])
    (plain,) = predict_subjects([source], run, PredictOptions(device="cpu"))
    assert plain.error is None and "out_of_distribution" not in plain.to_dict()
    if change is anisotropic:  # explain refuses it as predict does
        from gliograde.assess.explain import ExplainOptions, explain_subjects

        summary = explain_subjects(
            run, [subject, source], ExplainOptions(tmp_path / "x", device="cpu")
        )
        assert reason in summary["errors"][subject.name] and source.name in summary["answers"]


def test_force_on_the_command_line(fake_tiny_run, synth_small, tmp_path):
    _, run, _ = fake_tiny_run
    source = sorted(p for p in synth_small.iterdir() if p.is_dir())[2]
    subject = rewrite(source, tmp_path / source.name, anisotropic)
    cmd = ["predict", run, subject, "--json", "--device", "cpu"]
    refused = invoke(*cmd)
    assert refused.exit_code == 1 and "out of distribution" in refused.stderr
    forced = invoke(*cmd, "--force")
    assert forced.exit_code == 0, forced.stderr
    (answer,) = json.loads(forced.stdout)
    assert answer["flag"] == "uncertain" and answer["out_of_distribution"]
    shutil.rmtree(subject)


@pytest.mark.slow  # the four real subjects' full volumes, each left out
def test_real_patients_are_not_refused_by_a_store_of_other_real_patients(sample_dir):
    """Leave one out on the four real BraTS subjects: each is inside the range of the others.

    (The first margins, a quarter of the range and at least 0.5 SD, refused all four: normal
    patients' intensity tails differ by 1 to 2 SD, and an LGG without enhancement has a short
    T1ce tail. This test keeps the guard from refusing the data it exists to let through.)
    """
    from gliograde.io.layouts import discover
    from gliograde.preprocess.profile import profile_range
    from gliograde.preprocess.slices import PrepareConfig, preprocess_subject

    cohort = discover(sample_dir)
    profiles = {
        s.subject_id: preprocess_subject(s, PrepareConfig()).profile for s in cohort.subjects
    }
    for sid, profile in profiles.items():
        others = profile_range([p for k, p in profiles.items() if k != sid])
        assert out_of_distribution(profile, others) == [], sid
        assert 800 <= profile["brain_ml"] <= 2200 and profile["spacing_mm"] == [1.0, 1.0, 1.0]
