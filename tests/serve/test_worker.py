"""The node's grading: one Grader, opened when the node starts, grades every study.

The studies are small synthetic DICOM exports spooled as the SCP spools them; their
preprocessing (dcm2niix, N4, registration, skull stripping: minutes a study) is replaced by a
copy of a synthetic subject, so that everything after it runs as in the node: the spool, the
cache, ``predict``'s grading, the SR and the study's record.
"""

from __future__ import annotations

import io
import json
import re
import shutil

import numpy as np
import pydicom
import pytest
import torch

from gliograde.scans.simulate import write_exam
from helpers.runs import fake_run

STUDIES = 20
ROLES = ("flair", "t1ce", "t1", "t2")


def spool_studies(spool, root, n: int) -> list[str]:
    """``n`` studies of one small exam, each with its own UIDs, kept as the SCP keeps them."""
    exam = root / "exam"
    rng = np.random.default_rng(0)
    volumes = {r: rng.integers(0, 900, (8, 8, 1), dtype=np.int16) for r in ROLES}  # 4 images
    write_exam(exam, volumes, np.diag([-1.0, -1.0, 3.0, 1.0]))
    studies = []
    for i in range(n):
        uids = {}
        for f in sorted(exam.iterdir()):
            ds = pydicom.dcmread(f)
            for name in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
                old = str(getattr(ds, name))
                uids.setdefault(old, pydicom.uid.generate_uid(entropy_srcs=[str(i), old]))
                setattr(ds, name, uids[old])
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            buffer = io.BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
            spool.keep(ds.StudyInstanceUID, ds.SOPInstanceUID, buffer.getvalue())
        studies.append(ds.StudyInstanceUID)
    return studies


def copied_preprocessing(subject_folder):
    """``preprocess_inputs`` replaced by a copy of ``subject_folder``, recorded as made from the
    export's four series (what the SR refers to)."""

    def preprocess(inputs, out, series_map=None):
        (export,) = inputs
        series = sorted({pydicom.dcmread(f).SeriesInstanceUID for f in export.iterdir()})
        record = {"series": {role: {"uid": uid} for role, uid in zip(ROLES, series)}}
        name = subject_folder.name
        shutil.copytree(subject_folder, out / name)
        (out / name / "preprocess.json").write_text(json.dumps(record))
        return {name: record}, {}, []

    return preprocess


@pytest.fixture
def subject(tmp_path):
    """A small SYNTHETIC subject (40×40×12, with its segmentation): what preprocessing gives."""
    from gliograde.io.synth import synth_cohort

    synth_cohort(tmp_path / "cohort", subjects=2, seed=3, shape=(40, 40, 12), quiet=True)
    return tmp_path / "cohort" / "Synth_0001"


