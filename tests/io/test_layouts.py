import csv
import os

import pytest

from gliograde.core.errors import DataError, UsageError
from gliograde.io.layouts import discover, find_subject_files, role_of

SAMPLE_GRADES = {
    "BraTS20_Training_007": "HGG",
    "BraTS20_Training_158": "HGG",
    "BraTS20_Training_309": "LGG",
    "BraTS20_Training_316": "LGG",
}


def grades_of(cohort):
    return {s.subject_id: s.label for s in cohort.subjects}


def test_brats2020_sample_is_found_with_grades(sample_dir):
    cohort = discover(sample_dir)
    assert cohort.layout == "brats2020"
    assert grades_of(cohort) == SAMPLE_GRADES
    assert all(not s.problems for s in cohort.subjects)
    assert all(set(s.files) == {"flair", "t1ce", "t1", "t2", "seg"} for s in cohort.subjects)
    # 369 rows, 4 folders: the rest is a note, not a problem.
    assert any("365 rows" in n for n in cohort.notes)


def test_brats2019_layout_of_the_sample(sample_dir, tmp_path):
    for sid, grade in SAMPLE_GRADES.items():
        (tmp_path / grade).mkdir(exist_ok=True)
        (tmp_path / grade / sid).symlink_to(sample_dir / sid)
    cohort = discover(tmp_path)
    assert cohort.layout == "brats2019"
    assert grades_of(cohort) == SAMPLE_GRADES
    assert all(not s.problems and len(s.files) == 5 for s in cohort.subjects)


def test_csv_manifest_of_the_sample(sample_dir, tmp_path):
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["subject_id", "grade", "flair", "t1", "t1ce", "t2", "seg"])
        for sid, grade in SAMPLE_GRADES.items():
            folder = os.path.relpath(sample_dir / sid, tmp_path)
            roles = ("flair", "t1", "t1ce", "t2", "seg")
            w.writerow([sid, grade, *(f"{folder}/{sid}_{m}.nii.gz" for m in roles)])
    cohort = discover(manifest)
    assert cohort.layout == "manifest"
    assert grades_of(cohort) == SAMPLE_GRADES
    assert all(not s.problems and len(s.files) == 5 for s in cohort.subjects)


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("BraTS20_Training_001_flair.nii", "flair"),
        ("BraTS20_Training_001_t1ce.nii.gz", "t1ce"),
        ("BraTS20_Training_001_t1.nii.gz", "t1"),
        ("BraTS20_Training_001_T2.NII.GZ", "t2"),
        ("BraTS-GLI-00000-000-t1c.nii.gz", "t1ce"),
        ("BraTS-GLI-00000-000-t2f.nii.gz", "flair"),
        ("W39_1998.09.19_Segm.nii", None),
        ("notes.txt", None),
    ],
)
def test_role_of_file_names(tmp_path, name, role):
    assert role_of(tmp_path / name) == role


def test_misnamed_seg_of_subject_355_is_found(tmp_path):
    folder = tmp_path / "BraTS20_Training_355"
    folder.mkdir()
    for m in ("flair", "t1", "t1ce", "t2"):
        (folder / f"BraTS20_Training_355_{m}.nii").write_bytes(b"x")
    (folder / "W39_1998.09.19_Segm.nii").write_bytes(b"x")
    files, problems = find_subject_files(folder)
    assert problems == []
    assert files["seg"].name == "W39_1998.09.19_Segm.nii"


def write_labels(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Grade", "BraTS_2020_subject_ID"])
        w.writerows(rows)


def test_label_problems_unknown_conflicting_and_missing(cohort_copy):
    ids = sorted(p.name for p in cohort_copy.iterdir() if p.is_dir())
    rows = [("HGG", ids[0]), ("GBM", ids[1]), ("HGG", ids[2]), ("LGG", ids[2])]
    rows += [("LGG", i) for i in ids[4:]]
    write_labels(cohort_copy / "name_mapping.csv", rows)
    subjects = {s.subject_id: s for s in discover(cohort_copy).subjects}
    assert subjects[ids[0]].problems == []
    assert "unknown grade 'GBM'" in subjects[ids[1]].problems[0]
    assert "conflicting grades" in subjects[ids[2]].problems[0]
    assert "no row for this subject" in subjects[ids[3]].problems[0]


def test_unrelated_files_are_ignored_and_mixed_suffixes_accepted(cohort_copy):
    (cohort_copy / "README.txt").write_text("hello")
    (cohort_copy / "empty_dir").mkdir()
    (cohort_copy / "docs").mkdir()
    (cohort_copy / "docs" / "notes.md").write_text("x")
    sid = sorted(p.name for p in cohort_copy.iterdir() if p.name.startswith("Synth"))[0]
    gz = cohort_copy / sid / f"{sid}_t2.nii.gz"
    import nibabel as nib

    nib.save(nib.load(gz), cohort_copy / sid / f"{sid}_t2.nii")
    gz.unlink()
    (cohort_copy / sid / "thumbnail.png").write_bytes(b"png")
    cohort = discover(cohort_copy)
    assert len(cohort.subjects) == 10
    subject = next(s for s in cohort.subjects if s.subject_id == sid)
    assert subject.problems == [] and subject.files["t2"].name.endswith(".nii")


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(UsageError, match="no such file or folder"):
        discover(tmp_path / "nope")
    with pytest.raises(DataError, match="no subject folder"):
        discover(tmp_path)


def test_a_clinical_table_without_grades_gives_the_target(sample_dir, tmp_path):
    """--labels clinical.csv --target IDH: a table of ids and IDH alone (no Grade column, as a
    hospital's or TCGA's is) labels the subjects; a missing status leaves its subject out."""
    table = tmp_path / "clinical.csv"
    statuses = {"BraTS20_Training_007": "wildtype", "BraTS20_Training_158": "NA",
                "BraTS20_Training_309": "mutant", "BraTS20_Training_316": "mutant"}  # fmt: skip
    with open(table, "w", newline="") as f:
        csv.writer(f).writerows([("subject_id", "IDH"), *statuses.items()])
    cohort = discover(sample_dir, table, target="IDH")
    assert grades_of(cohort) == {s: v for s, v in statuses.items() if v != "NA"}
    assert cohort.target.classes == ("mutant", "wildtype")


def test_a_name_mapping_without_grades_gives_the_target(sample_dir, tmp_path):
    """The same table as DATA/name_mapping.csv itself: --target IDH and check --no-labels read
    it; only a command that needs the grade refuses it."""
    data = tmp_path / "data"
    data.mkdir()
    for s in SAMPLE_GRADES:
        (data / s).symlink_to(sample_dir / s)
    rows = [("BraTS_2020_subject_ID", "IDH"), *((s, "mutant") for s in list(SAMPLE_GRADES)[:2])]
    rows += [(s, "wildtype") for s in list(SAMPLE_GRADES)[2:]]
    with open(data / "name_mapping.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    assert set(grades_of(discover(data, target="IDH")).values()) == {"mutant", "wildtype"}
    assert grades_of(discover(data, need_labels=False)) == dict.fromkeys(SAMPLE_GRADES)
    with pytest.raises(DataError, match="no 'Grade' column"):
        discover(data)
