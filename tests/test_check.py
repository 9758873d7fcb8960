"""Every bad input gets one line naming subject, file and problem; exit 1, no traceback."""

import gzip
import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from conftest import save_nifti
from gliograde.check import check


def first_subject(cohort):
    return sorted(p for p in cohort.iterdir() if p.name.startswith("Synth"))[0]


def file_of(folder, role):
    return folder / f"{folder.name}_{role}.nii.gz"


def corrupt_zero_bytes(folder):
    file_of(folder, "t1").write_bytes(b"")
    return "t1.nii.gz: empty file"


def corrupt_truncated_gz(folder):
    path = file_of(folder, "t2")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return "t2.nii.gz: truncated or corrupt data"


def corrupt_text_as_nii(folder):
    file_of(folder, "flair").unlink()
    (folder / f"{folder.name}_flair.nii").write_text("this is not an image\n" * 50)
    return "flair.nii: not a readable NIfTI file"


def corrupt_missing_modality(folder):
    file_of(folder, "t1ce").unlink()
    return "t1ce: file missing"


def corrupt_shape(folder):
    img = nib.load(file_of(folder, "t1"))
    save_nifti(file_of(folder, "t1"), np.asanyarray(img.dataobj)[:, :, :-2], img.affine)
    return "shape (64, 64, 38) differs"


def corrupt_affine(folder):
    img = nib.load(file_of(folder, "t2"))
    affine = img.affine.copy()
    affine[0, 3] += 5.0
    save_nifti(file_of(folder, "t2"), np.asanyarray(img.dataobj), affine)
    return "t2.nii.gz: affine differs"


def corrupt_4d(folder):
    img = nib.load(file_of(folder, "flair"))
    data = np.asanyarray(img.dataobj)
    save_nifti(file_of(folder, "flair"), np.stack([data, data], -1), img.affine)
    return "expected a 3D volume, found shape (64, 64, 40, 2)"


def corrupt_nan(folder):
    img = nib.load(file_of(folder, "t1ce"))
    data = np.asanyarray(img.dataobj).astype(np.float32)
    data[30, 30, 20] = np.nan
    data[31, 30, 20] = np.inf
    save_nifti(file_of(folder, "t1ce"), data, img.affine)
    return "t1ce.nii.gz: 2 voxels are NaN or infinite"


def corrupt_all_zero(folder):
    img = nib.load(file_of(folder, "t1"))
    save_nifti(file_of(folder, "t1"), np.zeros(img.shape, np.int16), img.affine)
    return "t1.nii.gz: no brain"


def corrupt_label_5(folder):
    img = nib.load(file_of(folder, "seg"))
    seg = np.asanyarray(img.dataobj).copy()
    seg[seg == 2] = 5
    save_nifti(file_of(folder, "seg"), seg, img.affine)
    return "seg.nii.gz: unexpected labels 5"


def corrupt_empty_seg(folder):
    img = nib.load(file_of(folder, "seg"))
    save_nifti(file_of(folder, "seg"), np.zeros(img.shape, np.uint8), img.affine)
    return "segmentation is empty"


def corrupt_absurd_header(folder):
    path = file_of(folder, "t2")
    img = nib.load(path)
    header = img.header.copy()
    raw = bytearray(header.binaryblock)
    dims = np.array([3, 30000, 30000, 30000, 1, 1, 1, 1], dtype="<i2")
    raw[40:56] = dims.tobytes()  # dim[] of the NIfTI-1 header: no voxel data follows
    with gzip.open(path, "wb") as f:
        f.write(bytes(raw) + b"\0" * 4)
    return "header declares absurd dimensions (30000, 30000, 30000)"


def corrupt_no_label_row(folder):
    csv_path = folder.parent / "name_mapping.csv"
    lines = [ln for ln in csv_path.read_text().splitlines() if not ln.endswith(folder.name)]
    csv_path.write_text("\n".join(lines) + "\n")
    return "grade unknown: no row for this subject"


CORRUPTIONS = [
    corrupt_zero_bytes, corrupt_truncated_gz, corrupt_text_as_nii, corrupt_missing_modality,
    corrupt_shape, corrupt_affine, corrupt_4d, corrupt_nan, corrupt_all_zero, corrupt_label_5,
    corrupt_empty_seg, corrupt_absurd_header, corrupt_no_label_row,
]  # fmt: skip


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__.removeprefix("corrupt_"))
def test_bad_input_is_named_in_one_line(cohort_copy, corrupt):
    folder = first_subject(cohort_copy)
    expected = corrupt(folder)
    report = check(cohort_copy, workers=1)
    assert not report.ok
    bad = [s for s in report.subjects if not s.usable]
    assert [s.subject_id for s in bad] == [folder.name]
    lines = [ln for ln in report.lines() if ln.startswith("ERROR")]
    assert any(expected in ln and folder.name in ln for ln in lines), lines
    assert all("\n" not in ln for ln in lines)
    assert (
        report.summary().startswith("10 subjects found") and "1 with problems" in report.summary()
    )


def test_label_3_is_read_as_4_with_a_warning(cohort_copy):
    folder = first_subject(cohort_copy)
    img = nib.load(file_of(folder, "seg"))
    seg = np.asanyarray(img.dataobj).copy()
    had_4 = seg == 4
    seg[had_4] = 3
    seg[(seg == 2) & ~had_4] = 2
    save_nifti(file_of(folder, "seg"), seg, img.affine)
    report = check(cohort_copy, workers=1)
    assert report.ok
    subject = next(s for s in report.subjects if s.subject_id == folder.name)
    assert any("label 3 read as 4" in w for w in subject.warnings) == bool(had_4.any())


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "gliograde", *map(str, args)], capture_output=True, text=True
    )


def test_cli_check_on_the_real_sample(sample_dir):
    result = run_cli("check", sample_dir)
    assert result.returncode == 0, result.stderr
    assert (
        "4 subjects found (brats2020 layout): 4 usable (2 HGG, 2 LGG), 0 with problems"
        in result.stdout
    )


def test_cli_check_exit_codes_and_json(cohort_copy):
    corrupt_truncated_gz(first_subject(cohort_copy))
    result = run_cli("check", cohort_copy, "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["n_subjects"] == 10 and report["n_usable"] == 9
    assert "Traceback" not in result.stderr
    assert run_cli("check", cohort_copy / "missing").returncode == 2
    assert "no such file or folder" in run_cli("check", cohort_copy / "missing").stderr
    assert run_cli("check", cohort_copy, "--no-such-option").returncode == 2
