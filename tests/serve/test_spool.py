"""The node's spool: what is kept, under which names, and what a restart finds."""

from __future__ import annotations

import json
import os
import stat

import pytest

from gliograde.serve.spool import Spool, instance_name, status_lines, study_key
from helpers.runs import fake_run


def test_names_from_dicom_attributes_never_become_paths():
    assert instance_name("1.2.840.113619.2.55") == "1.2.840.113619.2.55.dcm"
    for hostile in ("../../etc/passwd", "1.2/../../x", "a" * 300, "1.2.3 "):
        name = instance_name(hostile)
        assert "/" not in name and ".." not in name and len(name) == 36 and name.endswith(".dcm")
    assert study_key("1.2.3") == study_key("1.2.3") != study_key("1.2.4")
    assert len(study_key("../x")) == 20 and "/" not in study_key("../x")


def test_an_instance_is_kept_for_its_owner_and_counted_once(tmp_path):
    spool = Spool(tmp_path / "spool")
    first = spool.keep("1.2.3", "1.2.3.1", b"DICM one")
    again = spool.keep("1.2.3", "1.2.3.1", b"DICM one")  # the same instance sent twice
    spool.keep("1.2.3", "1.2.3.2", b"DICM two")
    record = spool.read(study_key("1.2.3"))
    assert first.instances == again.instances == 1 and record.instances == 2
    assert record.study_uid == "1.2.3" and record.state == "received"
    files = sorted(spool.folder(record.key).iterdir())
    assert [f.read_bytes() for f in files] == [b"DICM one", b"DICM two"]
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    for folder in (spool.root, spool.root / "studies", spool.folder(record.key)):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert not list(spool.root.rglob("*.tmp"))  # no temporary file left behind


def test_an_answered_study_keeps_its_answer_and_a_failed_one_is_graded_again(tmp_path):
    spool = Spool(tmp_path)
    record = spool.keep("9.9", "9.9.1", b"x")
    record.state, record.sent, record.answer = "done", True, "HGG"
    spool.save(record)
    assert spool.keep("9.9", "9.9.1", b"x").late == 0  # the same image: nothing new
    late = spool.keep("9.9", "9.9.2", b"y")
    assert late.state == "done" and late.sent and late.late == 1 and late.instances == 2
    assert "1 images came after the answer" in status_lines(tmp_path)[0]
    failed = spool.keep("8.8", "8.8.1", b"x")
    failed.state, failed.reason = "failed", "no T2 series"
    spool.save(failed)
    again = spool.keep("8.8", "8.8.2", b"y")
    assert again.state == "received" and again.reason == ""


