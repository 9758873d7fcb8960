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
    records, errors, notes = preprocess_inputs(inputs, root / "out")
    assert errors == {} and notes == []
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
        assert set(record["series"]) == set(MODALITIES)  # which series made each sequence
        assert record["versions"]["deepbet"] and record["versions"]["SimpleITK"]
        for role in MODALITIES:
            img = nib.load(folder / f"{subject}_{role}.nii.gz")
            assert img.shape == (240, 240, 155) and nib.aff2axcodes(img.affine) == ("L", "P", "S")
            assert np.allclose(img.header.get_zooms(), 1.0)


def test_preprocessing_restores_the_original(processed):
    out, records = processed
    original = load(out, SUBJECT)
    restored = load(out, "raw_nifti")
    a, b = original["t1"] > 0, restored["t1"] > 0
    assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.96  # brain-mask Dice (measured 0.98)
    centres = [np.argwhere(m).mean(axis=0) for m in (a, b)]
    assert np.linalg.norm(centres[0] - centres[1]) < 1.5  # mm (measured 0.75)
    both = a & b
    for role in MODALITIES:  # 2–4 mm slices lose detail: compare at the scale they keep
        sa, sb = gaussian_filter(original[role], 2), gaussian_filter(restored[role], 2)
        assert np.corrcoef(sa[both], sb[both])[0, 1] > 0.9, role  # measured 0.94–0.97
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
    records, errors, _ = preprocess_inputs([partial], tmp_path / "out")
    assert records == {} and errors["partial"].startswith("no T2 series (identified); found:")
    assert not (tmp_path / "out" / "partial").exists()


def test_the_dicom_record_names_each_series_and_how_sure(processed):
    _, records = processed
    (dicom_subject,) = [s for s in records if s not in (SUBJECT, "raw_nifti")]
    series = records[dicom_subject]["series"]
    assert {r: s["series"] for r, s in series.items()} == {"flair": 2, "t1ce": 3, "t1": 4, "t2": 5}
    assert all(s["confidence"] == "high" for s in series.values())


def test_a_failed_registration_writes_nothing(sample_dir, tmp_path, monkeypatch):
    """FLAIR left 10 mm off after registration: the similarity-peak check refuses it."""
    import SimpleITK as sitk

    from gliograde.scans import register as reg

    found_by = reg.register  # the pipeline imports it at each call, so the patch reaches it

    def off_by_10_mm(fixed, moving, kind="rigid", **kwargs):
        found = found_by(fixed, moving, kind, **kwargs)
        return sitk.CompositeTransform([found, sitk.TranslationTransform(3, (10.0, 0.0, 0.0))])

    monkeypatch.setattr(reg, "register", off_by_10_mm)
    records, errors, _ = preprocess_inputs([sample_dir / SUBJECT], tmp_path / "out")
    assert records == {}
    assert "registration to T1ce failed for FLAIR" in errors[SUBJECT]
    assert not (tmp_path / "out" / SUBJECT).exists()


def test_an_implausible_brain_volume_is_refused():
    from gliograde.core.errors import DataError
    from gliograde.scans.pipeline import check_figures

    good = {"flair": 0.01, "t1": 0.05, "t2": 0.02}
    check_figures("S", 1400.0, good)
    for ml in (500.0, 3500.0):
        with pytest.raises(DataError, match="brain volume"):
            check_figures("S", ml, good)


def test_predict_takes_a_dicom_folder(processed, tiny_run, tmp_path, monkeypatch):
    """predict DICOM_DIR preprocesses into its cache, grades, and says so."""
    from gliograde.predict import predict_subjects

    out, records = processed
    monkeypatch.setenv("GLIOGRADE_CACHE", str(tmp_path / "cache"))
    (answer,) = [a.to_dict() for a in predict_subjects([out.parent / "raw_dicom"], tiny_run[1],
                                                        force=True)]  # fmt: skip
    assert answer["preprocessed"] is True
    assert answer["qc"].startswith(str(tmp_path / "cache")) and answer["qc"].endswith("qc.png")
    (dicom_subject,) = [s for s in records if s not in (SUBJECT, "raw_nifti")]
    (direct,) = predict_subjects([out / dicom_subject], tiny_run[1], force=True)
    assert answer["subject"] == dicom_subject
    assert answer["p_hgg"] == pytest.approx(direct.to_dict()["p_hgg"], abs=1e-3)
    assert "preprocessed" not in direct.to_dict()  # a BraTS-like folder is read as it is
