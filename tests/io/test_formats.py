"""The field's other layouts, written from a real BraTS subject: each is read with the right
roles and labels, and gives the slices the BraTS-named original gives."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from gliograde.core.errors import DataError
from gliograde.io.layouts import discover, discover_inputs
from gliograde.io.volumes import load_subject
from gliograde.preprocess.slices import PrepareConfig, preprocess_subject
from helpers import formats

SUBJECT = "BraTS20_Training_158"


@pytest.fixture(scope="module")
def original(sample_dir):
    """The subject as BraTS names it, and its slices as prepare makes them."""
    (subject,) = [s for s in discover(sample_dir).subjects if s.subject_id == SUBJECT]
    return subject, preprocess_subject(subject, PrepareConfig("brain"))


@pytest.fixture(scope="module")
def written(sample_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    source = sample_dir / SUBJECT
    return {
        "brainlesion": formats.brainlesion(source, root / "brainlesion"),
        "decathlon": formats.decathlon(source, root / "Task01_BrainTumour", "BRATS_158"),
        "nnunet": formats.nnunet(source, root / "Dataset001_BraTS", "BraTS_158"),
    }


def only(subjects):
    (subject,) = subjects
    return subject


def same_slices(a, b):
    """The same slices (z), segmentation and images: z-scores within float16 rounding."""
    assert a.warnings == [] and b.warnings == []  # nothing masked: the sequences agree
    assert np.array_equal(a.z, b.z)
    assert np.array_equal(a.seg, b.seg)
    difference = np.abs(a.images.astype(np.float32) - b.images.astype(np.float32))
    assert difference.max() < 0.02  # float16 steps at |z| up to 8 are ≤ 0.008


@pytest.mark.slow  # a real subject's full volumes, rewritten in each layout
def test_brainlesion_names_and_unit_range_intensities(original, written):
    subject = only(discover_inputs([written["brainlesion"]])[0])
    assert subject.subject_id == SUBJECT and not subject.problems
    assert {r: p.name.rsplit("_", 1)[1] for r, p in subject.files.items()} == {
        "flair": "fla.nii.gz", "t1ce": "t1c.nii.gz", "t1": "t1.nii.gz", "t2": "t2.nii.gz",
        "seg": "seg.nii.gz",
    }  # fmt: skip
    same_slices(original[1], preprocess_subject(subject, PrepareConfig("brain")))


@pytest.mark.slow  # a real subject rewritten and read as 4D files
def test_a_decathlon_case_is_read_by_its_declared_names_and_labels(original, written):
    cohort = discover(written["decathlon"], need_labels=False)
    assert cohort.layout == "decathlon"
    subject = only(cohort.subjects)  # the "._" file of a macOS tar is not a case
    assert subject.subject_id == "BRATS_158"
    assert subject.channels == {"flair": 0, "t1": 1, "t1ce": 2, "t2": 3}
    assert subject.seg_labels == {0: 0, 1: 2, 2: 1, 3: 4}
    volumes = load_subject(subject)
    expected = load_subject(original[0])
    for got, original_channel in zip(volumes.channels, expected.channels, strict=True):
        assert np.array_equal(got, original_channel.astype(np.float32))
    assert np.array_equal(volumes.seg, expected.seg)  # BraTS's codes, by the labels' names
    same_slices(original[1], preprocess_subject(subject, PrepareConfig("brain")))


@pytest.mark.slow  # a real subject's full volumes, rewritten in each layout
def test_an_nnunet_case_is_read_whatever_the_channel_order(original, written):
    cohort = discover(written["nnunet"], need_labels=False)
    subject = only(cohort.subjects)
    assert cohort.layout == "nnunet" and subject.subject_id == "BraTS_158"
    assert {r: p.name for r, p in subject.files.items()} == {
        "t2": "BraTS_158_0000.nii.gz", "flair": "BraTS_158_0001.nii.gz",
        "t1ce": "BraTS_158_0002.nii.gz", "t1": "BraTS_158_0003.nii.gz", "seg": "BraTS_158.nii.gz",
    }  # fmt: skip
    same_slices(original[1], preprocess_subject(subject, PrepareConfig("brain")))
    # its image folder alone, as predict takes it
    assert only(discover_inputs([written["nnunet"] / "imagesTr"])[0]).subject_id == "BraTS_158"


@pytest.mark.slow  # a real subject's full volumes, rewritten in each layout
def test_training_needs_the_grades_of_a_dataset(written, sample_dir, tmp_path):
    cohort = discover(written["decathlon"])
    assert only(cohort.subjects).problems == ["grade unknown: give the grades with --labels CSV"]
    labels = tmp_path / "grades.csv"
    labels.write_text("BraTS_2020_subject_ID,Grade\nBRATS_158,LGG\n")
    assert only(discover(written["decathlon"], labels).subjects).label == "LGG"


@pytest.mark.slow  # a real subject's full volumes, rewritten in each layout
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"modality": {"0": "FLAIR", "1": "T1w", "2": "T1", "3": "T2w"}}, "both read as T1"),
        ({"modality": {"0": "FLAIR", "1": "ADC", "2": "t1gd", "3": "T2w"}}, "'ADC', none of"),
        ({"modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd"}}, "no channel named T2"),
        ({"labels": {"0": "background", "1": "tumour core"}}, "'tumour core' is none of"),
        ({"modality": {"zero": "FLAIR"}}, "channel indices must be numbers"),
        ({"labels": {"background": 0, "edema": "one"}}, "has the value 'one', not a number"),
    ],
)
def test_an_ambiguous_dataset_json_is_one_line_that_says_what_to_fix(written, change, message):
    path = written["decathlon"] / "dataset.json"
    kept = path.read_text()
    try:
        path.write_text(json.dumps(json.loads(kept) | change))
        with pytest.raises(DataError, match=message):
            discover(written["decathlon"], need_labels=False)
    finally:
        path.write_text(kept)


@pytest.mark.slow  # a real subject's full volumes, rewritten and read
def test_an_unmasked_flair_is_masked_with_the_others_brain(original, sample_dir, tmp_path):
    folder = formats.unmasked(sample_dir / SUBJECT, tmp_path)
    subject = only(discover_inputs([folder])[0])
    slices = preprocess_subject(subject, PrepareConfig("brain"))
    (warning,) = slices.warnings
    flair = nib.load(sample_dir / SUBJECT / f"{SUBJECT}_flair.nii.gz")
    value = 0.0219 * float(np.asanyarray(flair.dataobj).max())
    assert warning.startswith(f"FLAIR's background is {value:.4g}, not 0, where the other three")
    slices.warnings = []  # said; the slices are the original's
    brain_ml = original[1].profile["brain_ml"]
    assert f"({brain_ml:,.0f} mL)" in warning
    assert slices.profile["brain_ml"] == pytest.approx(brain_ml)
    same_slices(original[1], slices)


@pytest.mark.slow  # a real subject's full volumes, rewritten and read
def test_two_unmasked_sequences_are_named_by_the_guard(original, sample_dir, tmp_path):
    """No three sequences agree: nothing is masked, and the out-of-distribution line blames the
    two sequences whose own brain is implausible, not the skull."""
    from gliograde.infer.guard import volume_reasons

    folder = formats.unmasked(sample_dir / SUBJECT, tmp_path, roles=("flair", "t2"))
    slices = preprocess_subject(only(discover_inputs([folder])[0]), PrepareConfig("brain"))
    assert slices.warnings == []
    (line,) = volume_reasons(slices.profile, {"brain_ml": [1300.0, 1700.0]})
    assert "made by FLAIR" in line and "T2" in line and "T1ce, T1: at most" in line
    assert "skull" not in line


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("nonenhancing tumor", 1), ("Non-Enhancing Tumor", 1), ("NETC", 1), ("necrosis", 1),
        ("SNFH", 2), ("surrounding non-enhancing FLAIR hyperintensity", 2), ("oedema", 2),
        ("ET", 4), ("enhancing tumour", 4), ("background", 0),
    ],
)  # fmt: skip
def test_label_names_of_the_field_map_to_brats_codes(name, code, tmp_path):
    from gliograde.io.datasets import brats_code

    assert brats_code(name, tmp_path) == code


def test_nnunet_region_labels_give_each_label_its_compartment(tmp_path):
    from gliograde.io.datasets import brats_codes

    regions = {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3]}
    regions["enhancing tumor"] = [3]  # nnU-Net's Dataset137_BraTS2021
    assert brats_codes({"labels": regions}, tmp_path) == {0: 0, 1: 2, 2: 1, 3: 4}


def test_a_segmentation_with_fractional_labels_is_refused(tmp_path):
    from gliograde.io.volumes import brats_labels

    with pytest.raises(DataError, match="not whole numbers"):
        brats_labels(np.array([0.0, 0.5, 1.0]), {0: 0, 1: 2}, tmp_path / "seg.nii.gz")


@pytest.mark.slow  # a real subject's full volumes, rewritten in each layout
def test_only_a_dataset_folder_or_its_image_folders_are_a_dataset(written):
    from gliograde.io.datasets import dataset_root

    root = written["nnunet"]
    assert dataset_root(root) == root == dataset_root(root / "imagesTr")
    assert dataset_root(root / "labelsTr") is None and dataset_root(root / "dataset.json") is None


@pytest.mark.slow  # a real subject's full volumes, rewritten in each layout
def test_channel_files_without_their_dataset_json_say_so(written, tmp_path):
    import shutil

    folder = shutil.copytree(written["nnunet"] / "imagesTr", tmp_path / "case")
    (problem,) = only(discover_inputs([folder])[0]).problems
    assert problem.startswith("channel files (CASE_0000.nii.gz, ...) need the dataset.json")


def test_a_lone_signal_that_is_not_a_constant_is_not_masked():
    """A FLAIR reaching beyond the others with real signal (a skull, a wider field of view):
    not called a background, nothing masked, left for the guard."""
    from gliograde.io.consensus import mask_lone_background

    rng = np.random.default_rng(0)
    images = np.zeros((4, 20, 20, 20), dtype=np.float32)
    images[:, 5:15, 5:15, 5:15] = 1.0
    images[0][images[0] == 0] = rng.uniform(0.1, 1.0, size=int((images[0] == 0).sum()))
    before = images.copy()
    assert mask_lone_background(images, 0.001) == [] and np.array_equal(images, before)
