"""Fuzzed inputs through every reader: NIfTI files (headers and data), CSVs (label files and
manifests), run folders and DICOM exports, plus pydicom's own test files. Each case runs in a
child process with a memory limit and a timeout (:mod:`helpers.isolated`) and must end in a
result or one clear ``GliogradeError``: never another exception, a hang, a memory blow-up, or a
volume that is not what the DICOM headers describe. ``make fuzz`` runs 10,000 cases per group
(``scripts/fuzz.py``); CI a few hundred (``GLIOGRADE_FUZZ_CASES``)."""

from __future__ import annotations

import pytest

from helpers.fuzz import CASES
from helpers.isolated import run_cases

READERS = {
    "nifti_gz": ("helpers.fuzz_cases:nifti_case", CASES // 4),
    "nii": ("helpers.fuzz_cases:nii_case", CASES // 4),
    "csv": ("helpers.fuzz_cases:csv_case", CASES // 4),
    "run": ("helpers.fuzz_cases:run_case", CASES // 4),
    "dicom": ("helpers.fuzz_dicom:case", CASES),
}


@pytest.mark.slow  # hundreds of cases, each in a child process
@pytest.mark.parametrize("reader", list(READERS))
def test_fuzzed_inputs_give_an_answer_or_one_clear_line(reader):
    target, n = READERS[reader]
    tally = run_cases(target, list(range(n)))
    print(reader, tally.counts)
    assert tally.cases == n
    assert tally.failures == [], "\n".join(tally.failures[:3])


@pytest.mark.slow  # 60 cases, each in a child process
def test_dicom_cases_reach_both_volumes_and_refusals():
    """The DICOM fuzz is not all refusals: a share of the mutations keep a usable exam, whose
    volumes are then checked against the headers."""
    tally = run_cases("helpers.fuzz_dicom:case", list(range(60)))
    assert tally.counts.get("volumes", 0) >= 10 and tally.counts.get("one line", 0) >= 10


@pytest.mark.slow  # over 100 files, each in a child process
def test_pydicoms_own_test_files_are_used_or_refused_with_a_line():
    from helpers.fuzz_dicom import corpus_files

    files = corpus_files()
    assert len(files) > 100  # the files pydicom's wheel ships
    tally = run_cases("helpers.fuzz_dicom:corpus_case", list(range(len(files))))
    assert tally.failures == [], "\n".join(tally.failures[:3])


def test_a_hang_and_a_blow_up_are_counted_with_their_seed(monkeypatch):
    """The runner itself: a case that never answers is killed and counted as a hang; one that
    allocates past the limit is counted as a memory-limit hit; the next case still runs."""
    from helpers import isolated

    monkeypatch.setattr(isolated, "TIMEOUT_S", 1.5)
    tally = run_cases("helpers.fuzz_selftest:case", [0, 1, 2, 3], workers=1)
    assert tally.counts == {"answered": 2, "hang": 1, "memory limit": 1}
    assert [f.split(":")[0] for f in tally.failures] == ["seed 1", "seed 2"]
