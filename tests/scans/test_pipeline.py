"""From raw scans to a BraTS-like subject: a real BraTS subject made raw-like (each sequence
turned, moved and resampled to its own anisotropic grid), then preprocessed from NIfTI and from
DICOM, against the same subject preprocessed as it is."""

import json

import nibabel as nib
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from dicom import SEQUENCES, write_series
from gliograde import MODALITIES
from gliograde.scans.inputs import preprocess_inputs
from raw import raw_like

SUBJECT = "BraTS20_Training_007"


def load(folder, subject):
    return {
        r: np.asanyarray(nib.load(folder / subject / f"{subject}_{r}.nii.gz").dataobj).astype(float)
        for r in MODALITIES
    }


@pytest.fixture(scope="module")
def processed(sample_dir, tmp_path_factory):
    """The original, its raw-like NIfTI version and the same as a DICOM export, preprocessed."""
    root = tmp_path_factory.mktemp("raw")
    raw = raw_like(sample_dir / SUBJECT, root / "raw_nifti")
    for number, role in enumerate(MODALITIES, start=2):
        img = nib.load(raw[role])
        description, timing, agent = SEQUENCES[role]
        write_series(root / "raw_dicom", np.asanyarray(img.dataobj), img.affine, description,
                     timing, agent, number=number)  # fmt: skip
    inputs = [sample_dir / SUBJECT, root / "raw_nifti", root / "raw_dicom"]
    records, errors = preprocess_inputs(inputs, root / "out")
    assert errors == {}
    return root / "out", records


def test_each_subject_is_written_in_brats_form_with_its_qc(processed):
    out, records = processed
    assert len(records) == 3
    for subject in records:
        folder = out / subject
        assert (folder / "qc.png").stat().st_size > 10_000
        record = json.loads((folder / "preprocess.json").read_text())
        assert set(record["seconds"]) == {"read", "n4", "coregister", "skull strip", "atlas"}
        assert 800 < record["brain_ml"] < 2200
        for role in MODALITIES:
            img = nib.load(folder / f"{subject}_{role}.nii.gz")
            assert img.shape == (240, 240, 155) and nib.aff2axcodes(img.affine) == ("L", "P", "S")
            assert np.allclose(img.header.get_zooms(), 1.0)


def test_preprocessing_restores_the_original(processed):
    out, records = processed
    original = load(out, SUBJECT)
    restored = load(out, "raw_nifti")
    a, b = original["t1"] > 0, restored["t1"] > 0
    assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.93  # brain-mask Dice
    both = a & b
    for role in MODALITIES:  # 2–4 mm slices lose detail: compare at the scale they keep
        sa, sb = gaussian_filter(original[role], 2), gaussian_filter(restored[role], 2)
        assert np.corrcoef(sa[both], sb[both])[0, 1] > 0.7, role
    ml = {s: records[s]["brain_ml"] for s in (SUBJECT, "raw_nifti")}
    assert abs(ml["raw_nifti"] - ml[SUBJECT]) / ml[SUBJECT] < 0.05


def test_the_dicom_and_nifti_routes_give_the_same_volumes(processed):
    out, records = processed
    (dicom_subject,) = [s for s in records if s not in (SUBJECT, "raw_nifti")]
    nifti, dicom = load(out, "raw_nifti"), load(out, dicom_subject)
    a, b = nifti["t1"] > 0, dicom["t1"] > 0
    assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.99
    # dcm2niix gives back the very voxels (tests/scans/test_dicom.py); the geometry passes
    # through DICOM's decimal strings, so the registrations start from a hair apart
    # (measured: correlation 0.9985 for FLAIR, the lowest)
    for role in MODALITIES:
        assert np.corrcoef(nifti[role].ravel(), dicom[role].ravel())[0, 1] > 0.995, role


def test_predict_grades_the_restored_subject_as_the_original(processed, tiny_run):
    from gliograde.predict import predict_subjects

    out, _ = processed
    answers = predict_subjects([out / SUBJECT, out / "raw_nifti"], tiny_run[1], force=True)
    first, second = (a.to_dict() for a in answers)
    assert first["grade"] == second["grade"]
    assert abs(first["p_hgg"] - second["p_hgg"]) < 0.1


def test_a_missing_sequence_writes_nothing_for_that_subject(sample_dir, tmp_path):
    import shutil

    partial = tmp_path / "partial"
    partial.mkdir()
    for role in ("flair", "t1ce", "t1"):
        shutil.copy(sample_dir / SUBJECT / f"{SUBJECT}_{role}.nii.gz", partial)
    records, errors = preprocess_inputs([partial], tmp_path / "out")
    assert records == {} and errors["partial"].startswith("no T2 series (identified); found:")
    assert not (tmp_path / "out" / "partial").exists()
