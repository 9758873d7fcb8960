"""The field's other layouts, end to end: a folder in BrainLesion's names, a Medical
Segmentation Decathlon case and an nnU-Net case, each checked, graded and explained without
renaming, with the answer the BraTS-named original gets."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from helpers import formats
from helpers.cli import invoke

pytestmark = pytest.mark.slow  # trains (tiny_run); predicts and explains through the command line

SUBJECT = "BraTS20_Training_316"
CASE = "BRATS_316"


@pytest.fixture(scope="module")
def layouts(sample_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("layouts")
    source = sample_dir / SUBJECT
    grades = root / "grades.csv"  # the datasets carry no grade: a user's table gives it
    grades.write_text(f"BraTS_2020_subject_ID,Grade\n{SUBJECT},LGG\n{CASE},LGG\n")
    written = {
        "brats": source.parent,
        "brainlesion": formats.brainlesion(source, root / "brainlesion").parent,
        "decathlon": formats.decathlon(source, root / "Task01_BrainTumour", CASE),
        "nnunet": formats.nnunet(source, root / "Dataset001_BraTS", CASE),
    }
    return written, grades


@pytest.mark.parametrize("layout", ["brainlesion", "decathlon", "nnunet"])
def test_each_layout_is_checked_and_graded_as_the_original(layouts, tiny_run, layout):
    """`check` finds the subject usable; `predict` (--force: a run of SYNTHETIC phantoms finds
    real brains out of its distribution) gives the original's P(HGG)."""
    written, grades = layouts
    checked = invoke("check", written[layout], "--labels", grades, "--workers", 0)
    assert checked.exit_code == 0, checked.stdout
    run = tiny_run[1]
    original = invoke("predict", run, written["brats"] / SUBJECT, "--json", "--force")
    answers = invoke("predict", run, written[layout], "--json", "--force")
    assert answers.exit_code == 0, answers.stderr
    (answer,) = json.loads(answers.stdout)
    (expected,) = json.loads(original.stdout)
    assert answer["n_slices"] == expected["n_slices"] and answer["used_seg"]
    assert answer["p_hgg"] == pytest.approx(expected["p_hgg"], abs=2e-3)


def test_a_decathlon_case_is_explained_in_its_own_4d_files_grid(layouts, tiny_run, tmp_path):
    written, _ = layouts
    result = invoke("explain", tiny_run[1], written["decathlon"], "--force", "--out", tmp_path)
    assert result.exit_code == 0, result.stderr
    image = nib.load(written["decathlon"] / "imagesTr" / f"{CASE}.nii.gz")
    cam = nib.load(tmp_path / CASE / "gradcam.nii.gz")
    assert cam.shape == image.shape[:3] and np.array_equal(cam.affine, image.affine)
    assert (tmp_path / CASE / "viewer.html").stat().st_size > 1_000_000


def test_predict_says_which_sequence_it_masked(sample_dir, tiny_run, tmp_path):
    folder = formats.unmasked(sample_dir / SUBJECT, tmp_path)
    original = invoke("predict", tiny_run[1], sample_dir / SUBJECT, "--json", "--force")
    result = invoke("predict", tiny_run[1], folder, "--json", "--force")
    (answer,) = json.loads(result.stdout)
    (warning,) = answer["warnings"]
    assert warning.startswith("FLAIR's background is") and "masked with their brain" in warning
    assert answer["p_hgg"] == pytest.approx(json.loads(original.stdout)[0]["p_hgg"], abs=2e-3)
