"""A PACS-like export read into studies and series: bad files and mixed patients named, the
good series kept."""

import tempfile
from pathlib import Path

import numpy as np
import pytest

from gliograde.scans.dicom import scan_folder
from gliograde.scans.series import assign_roles
from gliograde.scans.simulate import write_exam, write_series

AFFINE = np.diag([-1.0, -1.0, 1.0, 1.0])


def volumes(shape=(24, 20, 12), seed=0):
    rng = np.random.default_rng(seed)
    return {r: rng.integers(0, 1000, shape, dtype=np.int16) for r in ("flair", "t1ce", "t1", "t2")}


def test_an_exam_is_read_and_identified(tmp_path):
    study = write_exam(tmp_path / "export", volumes(), AFFINE)
    scout = np.ones((24, 20, 3), np.int16)
    kind = ("ORIGINAL", "PRIMARY", "LOCALIZER")
    write_series(tmp_path / "export", scout, AFFINE, "localizer", study=study, number=1,
                 image_type=kind)  # fmt: skip
    studies, problems = scan_folder(tmp_path / "export")
    assert problems == [] and len(studies) == 1
    study = studies[0]
    assert study.patient == "P001" and len(study.series) == 5
    chosen, identities, problems = assign_roles(study.series)
    assert problems == []
    assert {r: s.number for r, s in chosen.items()} == {"flair": 2, "t1ce": 3, "t1": 4, "t2": 5}
    assert all(len(s.files) == 12 for s in chosen.values())
    assert all(identities[s.key].confidence == "high" for s in chosen.values())
    localizer = next(s for s in study.series if s.number == 1)
    assert identities[localizer.key].confidence == "set aside"


def test_a_corrupt_file_is_named_and_nothing_else_is_lost(tmp_path):
    write_exam(tmp_path / "export", volumes(), AFFINE)
    victim = sorted((tmp_path / "export").iterdir())[0]
    victim.write_bytes(b"not a dicom file at all" * 10)
    (tmp_path / "export" / "README.txt").write_text("exported by PACS")
    studies, problems = scan_folder(tmp_path / "export")
    assert len(problems) == 2
    assert all("not a readable DICOM file" in p for p in problems)
    _, _, roles_problems = assign_roles(studies[0].series)
    assert roles_problems == []  # one slice fewer in one series, every role still found
    assert sum(len(s.files) for s in studies[0].series) == 4 * 12 - 1


def test_mixed_patients_become_one_study_each(tmp_path):
    write_exam(tmp_path / "export", volumes(seed=1), AFFINE, patient="P001")
    write_exam(tmp_path / "export", volumes(seed=2), AFFINE, patient="P002")
    studies, problems = scan_folder(tmp_path / "export")
    assert problems == [] and [s.patient for s in studies] == ["P001", "P002"]
    for study in studies:
        assert assign_roles(study.series)[2] == []
    assert studies[0].subject_id != studies[1].subject_id


def test_a_missing_sequence_is_one_line(tmp_path):
    v = volumes()
    del v["t2"]
    write_exam(tmp_path / "export", v, AFFINE)
    studies, _ = scan_folder(tmp_path / "export")
    _, _, problems = assign_roles(studies[0].series)
    assert len(problems) == 1 and problems[0].startswith("no T2 series (identified); found:")


def test_each_series_converts_to_the_volume_it_was_written_from(tmp_path):
    """The DICOM route gives back exactly the NIfTI route's voxels and geometry."""
    import nibabel as nib

    from gliograde.scans.convert import series_to_nifti

    affine = np.array([[-0.9, 0, 0, 100.0], [0, -0.9, 0, 120.0], [0, 0, 5.5, -30.0], [0, 0, 0, 1]])
    written = volumes(shape=(30, 26, 8), seed=4)
    write_exam(tmp_path / "export", written, affine)
    studies, _ = scan_folder(tmp_path / "export")
    chosen, _, _ = assign_roles(studies[0].series)
    for role, series in chosen.items():
        img = nib.load(series_to_nifti(series, tmp_path / "nifti", role))
        transform = nib.orientations.ornt_transform(
            nib.io_orientation(img.affine), nib.io_orientation(affine)
        )
        data = nib.orientations.apply_orientation(np.asanyarray(img.dataobj), transform)
        back = img.affine @ nib.orientations.inv_ornt_aff(transform, img.shape)
        assert np.array_equal(data, written[role]), role
        assert np.allclose(back, affine, atol=1e-4), role


def test_an_enhanced_multi_frame_series_is_read_identified_and_converted(tmp_path):
    """One file of 8 frames (as recent scanners export) is a series like any other: its
    timing found in its functional groups, its volume converted exactly."""
    import nibabel as nib

    from gliograde.scans.convert import series_to_nifti
    from gliograde.scans.simulate import SEQUENCES, write_enhanced_series

    affine = np.array([[-0.9, 0, 0, 100.0], [0, -0.9, 0, 120.0], [0, 0, 5.5, -30.0], [0, 0, 0, 1]])
    written = volumes(shape=(30, 26, 12), seed=5)
    study = write_exam(tmp_path / "export", {r: written[r] for r in ("t1ce", "t1", "t2")}, affine)
    description, timing, _ = SEQUENCES["flair"]
    write_enhanced_series(tmp_path / "export", written["flair"], affine, description,
                          timing=timing, study=study, number=9)  # fmt: skip
    (found,), problems = scan_folder(tmp_path / "export")
    assert problems == []
    chosen, identities, problems = assign_roles(found.series)
    assert problems == [] and chosen["flair"].number == 9 and len(chosen["flair"].files) == 1
    assert chosen["flair"].ti_ms == 2500.0 and chosen["flair"].images == 12
    assert identities[chosen["flair"].key].confidence == "high"  # name and timing agree
    img = nib.load(series_to_nifti(chosen["flair"], tmp_path / "nifti", "flair"))
    transform = nib.orientations.ornt_transform(
        nib.io_orientation(img.affine), nib.io_orientation(affine)
    )
    data = nib.orientations.apply_orientation(np.asanyarray(img.dataobj), transform)
    back = img.affine @ nib.orientations.inv_ornt_aff(transform, img.shape)
    assert np.array_equal(data, written["flair"]) and np.allclose(back, affine, atol=1e-4)


def test_conversion_into_a_folder_on_another_filesystem(tmp_path):
    """A spool or cache on its own disk (here /dev/shm, a tmpfs, against the temporary
    folder's disk): the converted volume lands there whole, and no work folder is left."""
    import os

    from gliograde.scans.convert import series_to_nifti

    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second filesystem (/dev/shm) beside the temporary folder")
    write_exam(tmp_path / "export", volumes(), AFFINE)
    studies, _ = scan_folder(tmp_path / "export")
    chosen, _, _ = assign_roles(studies[0].series)
    with tempfile.TemporaryDirectory(dir=shm) as other:
        target = series_to_nifti(chosen["t1"], Path(other) / "cache", "t1")
        assert target == Path(other) / "cache" / "t1.nii.gz" and target.stat().st_size > 0
        assert sorted(p.name for p in target.parent.iterdir()) == ["t1.nii.gz"]
