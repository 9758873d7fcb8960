"""Every bad input gets one line naming subject, file and problem; exit 1, no traceback."""

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from gliograde.io.validate import check
from helpers.cli import invoke
from helpers.corpus import CORRUPTIONS, corrupt_truncated_gz, file_of, first_subject
from helpers.data import save_nifti


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


def test_cli_check_on_the_real_sample(sample_dir):
    result = invoke("check", sample_dir)
    assert result.exit_code == 0, result.stderr
    assert (
        "4 subjects found (brats2020 layout): 4 usable (2 HGG, 2 LGG), 0 with problems"
        in result.stdout
    )


def test_cli_check_exit_codes_and_json(cohort_copy):
    corrupt_truncated_gz(first_subject(cohort_copy))
    result = invoke("check", cohort_copy, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["n_subjects"] == 10 and report["n_usable"] == 9
    assert invoke("check", cohort_copy, "--no-such-option").exit_code == 2


def test_the_installed_program_says_an_error_in_one_line_and_exits_2(tmp_path):
    """``python -m gliograde``: the program itself, not only its commands in-process."""
    result = subprocess.run(
        [sys.executable, "-m", "gliograde", "check", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        result.stderr.startswith("gliograde: error: ") and "no such file or folder" in result.stderr
    )
    assert len(result.stderr.strip().splitlines()) == 1


def test_check_no_labels_reads_brats_2023_names(synth_small, tmp_path):
    """Data for prediction only: BraTS 2023 file names, no grade anywhere."""
    names = {"flair": "t2f", "t1ce": "t1c", "t1": "t1n", "t2": "t2w", "seg": "seg"}
    sources = sorted(p.name for p in synth_small.iterdir() if p.is_dir())[:2]
    for i, sid in enumerate(sources):
        folder = tmp_path / "gli" / f"BraTS-GLI-{i:05d}-000"
        folder.mkdir(parents=True)
        for ours, theirs in names.items():
            source = synth_small / sid / f"{sid}_{ours}.nii.gz"
            (folder / f"{folder.name}-{theirs}.nii.gz").write_bytes(source.read_bytes())
    report = check(tmp_path / "gli", need_labels=False)
    assert report.ok and len(report.usable) == 2, report.lines()
    assert "2 usable, 0 with problems" in report.summary()
    labelled = check(tmp_path / "gli")
    assert not labelled.ok and all("grade unknown" in s.problems[0] for s in labelled.subjects)
    result = invoke("check", tmp_path / "gli", "--no-labels")
    assert result.exit_code == 0, result.stdout + result.stderr
