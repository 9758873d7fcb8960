"""DICOM Structured Reports and the predict cache, on small synthetic DICOM exports."""

import json

import numpy as np
import pydicom

from gliograde.scans.simulate import write_exam
from gliograde.scans.sr import Finding, source_headers, write_sr

AFFINE = np.diag([-1.0, -1.0, 3.0, 1.0])
ROLES = ("flair", "t1ce", "t1", "t2")
FINDING = Finding(
    evaluations=[(("GRADE", "Predicted glioma grade"), ("LGG", "Low-grade glioma"))],
    measurements=[(("P_HGG", "Probability of high-grade glioma"), 0.25)],
)


def export(folder, seed=0):
    rng = np.random.default_rng(seed)
    write_exam(folder, {r: rng.integers(0, 900, (12, 10, 10), dtype=np.int16) for r in ROLES},
               AFFINE)  # fmt: skip
    return folder


def test_an_anonymised_export_without_patient_id_still_gets_its_sr(tmp_path):
    """Anonymisers drop Type 2 attributes such as PatientID: the SR has them, empty."""
    folder = export(tmp_path / "anon")
    for f in folder.iterdir():
        ds = pydicom.dcmread(f)
        del ds.PatientID, ds.PatientName
        ds.save_as(f)
    uids = {pydicom.dcmread(f, stop_before_pixels=True).SeriesInstanceUID for f in folder.iterdir()}
    headers = source_headers(folder, uids)
    assert len(headers) == 40
    path = write_sr(headers, FINDING, tmp_path / "sr", "0.1.0")
    sr = pydicom.dcmread(path)
    assert sr.PatientID == "" and sr.StudyInstanceUID == headers[0].StudyInstanceUID
    assert sr.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == "99GLIOGRADE"


def test_the_cache_is_reused_until_the_export_changes(tmp_path, monkeypatch):
    """predict's cache: the same export is preprocessed once; a changed file, or a failure,
    means preprocessing again."""
    import gliograde.scans.inputs as inputs_module
    from gliograde.scans.cached import preprocess_raw_inputs

    folder = export(tmp_path / "exam")
    monkeypatch.setenv("GLIOGRADE_CACHE", str(tmp_path / "cache"))
    calls = []

    def fake_preprocess(inputs, out, series_map=None):
        calls.append(out)
        if len(calls) == 3:
            return {}, {"P001": "disk full"}, []
        (out / "P001").mkdir(parents=True, exist_ok=True)
        record = {"series": {"flair": {"uid": "1.2"}}}
        (out / "P001" / "preprocess.json").write_text(json.dumps(record))
        return {"P001": record}, {}, []

    monkeypatch.setattr(inputs_module, "preprocess_inputs", fake_preprocess)
    first, raw = preprocess_raw_inputs([folder])
    again, _ = preprocess_raw_inputs([folder])
    assert len(calls) == 1 and first == again and raw.sources["P001"] == (folder, {"1.2"})
    victim = sorted(folder.iterdir())[0]
    victim.write_bytes(victim.read_bytes() + b"\0\0")  # one file changed
    preprocess_raw_inputs([folder])
    assert len(calls) == 2 and calls[1] != calls[0]
    victim.write_bytes(victim.read_bytes() + b"\0\0")
    _, failed = preprocess_raw_inputs([folder])  # fails once ...
    _, raw = preprocess_raw_inputs([folder])  # ... and is tried again
    assert failed.errors == {"P001": "disk full"} and len(calls) == 4 and raw.errors == {}


def test_the_sr_of_another_target_holds_its_class_and_probabilities():
    from gliograde.scans.sr import sr_finding

    answer = {"target": "flag", "prediction": "b", "probabilities": {"a": 0.3, "b": 0.7},
              "uncertainty": 0.2, "flag": "confident"}  # fmt: skip
    finding = sr_finding(answer)
    names = [name for name, _ in finding.evaluations] + [n for n, _ in finding.measurements]
    assert len({code for code, _ in names}) == len(names)  # a target named flag: no clash
    assert finding.evaluations[0] == (("TARGET", "Predicted flag"), ("CLASS1", "b"))
    assert dict(finding.measurements)[("P_CLASS1", "Probability of flag b")] == 0.7
