"""Raw inputs found and named: folders and CSV manifests (subjects named by the user, a series
map per subject), each problem one line that loses nothing of the other subjects."""

import nibabel as nib
import numpy as np
import pytest

from gliograde.core.errors import DataError
from gliograde.scans.inputs import raw_subjects
from gliograde.scans.simulate import write_exam

AFFINE = np.diag([-1.0, -1.0, 1.0, 1.0])
ROLES = ("flair", "t1ce", "t1", "t2")


def volumes(seed=0):
    rng = np.random.default_rng(seed)
    return {r: rng.integers(0, 1000, (16, 12, 10), dtype=np.int16) for r in ROLES}


def nifti_folder(folder, names=("AX FLAIR", "T1 POST GD", "T1 pre", "T2 TSE")):
    folder.mkdir(parents=True)
    for name, volume in zip(names, volumes().values()):
        nib.save(nib.Nifti1Image(volume, np.eye(4)), folder / f"{name}.nii.gz")
    return folder


def test_a_manifest_names_subjects_and_maps_series_per_row(tmp_path):
    write_exam(tmp_path / "exam_a", volumes(1), AFFINE, patient="P001")
    write_exam(tmp_path / "exam_b", volumes(2), AFFINE, patient="P002")
    nifti_folder(tmp_path / "niftis")
    (tmp_path / "m.csv").write_text(
        "subject_id,path,series_map\n"
        "case-a,exam_a,\n"
        "case-b,exam_b,flair=5 t2=2\n"  # this row's own map: FLAIR and T2 swapped on purpose
        "case-c,niftis,\n"
    )
    subjects, errors, notes = raw_subjects([tmp_path / "m.csv"])
    assert errors == {} and notes == []
    by_name = {s.subject_id: s for s in subjects}
    assert sorted(by_name) == ["case-a", "case-b", "case-c"]
    assert by_name["case-a"].series["flair"].number == 2  # identified
    assert by_name["case-b"].series["flair"].number == 5  # as the row says
    assert by_name["case-b"].series["t2"].number == 2
    assert by_name["case-c"].files["t1ce"].name == "T1 POST GD.nii.gz"


def test_a_manifest_of_files_gives_the_roles(tmp_path):
    folder = nifti_folder(tmp_path / "n", names=("a", "b", "c", "d"))  # names say nothing
    (tmp_path / "m.csv").write_text(
        "subject_id,flair,t1ce,t1,t2\n"
        "one,n/a.nii.gz,n/b.nii.gz,n/c.nii.gz,n/d.nii.gz\n"
        "two,n/a.nii.gz,n/b.nii.gz,n/missing.nii.gz,n/d.nii.gz\n"
    )
    subjects, errors, _ = raw_subjects([tmp_path / "m.csv"])
    assert [s.subject_id for s in subjects] == ["one"]
    assert subjects[0].files == {r: folder / f"{x}.nii.gz" for r, x in zip(ROLES, "abcd")}
    assert subjects[0].chosen["t1"]["confidence"] == "given"
    assert list(errors) == ["two"] and "t1" in errors["two"] and "missing.nii.gz" in errors["two"]


def test_manifest_rows_that_cannot_be_are_one_line_each(tmp_path):
    write_exam(tmp_path / "mixed", volumes(1), AFFINE, patient="P001")
    write_exam(tmp_path / "mixed", volumes(2), AFFINE, patient="P002")
    write_exam(tmp_path / "good", volumes(3), AFFINE, patient="P003")
    (tmp_path / "m.csv").write_text(
        "subject_id,path\nmix,mixed\ngood,good\ngood,good\n,good\ngone,nowhere\n"
    )
    subjects, errors, _ = raw_subjects([tmp_path / "m.csv"])
    assert [s.subject_id for s in subjects] == ["good"]
    assert "holds 2 studies" in errors["mix"]
    assert errors["good (m.csv line 4)"] == "subject_id given twice"
    assert errors["m.csv line 5"] == "no subject_id"
    assert "no such folder" in errors["gone"]


def test_a_manifest_without_the_columns_is_refused(tmp_path):
    (tmp_path / "m.csv").write_text("subject_id,flair\nx,a.nii.gz\n")
    with pytest.raises(DataError, match="needs subject_id and either path or flair,t1ce,t1,t2"):
        raw_subjects([tmp_path / "m.csv"])


def test_a_row_without_a_path_or_with_a_bad_map_is_its_own_line(tmp_path):
    """An empty path cell is not the CSV's own folder; a bad series map loses only its row."""
    write_exam(tmp_path / "exam", volumes(1), AFFINE)
    write_exam(tmp_path, volumes(2), AFFINE, patient="P009")  # a study beside the CSV
    (tmp_path / "m.csv").write_text(
        "subject_id,path,series_map\nempty,,\nbadmap,exam,flair:7\ngood,exam,\n"
    )
    subjects, errors, _ = raw_subjects([tmp_path / "m.csv"])
    assert [s.subject_id for s in subjects] == ["good"]
    assert errors["empty"] == "m.csv line 2: give a path, or the four files flair,t1ce,t1,t2"
    assert errors["badmap"].startswith("m.csv line 3: --series-map flair:7: write ROLE=SERIES")
