"""From raw scans to a BraTS-like subject: a real BraTS subject made raw-like (each sequence
turned, moved and resampled to its own anisotropic grid) and written as a DICOM export, then
preprocessed as ``predict`` takes it, against the same subject preprocessed as it is. The NIfTI
route differs from the DICOM route only before the pipeline (dcm2niix): that part is checked
here on the same export, without preprocessing it a second time."""

import json

import nibabel as nib
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from gliograde import MODALITIES
from gliograde.scans.inputs import preprocess_inputs
from gliograde.scans.simulate import raw_like, write_raw_export
from helpers.exports import dicom_route
from helpers.validator import validator_errors

pytestmark = pytest.mark.slow  # N4, registration and skull stripping of raw scans; a trained run

SUBJECT = "BraTS20_Training_007"


def load(folder, subject):
    return {
        r: np.asanyarray(nib.load(folder / subject / f"{subject}_{r}.nii.gz").dataobj).astype(float)
        for r in MODALITIES
    }


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """predict's cache, shared by this module's tests: the export is preprocessed once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def processed(sample_dir, tmp_path_factory, cache):
    """The original and its raw-like version as a DICOM export, preprocessed: the first by
    ``preprocess``, the export as ``predict`` takes it, into its ``cache`` (the same
    ``preprocess_inputs``; its subject is linked into ``out`` beside the other). Each
    preprocessing of this real subject takes about a minute: each is made once here."""
    from gliograde.scans.cached import preprocess_raw_inputs

    root = tmp_path_factory.mktemp("raw")
    write_raw_export(raw_like(sample_dir / SUBJECT, root / "raw_nifti"), root / "raw_dicom")
    records, errors, notes = preprocess_inputs([sample_dir / SUBJECT], root / "out")
    assert errors == {} and notes == []
    (folder,), raw = preprocess_raw_inputs([root / "raw_dicom"], cache)
    assert raw.errors == {} and list(raw.sources) == [folder.name]
    (root / "out" / folder.name).symlink_to(folder, target_is_directory=True)
    records[folder.name] = json.loads((folder / "preprocess.json").read_text())
    return root / "out", records


def test_each_subject_is_written_in_brats_form_with_its_qc(processed):
    out, records = processed
    assert len(records) == 2
    for subject in records:
        folder = out / subject
        assert (folder / "qc.png").stat().st_size > 10_000
        record = json.loads((folder / "preprocess.json").read_text())
        steps = {"read", "n4", "coregister", "skull strip", "atlas"}
        dicom = subject != SUBJECT
        assert set(record["seconds"]) == steps | ({"dicom to nifti"} if dicom else set())
        assert 800 < record["brain_ml"] < 2200
        assert set(record["series"]) == set(MODALITIES)  # which series made each sequence
        assert record["versions"]["deepbet"] and record["versions"]["SimpleITK"]
        for role in MODALITIES:
            img = nib.load(folder / f"{subject}_{role}.nii.gz")
            assert img.shape == (240, 240, 155) and nib.aff2axcodes(img.affine) == ("L", "P", "S")
            assert np.allclose(img.header.get_zooms(), 1.0)


def restored_subject(records) -> str:
    """The subject preprocessed from the raw-like DICOM export."""
    (subject,) = [s for s in records if s != SUBJECT]
    return subject


def test_preprocessing_restores_the_original(processed):
    out, records = processed
    original = load(out, SUBJECT)
    restored = load(out, restored_subject(records))
    a, b = original["t1"] > 0, restored["t1"] > 0
    assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.96  # brain-mask Dice (measured 0.98)
    centres = [np.argwhere(m).mean(axis=0) for m in (a, b)]
    assert np.linalg.norm(centres[0] - centres[1]) < 1.5  # mm (measured 0.75)
    both = a & b
    for role in MODALITIES:  # 2–4 mm slices lose detail: compare at the scale they keep
        sa, sb = gaussian_filter(original[role], 2), gaussian_filter(restored[role], 2)
        assert np.corrcoef(sa[both], sb[both])[0, 1] > 0.9, role  # measured 0.94–0.97
    ml = [records[s]["brain_ml"] for s in (SUBJECT, restored_subject(records))]
    assert abs(ml[1] - ml[0]) / ml[0] < 0.05


def test_the_dicom_route_reads_the_raw_nifti_volumes_back(processed, tmp_path):
    """What the pipeline is given from the DICOM export (dcm2niix's conversion) is the raw
    NIfTI it was written from: the same voxels, on the same grid up to DICOM's decimal strings;
    and the raw NIfTI folder itself is read as the same four sequences, by their file names."""
    from gliograde.scans.inputs import raw_subjects

    out, _ = processed
    raw = out.parent / "raw_nifti"
    files = dicom_route(out.parent / "raw_dicom", tmp_path)
    assert set(files) == set(MODALITIES)
    for role, path in files.items():
        written = nib.load(raw / f"raw_{role}.nii.gz")
        converted = nib.load(path)
        turn = nib.orientations.ornt_transform(
            nib.io_orientation(converted.affine), nib.io_orientation(written.affine)
        )
        data = nib.orientations.apply_orientation(np.asanyarray(converted.dataobj), turn)
        affine = converted.affine @ nib.orientations.inv_ornt_aff(turn, converted.shape)
        assert np.array_equal(data, np.asanyarray(written.dataobj)), role
        assert np.allclose(affine, written.affine, atol=1e-3), role
    (subject,), errors, _ = raw_subjects([raw])
    assert errors == {}
    assert {r: p.name for r, p in subject.files.items()} == {
        r: f"raw_{r}.nii.gz" for r in MODALITIES
    }


def test_predict_grades_the_restored_subject_as_the_original(processed, tiny_run):
    from gliograde.predict import PredictOptions, predict_subjects

    out, records = processed
    answers = predict_subjects(
        [out / SUBJECT, out / restored_subject(records)], tiny_run[1], PredictOptions(force=True)
    )
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
    dicom_subject = restored_subject(records)
    series = records[dicom_subject]["series"]
    assert {r: s["series"] for r, s in series.items()} == {"flair": 2, "t1ce": 3, "t1": 4, "t2": 5}
    assert all(s["confidence"] == "high" for s in series.values())


def test_a_failed_registration_writes_nothing(sample_dir, tmp_path, monkeypatch):
    """Each sequence left 10 mm off after registration: the similarity-peak check refuses
    them, FLAIR first. BraTS volumes are already aligned, so the registration found is the
    identity, and the patch gives the identity moved by 10 mm without searching for it. (N4 is
    left out too: the check reads the registration, not the bias.)"""
    import SimpleITK as sitk

    from gliograde.scans import register as reg

    # the pipeline imports these at each call, so the patches reach it
    monkeypatch.setattr(reg, "n4", lambda image: image)

    def off_by_10_mm(fixed, moving, kind="rigid", **kwargs):
        return sitk.TranslationTransform(3, (10.0, 0.0, 0.0))

    monkeypatch.setattr(reg, "register", off_by_10_mm)
    records, errors, _ = preprocess_inputs([sample_dir / SUBJECT], tmp_path / "out")
    assert records == {}
    assert "registration to T1ce failed for FLAIR" in errors[SUBJECT]
    assert not (tmp_path / "out" / SUBJECT).exists()


def test_predict_takes_a_dicom_folder(processed, tiny_run, cache):
    """predict DICOM_DIR grades from its cache (the ``processed`` fixture preprocessed it there
    through predict's path), and says so."""
    from gliograde.predict import PredictOptions, predict_subjects

    out, records = processed
    options = PredictOptions(force=True, cache=cache)
    answers = predict_subjects([out.parent / "raw_dicom"], tiny_run[1], options)
    (answer,) = [a.to_dict() for a in answers]
    assert answer["preprocessed"] is True
    assert answer["qc"].startswith(str(cache)) and answer["qc"].endswith("qc.png")
    dicom_subject = restored_subject(records)
    (direct,) = predict_subjects([out / dicom_subject], tiny_run[1], PredictOptions(force=True))
    assert answer["subject"] == dicom_subject
    assert answer["p_hgg"] == pytest.approx(direct.to_dict()["p_hgg"], abs=1e-3)
    assert "preprocessed" not in direct.to_dict()  # a BraTS-like folder is read as it is


def test_predict_writes_a_dicom_sr_in_the_study(processed, tiny_run, cache, tmp_path, monkeypatch):
    """--dicom-sr: one SR per DICOM input, in its study, listing the four series it was made
    from, holding the figures predict printed; a non-DICOM input gets a note, not a file. A
    second predict reuses the cache instead of preprocessing again."""
    import highdicom as hd
    import pydicom

    import gliograde.scans.inputs as inputs_module
    from gliograde.predict import PredictOptions, predict_subjects
    from gliograde.predict.sr import CODING, write_dicom_srs

    out, _ = processed
    export = out.parent / "raw_dicom"
    options = PredictOptions(force=True, cache=cache)
    first = predict_subjects([export, out / SUBJECT], tiny_run[1], options)
    written, notes, failed = write_dicom_srs(first, tmp_path / "sr", "test")
    assert failed == {} and notes == [f"{SUBJECT}: no DICOM export to refer to (not a DICOM "
                                      "input, or the export its preprocess.json names is gone), "
                                      "so no DICOM SR"]  # fmt: skip
    source = [pydicom.dcmread(p, stop_before_pixels=True) for p in export.iterdir()]
    (path,) = written.values()
    sr = hd.sr.srread(path)
    assert path.name == f"{sr.SOPInstanceUID}.dcm"  # no patient identifier in the name
    assert sr.Modality == "SR" and sr.StudyInstanceUID == source[0].StudyInstanceUID
    assert sr.PatientID == source[0].PatientID
    referenced = {
        s.SeriesInstanceUID: len(s.ReferencedSOPSequence)
        for study in sr.CurrentRequestedProcedureEvidenceSequence
        for s in study.ReferencedSeriesSequence
    }
    expected = {}
    for ds in source:
        expected[ds.SeriesInstanceUID] = expected.get(ds.SeriesInstanceUID, 0) + 1
    assert referenced == expected  # every image of the four series, and nothing else
    assert validator_errors(path, "ComprehensiveSR") == []
    (group,) = sr.content.get_image_measurement_groups()
    answer = first[0].to_dict()
    values = {m.name.value: m.value for m in group.get_measurements()}
    assert values["P_HGG"] == pytest.approx(answer["p_hgg"], abs=1e-6)
    assert values["UNCERTAINTY"] == pytest.approx(answer["uncertainty"], abs=1e-6)
    evaluations = {e.name.value: e.value.value for e in group.get_qualitative_evaluations()}
    assert evaluations == {"GRADE": answer["grade"], "FLAG": answer["flag"].upper()}
    assert group.get_qualitative_evaluations()[0].name.scheme_designator == CODING

    def no_second_preprocessing(*args, **kwargs):
        raise AssertionError("preprocessed again")

    monkeypatch.setattr(inputs_module, "preprocess_inputs", no_second_preprocessing)
    (again,) = predict_subjects([export], tiny_run[1], options)
    assert again.to_dict() == answer


def test_a_preprocessed_export_still_gets_its_dicom_sr(processed, tiny_run, tmp_path):
    """preprocess, look at the QC, then predict the output folder --dicom-sr: the SR refers to
    the export's images (preprocess.json names the export); once the export is gone, a note."""
    import shutil

    import pydicom

    from gliograde.predict import PredictOptions, predict_subjects
    from gliograde.predict.sr import write_dicom_srs

    out, records = processed
    export = out.parent / "raw_dicom"
    subject = restored_subject(records)
    assert records[subject]["dicom_folder"] == str(export.resolve())
    assert "dicom_folder" not in records[SUBJECT]
    (graded,) = predict_subjects([out / subject], tiny_run[1], PredictOptions(force=True))
    written, notes, failed = write_dicom_srs([graded], tmp_path / "sr", "test")
    assert failed == {} and notes == []
    sr = pydicom.dcmread(written[subject])
    referenced = {
        sop.ReferencedSOPInstanceUID
        for study in sr.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for sop in series.ReferencedSOPSequence
    }
    images = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in export.iterdir()}
    assert referenced == images
    moved = shutil.copytree(out / subject, tmp_path / "moved" / subject)
    shutil.move(export, tmp_path / "export-elsewhere")
    try:
        (again,) = predict_subjects([moved], tiny_run[1], PredictOptions(force=True))
    finally:
        shutil.move(tmp_path / "export-elsewhere", export)
    assert again.dicom is None
    _, notes, _ = write_dicom_srs([again], tmp_path, "t")
    assert notes == [f"{subject}: no DICOM export to refer to (not a DICOM input, or the export "
                     "its preprocess.json names is gone), so no DICOM SR"]  # fmt: skip


def test_predict_tells_raw_nifti_folders_from_brats_like_subjects(
    processed, sample_dir, tiny_run, tmp_path
):
    """NIfTI files named as a converter names them are raw (preprocessed first); files named as
    a BraTS subject's are read as a subject, and their grids checked, with the way out named."""
    from gliograde.predict import predict_subjects
    from gliograde.scans.cached import is_raw_nifti_folder

    out, _ = processed
    hospital = tmp_path / "hospital"
    hospital.mkdir()
    for role, name in zip(MODALITIES, ("3_AX_FLAIR", "5_T1_POST_GD", "4_T1_MPRAGE", "6_T2_TSE")):
        (hospital / f"{name}.nii.gz").symlink_to(out.parent / "raw_nifti" / f"raw_{role}.nii.gz")
    assert is_raw_nifti_folder(hospital)
    assert not is_raw_nifti_folder(out.parent / "raw_nifti")  # raw_flair, ...: a subject's names
    assert not is_raw_nifti_folder(sample_dir / SUBJECT)
    assert not is_raw_nifti_folder(out / SUBJECT)
    (answer,) = predict_subjects([out.parent / "raw_nifti"], tiny_run[1])
    assert "all volumes must share one grid (raw scans: run `gliograde preprocess` first)" in (
        answer.error
    )


def test_the_predict_command_reports_and_writes_its_srs(processed, tiny_run, cache, tmp_path):
    """`gliograde predict RUN EXPORT SUBJECT MISSING --report --dicom-sr`: each output said on
    stderr, the JSON alone on stdout, exit 1 for the subject that could not be graded while
    the others are graded and reported."""
    import os
    import subprocess
    import sys

    out, _ = processed
    export = out.parent / "raw_dicom"
    cmd = [sys.executable, "-m", "gliograde", "predict", str(tiny_run[1]), str(export),
           str(out / SUBJECT), str(tmp_path / "missing"), "--json", "--force",
           "--report", str(tmp_path / "p.html"), "--dicom-sr", str(tmp_path / "sr")]  # fmt: skip
    env = os.environ | {"GLIOGRADE_CACHE": str(cache)}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert result.returncode == 1
    answers = {a["subject"]: a for a in json.loads(result.stdout)}
    graded = [a for a in answers.values() if "grade" in a]
    assert len(graded) == 2 and sum(a.get("preprocessed", False) for a in graded) == 1
    assert f"note: {SUBJECT}: no DICOM export to refer to" in result.stderr
    (sr_file,) = (tmp_path / "sr").iterdir()
    assert f"DICOM SR of {next(a['subject'] for a in graded if a.get('preprocessed'))}: " \
        f"{sr_file}" in result.stderr  # fmt: skip
    page = (tmp_path / "p.html").read_text()
    assert page.count("data:image/png;base64,") == 1 and "missing" in page


def test_the_dicom_results_of_the_real_export(processed, tiny_run, cache, tmp_path):
    """predict --dicom-out on the real subject's export, whose series are axial: the checks of
    tests/integration/test_dicom_results.py (there on a SYNTHETIC oblique export). The map,
    back on the preprocessed grid, matched the Grad-CAM volume 0.83 inside the brain here
    (2026-12-07; its T1ce series has 2 mm slices, as the oblique one)."""
    from helpers import dicom_results as check

    export = processed[0].parent / "raw_dicom"
    prediction, package = check.graded_package(export, tiny_run[1], tmp_path, cache)
    check.check_objects_are_valid_in_the_study(export, package)
    assert check.map_match(export, prediction, package, oblique=False) > 0.8
    check.check_the_srs_finding(export, prediction, package)
    check.check_key_images(package)


def test_grad_cam_of_a_preprocessed_raw_subject_lies_on_its_volumes(processed, tiny_run, tmp_path):
    """explain on a subject preprocess made from DICOM: gradcam.nii.gz in its (atlas) grid."""
    from gliograde.assess.explain import ExplainOptions, explain_subjects

    out, records = processed
    subject = restored_subject(records)
    options = ExplainOptions(tmp_path, per_patient=1, force=True)
    summary = explain_subjects(tiny_run[1], [out / subject], options)
    assert not summary["errors"]
    flair = nib.load(out / subject / f"{subject}_flair.nii.gz")
    cam = nib.load(tmp_path / subject / "gradcam.nii.gz")
    assert cam.shape == flair.shape and np.array_equal(cam.affine, flair.affine)
    assert cam.get_fdata().max() == pytest.approx(1.0)
    # and in the grid of the T1ce it was made from (the series dcm2niix converted)
    record = json.loads((out / subject / "preprocess.json").read_text())
    grid = record["atlas"]["t1ce_grid"]
    original = nib.load(tmp_path / subject / "gradcam_t1ce.nii.gz")
    assert list(original.shape) == grid["size"]
    assert np.allclose(original.header.get_zooms(), grid["spacing"], atol=1e-4)
    assert original.get_fdata().min() >= 0 and original.get_fdata().max() > 0.5


def test_a_volume_on_the_preprocessed_grid_goes_back_onto_the_original_t1ce(processed, tmp_path):
    """preprocess keeps its atlas transform: its own T1ce, sent back through it, lands on the
    grid of the T1ce it was made from (dcm2niix's conversion of the series: shape, affine,
    voxel order) and on its anatomy."""
    from gliograde.scans.space import to_original_t1ce

    out, records = processed
    subject = restored_subject(records)
    raw = nib.load(dicom_route(out.parent / "raw_dicom", tmp_path / "converted")["t1ce"])
    t1ce = np.asanyarray(nib.load(out / subject / f"{subject}_t1ce.nii.gz").dataobj)
    back = nib.load(to_original_t1ce(t1ce, out / subject, tmp_path / "back.nii.gz"))
    assert back.shape == raw.shape and np.allclose(back.affine, raw.affine, atol=1e-3)
    a, b = (gaussian_filter(np.asanyarray(v.dataobj).astype(np.float32), 2) for v in (back, raw))
    both = (np.asanyarray(back.dataobj) > 0) & (np.asanyarray(raw.dataobj) > 0)
    assert both.sum() > 100_000

    def similarity(moved):
        return np.corrcoef(moved[both], b[both])[0, 1]

    here = similarity(a)  # N4 and the brain mask differ from the raw scan: measured 0.89
    moved = [similarity(np.roll(a, d, axis)) for axis in range(3) for d in (-2, 2)]
    assert here > 0.85 and here > max(moved)  # a peak: 2 voxels off any way is worse (≤ 0.86)
