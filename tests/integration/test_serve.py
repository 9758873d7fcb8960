"""`gliograde serve` against a real PACS: Debian's Orthanc on loopback ports. A study is sent
to the node in two halves, with a kill -9 between them: nothing is lost, the node grades it and
its results (the SR, the heat map, the key images) come back into the same study, once;
callers not allowed and non-MR objects are refused; a full spool answers 0xA700.

Where Orthanc is missing these tests skip (apt-get install orthanc), except in CI, where
`.ci/run` installs it and they fail instead.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pydicom
import pytest

from gliograde.predict.heatmap import MAP_DESCRIPTION as HEAT_MAP
from gliograde.predict.keyimages import KEY_DESCRIPTION as KEY_IMAGES
from helpers.exports import restudied, synthetic_export
from helpers.orthanc import ORTHANC, echo, free_port, orthanc, start_node, wait_until

pytestmark = pytest.mark.slow  # a PACS (Orthanc) and the node in child processes; a trained run

GRADING_S = 400  # preprocessing a raw study (N4, registration, skull stripping) on 2 busy cores


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return synthetic_export(tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    if not Path(ORTHANC).is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{ORTHANC} missing in CI: .ci/run installs Debian's orthanc")
        pytest.skip("no Orthanc: apt-get install orthanc")
    port = free_port()
    with orthanc(tmp_path_factory.mktemp("orthanc"), ("GLIOGRADE", port, "127.0.0.1")) as p:
        p.node_port = port
        yield p


@pytest.fixture
def node(pacs, tiny_run, tmp_path, monkeypatch):
    """The node on the port Orthanc knows, allowing ORTHANC and TESTSCU; stopped after."""
    monkeypatch.setenv("GLIOGRADE_CACHE", str(tmp_path / "cache"))
    started = []

    def start(*options):
        process = start_node(
            tiny_run[1], tmp_path / "spool", pacs.node_port, pacs, "--force", "--settle", "3",
            "--allow", "ORTHANC,TESTSCU", *options, log=tmp_path / "node.log",
        )  # fmt: skip
        started.append(process)
        wait_until(lambda: echo(pacs.node_port), 60, f"the node did not start: {tmp_path}")
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


def descriptions(pacs, study: str) -> set[str]:
    return {
        s["MainDicomTags"].get("SeriesDescription", "")
        for s in pacs.get(f"/studies/{study}/series")
    }


def sr_instances(pacs, study: str) -> list[str]:
    return [
        i["ID"]
        for s in pacs.get(f"/studies/{study}/series")
        if s["MainDicomTags"].get("Modality") == "SR"
        for i in pacs.get(f"/series/{s['ID']}/instances")
    ]


def sr_answer(pacs, instance: str) -> tuple[str, str, float]:
    """The SR read back from Orthanc: its study, the grade and P(HGG) it reports."""
    from io import BytesIO
    from urllib.request import urlopen

    with urlopen(pacs.url(f"/instances/{instance}/file"), timeout=30) as r:
        sr = pydicom.dcmread(BytesIO(r.read()))
    items = {str(i.ConceptNameCodeSequence[0].CodeValue): i for i in walk(sr)}
    grade = str(items["GRADE"].ConceptCodeSequence[0].CodeValue)
    p = float(items["P_HGG"].MeasuredValueSequence[0].NumericValue)
    return str(sr.StudyInstanceUID), grade, p


def walk(item):
    for child in getattr(item, "ContentSequence", []):
        yield child
        yield from walk(child)


def spooled_study(spool: Path) -> Path:
    (folder,) = [p for p in (spool / "studies").iterdir() if p.is_dir()]
    return folder


def test_a_caller_not_allowed_is_rejected(pacs, node, tmp_path):
    node()
    assert echo(pacs.node_port, "TESTSCU") and not echo(pacs.node_port, "INTRUDER")


def test_a_non_mr_object_is_refused_at_association(pacs, node):
    from pynetdicom import AE

    node()
    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2")  # CT Image Storage
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.4")  # MR Image Storage
    assoc = ae.associate("127.0.0.1", pacs.node_port, ae_title="GLIOGRADE")
    assert assoc.is_established
    accepted = {c.abstract_syntax for c in assoc.accepted_contexts}
    rejected = {c.abstract_syntax for c in assoc.rejected_contexts}
    assoc.release()
    assert accepted == {"1.2.840.10008.5.1.4.1.1.4"} and rejected == {"1.2.840.10008.5.1.4.1.1.2"}


def send(files: list[Path], port: int) -> list[int]:
    """C-STORE each file to the node; each status."""
    from pynetdicom import AE

    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.4")
    assoc = ae.associate("127.0.0.1", port, ae_title="GLIOGRADE")
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(pydicom.dcmread(f)).Status) for f in files]
    finally:
        assoc.release()


def test_kill_9_mid_study_loses_no_image_and_sends_its_results_once(
    pacs, node, export, tiny_run, tmp_path
):
    """Half a study, kill -9, a restart, the other half: every image is in the spool (kept
    private), and the study's results reach Orthanc once, into the study: the SR, with the
    answer predict gives on the node's copy, then the heat map and the key images. (Orthanc
    sending a study itself, through its /modalities/{id}/store, is how the OHIF tests feed the
    node: tests/integration/test_ohif.py.)"""
    from gliograde.predict import PredictOptions, predict_subjects

    files = sorted(restudied(export, tmp_path / "other", "kill").iterdir())
    process = node("--settle", "20")  # the second half comes before the study settles
    assert set(send(files[: len(files) // 2], pacs.node_port)) == {0}
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    node("--settle", "20")
    assert set(send(files[len(files) // 2 :], pacs.node_port)) == {0}
    folder = spooled_study(tmp_path / "spool")
    assert sorted(f.name for f in folder.glob("*.dcm")) == sorted(
        f"{pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID}.dcm" for f in files
    )
    assert (tmp_path / "spool").stat().st_mode & 0o777 == 0o700
    study_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    query = {"Level": "Study", "Query": {"StudyInstanceUID": study_uid}}
    found = wait_until(lambda: pacs.post("/tools/find", query), GRADING_S, "no study in Orthanc")
    (sr,) = wait_until(lambda: sr_instances(pacs, found[0]), GRADING_S, "no SR came back")
    answered_uid, grade, p = sr_answer(pacs, sr)
    assert answered_uid == study_uid
    # the heat map and the key images come with the SR (after it), into the same study
    wait_until(lambda: {HEAT_MAP, KEY_IMAGES} <= descriptions(pacs, found[0]), 120, "no heat map")
    options = PredictOptions(force=True, device="cpu", cache=tmp_path / "spool" / "cache")
    (expected,) = predict_subjects([folder], tiny_run[1], options)  # from the node's cache
    assert grade == expected.to_dict()["grade"] and p == pytest.approx(expected.to_dict()["p_hgg"])
    wait_until(lambda: "results sent to" in (tmp_path / "node.log").read_text(), 120, "not sent")
    log = (tmp_path / "node.log").read_text()
    assert log.count("results sent to") == 1 and "SYNTH-kill" not in log  # no patient id logged


def test_a_full_spool_answers_out_of_resources(pacs, node, export, tmp_path):
    # images of one size (one series' grid): once one does not fit, none after it does
    by_size: dict[int, list[Path]] = {}
    for f in sorted(restudied(export, tmp_path / "full", "full").iterdir()):
        by_size.setdefault(f.stat().st_size, []).append(f)
    files = max(by_size.values(), key=len)[:40]
    assert len(files) >= 20
    node("--max-spool", "1")
    statuses = send(files, pacs.node_port)
    kept = statuses.index(0xA700)
    assert kept > 0 and set(statuses[:kept]) == {0} and set(statuses[kept:]) == {0xA700}
    folder = spooled_study(tmp_path / "spool")
    assert len(list(folder.glob("*.dcm"))) == kept  # nothing refused was kept