@pytest.fixture
def one_thread():
    """Batches of a few 32×32 slices: one thread is faster than two on shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def counting(monkeypatch, module, name: str) -> list:
    calls, real = [], getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_twenty_studies_are_graded_with_the_weights_read_and_hashed_once(
    subject, one_thread, tmp_path, monkeypatch
):
    """The node opens its Grader when it starts: grading 20 studies reads each fold's weights
    once and hashes them once (``predict_subjects`` per study would do it 20 times more)."""
    import gliograde.model.weights as weights
    import gliograde.scans.inputs as inputs_module
    from gliograde.serve.node import Peer
    from gliograde.serve.worker import Node, ServeConfig

    run = fake_run(tmp_path / "run")  # two folds
    hashed = counting(monkeypatch, weights, "sha256_of")
    loaded = counting(monkeypatch, weights, "load_state_dict")
    monkeypatch.setattr(inputs_module, "preprocess_inputs", copied_preprocessing(subject))
    config = ServeConfig(run, tmp_path / "spool", Peer("127.0.0.1", 9, "P"), settle=0.0)
    config.force, config.device, config.precision = True, "cpu", "fp32"
    node = Node(config)
    monkeypatch.setattr(node, "send", lambda key: None)  # no PACS here
    folds = sorted(run.glob("fold_*/model.safetensors"))
    assert sorted(hashed) == sorted(loaded) == folds  # opened: each fold read and hashed once
    studies = spool_studies(node.spool, tmp_path, STUDIES)
    node.step()
    records = node.spool.records()
    assert len(records) == STUDIES and {r.study_uid for r in records} == set(studies)
    assert [r.state for r in records] == ["done"] * STUDIES, [r.reason for r in records]
    line = re.compile(r"^[HL]GG, P\(HGG\) [01]\.\d{3}, (confident|uncertain)$")
    assert all(line.match(r.answer) for r in records), records[0].answer
    srs = [node.spool.root / "sr" / r.key / r.result_files[0] for r in records]
    assert {str(pydicom.dcmread(f).StudyInstanceUID) for f in srs} == set(studies)
    assert sorted(hashed) == sorted(loaded) == folds  # nothing read again for 20 studies
    assert node.opened.grader.precision == "fp32"
    cached = [p for p in (node.spool.cache / "preprocessed").iterdir() if p.is_dir()]
    assert len(cached) == STUDIES  # each study preprocessed into the spool's cache


@pytest.mark.parametrize(
    "damage, message",
    [
        ("fold_1/model.safetensors", r"fold_1/model\.safetensors: corrupt or truncated weights"),
        ("calibration.json", r"calibration\.json"),
    ],
    ids=["weights", "calibration"],
)
def test_a_run_that_cannot_grade_stops_the_node_before_its_spool_is_made(tmp_path, damage, message):
    from gliograde.core.errors import GliogradeError
    from gliograde.serve.node import Peer
    from gliograde.serve.worker import Node, ServeConfig

    run = fake_run(tmp_path / "run")
    (run / damage).write_bytes(b"changed")
    config = ServeConfig(run, tmp_path / "spool", Peer("127.0.0.1", 9, "P"), device="cpu")
    with pytest.raises(GliogradeError, match=message):
        Node(config)
    assert not (tmp_path / "spool").exists()


def test_serve_grades_in_its_precision_option_else_the_environments(tmp_path, monkeypatch):
    """`serve --precision`, else GLIOGRADE_PRECISION, read once by the command line: the node
    is handed the value, and its Grader keeps it for its life."""
    from gliograde.core.errors import GliogradeError
    from gliograde.serve import worker
    from helpers.cli import invoke

    seen = []

    def node(config):
        seen.append(config)
        raise GliogradeError("stopped here")

    monkeypatch.setattr(worker, "Node", node)
    monkeypatch.setenv("GLIOGRADE_PRECISION", "bf16")
    command = ("serve", tmp_path / "run", "--spool", tmp_path / "s", "--send-to", "h:1:A")
    assert invoke(*command).exit_code == 1
    assert invoke(*command, "--precision", "fp32", "--device", "gpu").exit_code == 1
    assert [(c.precision, c.device) for c in seen] == [("bf16", "auto"), ("fp32", "gpu")]
    monkeypatch.setenv("GLIOGRADE_PRECISION", "fp16")
    result = invoke(*command)
    assert result.exit_code == 2 and "GLIOGRADE_PRECISION=fp16: choose" in result.stderr


@pytest.mark.parametrize(
    "backbone", ["densenet121", "resnet18-2.5d", "resnet10-3d", "densenet121-3d"]
)
def test_the_node_grades_with_each_backbone(subject, one_thread, tmp_path, monkeypatch, backbone):
    """A run of another backbone (random weights) serves as a ResNet18 run does: the node
    answers the study with predict's answer for the same subject."""
    import gliograde.scans.inputs as inputs_module
    from gliograde.predict import PredictOptions, predict_subjects
    from gliograde.serve.node import Peer
    from gliograde.serve.worker import Node, ServeConfig

    run = fake_run(tmp_path / "run", backbone=backbone)
    monkeypatch.setattr(inputs_module, "preprocess_inputs", copied_preprocessing(subject))
    config = ServeConfig(run, tmp_path / "spool", Peer("127.0.0.1", 9, "P"), settle=0.0)
    config.force, config.device, config.precision = True, "cpu", "fp32"
    node = Node(config)
    monkeypatch.setattr(node, "send", lambda key: None)  # no PACS here
    spool_studies(node.spool, tmp_path, 1)
    node.step()
    (record,) = node.spool.records()
    assert record.state == "done", record.reason
    options = PredictOptions(force=True, precision="fp32", device="cpu")
    (answer,) = predict_subjects([subject], run, options)
    p = answer.to_dict()["p_hgg"]
    assert record.answer.startswith(f"{answer.to_dict()['grade']}, P(HGG) {p:.3f}")
