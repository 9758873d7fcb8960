"""One writer per run folder: ``evaluate`` and ``explain`` take the run's lock when they write
into it, as ``train`` does; what only reads the run takes none."""

import shutil

import pytest

from gliograde.assess.evaluate import evaluate_run
from gliograde.assess.explain import ExplainOptions, explain_store, explain_subjects
from gliograde.core.lock import FolderBusy
from gliograde.predict import PredictOptions, predict_subjects
from helpers.processes import lock_held_elsewhere

pytestmark = pytest.mark.slow  # a trained run's files (tiny_run); a lock holder in a child process


@pytest.fixture
def run(tiny_run, tmp_path):
    return shutil.copytree(tiny_run[1], tmp_path / "run")


def busy(pid: int) -> str:
    return rf"run: being written by process {pid} .*\(gliograde train, since"


def test_evaluate_waits_for_no_one_and_says_who_writes(run):
    before = (run / "metrics.json").read_bytes()
    with lock_held_elsewhere(run, "gliograde train") as pid:
        with pytest.raises(FolderBusy, match=busy(pid)):
            evaluate_run(run)
        assert (run / "metrics.json").read_bytes() == before  # nothing written meanwhile
    assert evaluate_run(run).n_patients == 10  # free again: it runs


def test_explain_into_the_run_takes_its_lock(run, tiny_run, synth_small):
    before = sorted(p.relative_to(run) for p in run.rglob("*") if p.name != ".gliograde.lock")
    with lock_held_elsewhere(run, "gliograde train") as pid:
        with pytest.raises(FolderBusy, match=busy(pid)):
            explain_store(run, tiny_run[0], ExplainOptions(per_patient=1, viewer=False))
        with pytest.raises(FolderBusy, match=busy(pid)):
            explain_subjects(run, [synth_small / "Synth_0004"], ExplainOptions(per_patient=1))
    after = sorted(p.relative_to(run) for p in run.rglob("*") if p.name != ".gliograde.lock")
    assert after == before  # nothing written while another process held the run


def test_readers_take_no_lock(run, synth_small, tmp_path):
    """predict, and explain into a folder of its own, only read the run: they go on while
    another process writes it."""
    subject = synth_small / "Synth_0004"
    with lock_held_elsewhere(run, "gliograde train"):
        (answer,) = predict_subjects([subject], run, PredictOptions(device="cpu"))
        options = ExplainOptions(tmp_path / "elsewhere", per_patient=1, viewer=False)
        summary = explain_subjects(run, [subject], options)
    assert answer.error is None and answer.result is not None
    assert summary["answers"]["Synth_0004"]["answer"] == answer.result.answer
    assert (tmp_path / "elsewhere" / "attention.csv").is_file()
