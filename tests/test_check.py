"""Every bad input gets one line naming subject, file and problem; exit 1, no traceback."""

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from conftest import save_nifti
from corpus import CORRUPTIONS, corrupt_truncated_gz, file_of, first_subject
from gliograde.check import check


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
