"""DICOM Structured Reports of predict's answers, on small synthetic DICOM exports."""

import numpy as np
import pydicom

from gliograde.io.target import Target
from gliograde.predict.sr import Finding, source_headers, sr_finding, write_dicom_srs, write_sr
from gliograde.scans.simulate import write_exam
from helpers.answers import failed, graded

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


def series_of(folder) -> set[str]:
    return {pydicom.dcmread(f, stop_before_pixels=True).SeriesInstanceUID for f in folder.iterdir()}


def content(sr) -> dict:
    """The SR's answer: its coded values and measurements in gliograde's coding scheme."""

    def walk(item):
        for child in getattr(item, "ContentSequence", []):
            yield child
            yield from walk(child)

    out = {}
    for item in walk(sr):
        name = item.ConceptNameCodeSequence[0]
        if name.CodingSchemeDesignator != "99GLIOGRADE":
            continue
        code = str(name.CodeValue)
        if "ConceptCodeSequence" in item:
            out[code] = str(item.ConceptCodeSequence[0].CodeValue)
        elif "MeasuredValueSequence" in item:
            out[code] = float(item.MeasuredValueSequence[0].NumericValue)
    return out


def test_an_anonymised_export_without_patient_id_still_gets_its_sr(tmp_path):
    """Anonymisers drop Type 2 attributes such as PatientID: the SR has them, empty."""
    folder = export(tmp_path / "anon")
    for f in folder.iterdir():
        ds = pydicom.dcmread(f)
        del ds.PatientID, ds.PatientName
        ds.save_as(f)
    headers = source_headers(folder, series_of(folder))
    assert len(headers) == 40
    path = write_sr(headers, FINDING, tmp_path / "sr", "0.1.0")
    sr = pydicom.dcmread(path)
    assert sr.PatientID == "" and sr.StudyInstanceUID == headers[0].StudyInstanceUID
    assert sr.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == "99GLIOGRADE"


def test_the_sr_of_a_graded_dicom_input_holds_its_answer_as_predict_gives_it(tmp_path):
    """The grade, P(HGG) rounded as ``predict --json`` rounds it, the flag and the uncertainty;
    a subject not graded, or not from DICOM, gets a note instead of an SR."""
    folder = export(tmp_path / "exam")
    answer = graded("P1", 0.81234567, uncertainty=0.4321, flag=True,
                    dicom=(folder, series_of(folder)))  # fmt: skip
    not_dicom = graded("P2", 0.2)
    written, notes, problems = write_dicom_srs(
        [answer, failed("P3", "no T2 found"), not_dicom], tmp_path / "sr", "0.1.0"
    )
    assert list(written) == ["P1"] and problems == {}
    assert notes[0] == "P3: not graded, so no DICOM SR" and notes[1].startswith("P2: no DICOM")
    sr = pydicom.dcmread(written["P1"])
    assert content(sr) == {
        "GRADE": "HGG", "FLAG": "UNCERTAIN", "P_HGG": 0.812346, "UNCERTAINTY": 0.4321,
    }  # fmt: skip
    assert answer.to_dict()["p_hgg"] == 0.812346
    assert len(sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence) == 4


def test_the_sr_of_another_target_holds_its_class_and_probabilities():
    flag_target = Target("flag", ("a", "b"))  # a target named flag: no clash with FLAG
    finding = sr_finding(graded("P", 0.7, target=flag_target, answer="b", uncertainty=0.2))
    names = [name for name, _ in finding.evaluations] + [n for n, _ in finding.measurements]
    assert len({code for code, _ in names}) == len(names)
    assert finding.evaluations[0] == (("TARGET", "Predicted flag"), ("CLASS1", "b"))
    assert finding.evaluations[1][1] == ("CONFIDENT", "Confident")
    assert dict(finding.measurements)[("P_CLASS1", "Probability of flag b")] == 0.7
    assert dict(finding.measurements)[("P_CLASS0", "Probability of flag a")] == 0.3
    who = Target("WHO_grade", ("2", "3", "4"))
    finding = sr_finding(graded("P", np.array([0.1, 0.2, 0.7]), target=who))
    assert finding.evaluations[0][1] == ("CLASS2", "4")
    assert dict(finding.measurements)[("P_CLASS2", "Probability of WHO_grade 4")] == 0.7


def test_the_same_study_and_run_give_the_same_sr_uids():
    from gliograde.predict.sr import new_uid

    assert new_uid("1.2.3|run-a", "instance") == new_uid("1.2.3|run-a", "instance")
    assert new_uid("1.2.3|run-a", "instance") != new_uid("1.2.3|run-b", "instance")