def test_a_restart_grades_again_what_was_being_graded_and_rebuilds_lost_records(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    spool = Spool(tmp_path)
    busy = spool.keep("1.1", "1.1.1", b"a")
    busy.state = "processing"
    spool.save(busy)
    # a stop after an instance was written and before its record was
    ds = Dataset()
    ds.StudyInstanceUID, ds.SOPInstanceUID = "2.2", "2.2.1"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    folder = spool.folder(study_key("2.2"))
    folder.mkdir()
    pydicom.dcmwrite(folder / "2.2.1.dcm", ds, enforce_file_format=True)
    lines = spool.recover()
    assert spool.read(busy.key).state == "received"
    rebuilt = spool.read(study_key("2.2"))
    assert rebuilt.study_uid == "2.2" and rebuilt.instances == 1 and rebuilt.state == "received"
    assert len(lines) == 2


def test_status_lists_each_study_without_patient_data(tmp_path):
    spool = Spool(tmp_path)
    record = spool.keep("1.2.3", "1.2.3.1", b"x")
    record.state, record.answer, record.result_files = "done", "HGG, P(HGG) 0.910, confident", ["s"]
    spool.save(record)
    failed = spool.keep("4.5", "4.5.1", b"x")
    failed.state, failed.reason = "failed", "no T2 series"
    spool.save(failed)
    lines = status_lines(tmp_path)
    assert len(lines) == 2 and all("1.2.3" not in line for line in lines)
    assert "done" in lines[0] and "HGG, P(HGG) 0.910" in lines[0] and "results not sent" in lines[0]
    assert "failed" in lines[1] and "no T2 series" in lines[1]
    assert json.loads(spool.record_path(record.key).read_text())["answer"].startswith("HGG")


def test_a_full_spool_has_no_room(tmp_path):
    spool = Spool(tmp_path, max_bytes=10)
    assert spool.has_room(10) and not spool.has_room(11)
    spool.keep("1", "1.1", b"12345678")
    assert spool.used_bytes() == 8 and spool.has_room(2) and not spool.has_room(3)


def test_an_sr_the_pacs_does_not_take_is_tried_again_later(tmp_path):
    """The PACS away: the record says why, and when the next try is (2 s, then 4...)."""
    import time

    from gliograde.serve.node import Peer
    from gliograde.serve.worker import Node, ServeConfig

    run = fake_run(tmp_path / "run")
    node = Node(ServeConfig(run, tmp_path / "spool", Peer("127.0.0.1", 9, "PACS")))
    record = node.spool.keep("7.7", "7.7.1", b"x")
    record.state, record.result_files = "done", ["sr.dcm"]
    node.spool.save(record)
    write_sr_like(node.spool.root / "sr" / record.key / "sr.dcm")
    for attempt in (1, 2):
        before = time.time()
        node.send(record.key)
        after = time.time()  # a busy machine may take seconds to be refused
        saved = node.spool.read(record.key)
        assert not saved.sent and saved.send_attempts == attempt
        assert before + 2.0**attempt <= saved.next_send <= after + 2.0**attempt
        assert saved.reason.startswith("results not sent (PACS@127.0.0.1:9: association refused")
    node.step(now=saved.next_send - 1)  # not due yet: no third try
    assert node.spool.read(record.key).send_attempts == 2


def node_on(tmp_path, settle=0.0):
    from gliograde.serve.node import Peer
    from gliograde.serve.worker import Node, ServeConfig

    config = ServeConfig(fake_run(tmp_path / "run"), tmp_path / "spool", Peer("127.0.0.1", 9, "P"))
    config.settle = settle
    return Node(config)


def test_a_study_that_cannot_be_graded_fails_with_its_reason_and_the_next_is_graded(
    tmp_path, monkeypatch
):
    """Garbage for a study: failed, with a line; the node's loop goes on to the next study."""
    monkeypatch.delenv("GLIOGRADE_CACHE", raising=False)
    node = node_on(tmp_path)
    node.spool.keep("1.1", "1.1.1", b"not DICOM at all")
    node.spool.keep("2.2", "2.2.1", b"nor this")
    node.step()
    records = node.spool.records()
    assert [r.state for r in records] == ["failed", "failed"]
    assert all(r.reason and "\n" not in r.reason for r in records)
    assert node.spool.cache.is_dir() and "GLIOGRADE_CACHE" not in os.environ  # an argument


def test_images_that_come_while_a_study_is_graded_grade_it_again(tmp_path, monkeypatch):
    from gliograde.serve import worker

    node = node_on(tmp_path)
    node.spool.keep("3.3", "3.3.1", b"x")

    def grading(config, spool, record):  # a late image arrives during the grading
        spool.keep("3.3", "3.3.2", b"y")
        return {"state": "done", "answer": "HGG"}

    monkeypatch.setattr(worker, "grade_study", grading)
    node.grade(study_key("3.3"))
    record = node.spool.read(study_key("3.3"))
    assert record.state == "received" and record.instances == 2 and record.answer == ""


def test_a_study_that_fails_on_a_full_disk_waits_for_room_then_is_graded(tmp_path, monkeypatch):
    """The disk full while grading (dcm2niix cannot write): not failed, but tried again after
    a back-off, and graded once there is room."""
    import time

    from gliograde.serve import worker

    node = node_on(tmp_path)
    record = node.spool.keep("4.4", "4.4.1", b"x")
    free = {"bytes": 1_000_000}
    monkeypatch.setattr(node.spool, "disk_free", lambda: free["bytes"])
    outcomes = iter(
        [
            {"state": "failed", "reason": "dcm2niix made 0 volumes"},
            {"state": "done", "reason": "", "answer": "HGG"},
        ]
    )
    monkeypatch.setattr(worker, "grade_study", lambda *a: next(outcomes))
    before = time.time()
    node.step()
    saved = node.spool.read(record.key)
    assert saved.state == "received" and saved.grade_attempts == 1
    assert saved.next_grade == pytest.approx(before + 2.0, abs=1.0)
    assert saved.reason.startswith("no room on the spool's disk to grade it (dcm2niix made 0")
    node.step(now=saved.next_grade - 1)  # not due yet
    assert node.spool.read(record.key).grade_attempts == 1
    saved.grade_attempts = worker.ROOM_TRIES  # the last try: then it fails with its reason
    node.spool.save(saved)
    monkeypatch.setattr(worker, "grade_study", lambda *a: {"state": "failed", "reason": "bad"})
    node.step(now=saved.next_grade + 1)
    assert node.spool.read(record.key).state == "failed"
    record = node.spool.keep("4.5", "4.5.1", b"x")  # with room again, a study is graded
    free["bytes"] = 10**12
    monkeypatch.setattr(worker, "grade_study", lambda *a: next(outcomes))
    monkeypatch.setattr(node, "send", lambda key: None)
    node.step(now=saved.next_grade + 1)
    assert node.spool.read(record.key).state == "done"


def test_a_record_the_full_disk_cannot_take_leaves_the_node_serving(tmp_path, monkeypatch):
    """Writing a record fails (ENOSPC): the node goes on, and the study is graded later."""
    import errno

    from gliograde.serve import worker

    node = node_on(tmp_path)
    record = node.spool.keep("6.6", "6.6.1", b"x")
    save, calls = node.spool.save, []

    def full_once(r):
        calls.append(r.state)
        if len(calls) == 2:  # the outcome of the grading cannot be written
            raise OSError(errno.ENOSPC, "No space left on device")
        save(r)

    monkeypatch.setattr(node.spool, "save", full_once)
    monkeypatch.setattr(worker, "grade_study", lambda *a: {"state": "done", "answer": "HGG"})
    monkeypatch.setattr(node, "send", lambda key: None)
    node.step()  # no exception: the node's loop survives
    assert node.spool.read(record.key).state == "processing"
    node.step()
    assert node.spool.read(record.key).state == "done" and calls == [
        "processing", "done", "processing", "done"
    ]  # fmt: skip


def test_a_study_that_fails_with_room_on_the_disk_stays_failed(tmp_path, monkeypatch):
    from gliograde.serve import worker

    node = node_on(tmp_path)
    record = node.spool.keep("5.5", "5.5.1", b"x")
    monkeypatch.setattr(node.spool, "disk_free", lambda: 10**12)
    monkeypatch.setattr(worker, "grade_study", lambda *a: {"state": "failed", "reason": "bad"})
    node.step()
    saved = node.spool.read(record.key)
    assert saved.state == "failed" and saved.reason == "bad" and saved.grade_attempts == 0


def test_a_restart_gives_studies_still_receiving_a_whole_settle(tmp_path):
    import time

    spool = Spool(tmp_path)
    record = spool.keep("5.5", "5.5.1", b"x")
    record.last_instance = time.time() - 3600  # sent an hour ago, before a long stop
    spool.save(record)
    (tmp_path / "studies" / ".orphan.dcm.1.2.tmp").write_bytes(b"half")
    spool.recover()
    assert spool.read(record.key).last_instance > time.time() - 5
    assert not list(tmp_path.rglob("*.tmp"))


def write_sr_like(path):
    """A file that reads as a Comprehensive SR (what the sender looks at before it calls)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.33"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.Modality = "SR"
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
