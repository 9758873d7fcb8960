"""Results back to PACS: one DICOM Structured Report per patient, written with highdicom.

The report is a Comprehensive SR holding a TID 1500 measurement report: one measurement group
with the model's answer as coded evaluations (the grade, the flag) and unitless measurements
(the probability, the uncertainty), made by an identified algorithm (``gliograde`` and its
version). It joins the patient's study (same patient and study attributes, same
StudyInstanceUID) and lists every source image it was computed from, series by series, as its
evidence, so that a PACS files it next to the images and a viewer can say what it was made of.

DICOM has no standard codes for a model's glioma grade, so the answer's concepts use the
private coding scheme ``99GLIOGRADE``; the containers, the finding (neoplasm of the brain),
the unit and the observer are standard codes.

It sits in ``predict`` (above ``scans``, whose DICOM reading it uses) so that it reads a
:class:`~gliograde.predict.Prediction`'s attributes, not ``predict --json``'s object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gliograde.predict.formats import class_probabilities, rounded

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from gliograde.predict import Prediction

CODING = "99GLIOGRADE"
SERIES_NUMBER = 9901
SERIES_DESCRIPTION = "gliograde: research use, not for diagnosis"
# Type 2 attributes (present, possibly empty) that an SR copies from its evidence. Exports and
# anonymisers sometimes drop them; they are added empty, as the standard allows.
COPIED_EMPTY_IF_ABSENT = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


@dataclass
class Region:
    """Where on the images the finding is shown: a point, (column, row) in pixels, of one
    source image (the heat map's peak), and the answer written beside it."""

    image: Dataset  # the source image's header
    point: tuple[float, float]
    label: str  # such as "Predicted glioma grade: HGG (P(HGG) 0.873, confident)"


ARROW = "Cornerstone3DTools@^0.1.0:ArrowAnnotate"
"""The tracking identifier by which OHIF (its Cornerstone adapters) draws a point finding as an
arrow labelled with the group's comment: the answer, on the image."""


@dataclass
class Finding:
    """A model's answer in SR terms.

    ``evaluations``: ((concept code, meaning), (value code, meaning)) pairs;
    ``measurements``: ((concept code, meaning), value) pairs, unitless; ``region``: where the
    answer points on the images, if anywhere (a viewer such as OHIF shows a TID 1500 finding
    on the image its region lies on).
    """

    evaluations: list[tuple[tuple[str, str], tuple[str, str]]] = field(default_factory=list)
    measurements: list[tuple[tuple[str, str], float]] = field(default_factory=list)
    region: Region | None = None


def source_headers(folder: Path, series_uids: set[str], studies: list | None = None) -> list:
    """The headers (no pixels) of every image of ``series_uids`` under ``folder``, sorted by
    series and instance, with the Type 2 attributes an SR copies made present. ``studies``:
    the folder's :func:`~gliograde.scans.dicom.scan_folder` result, when already read."""
    import pydicom

    from gliograde.scans.dicom import scan_folder

    studies = studies if studies is not None else scan_folder(folder)[0]
    files = [f for st in studies for s in st.series if s.key in series_uids for f in s.files]
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    for ds in headers:
        for keyword in COPIED_EMPTY_IF_ABSENT:
            if keyword not in ds:
                setattr(ds, keyword, None)
    return sorted(
        headers, key=lambda d: (str(d.SeriesInstanceUID), int(d.get("InstanceNumber", 0)))
    )


def coded(code: tuple[str, str]):
    import highdicom as hd

    return hd.sr.CodedConcept(value=code[0], scheme_designator=CODING, meaning=code[1])


def new_uid(seed: str | None, part: str) -> str:
    """A fresh UID, or with ``seed`` the same UID for the same seed and part (so that an SR made
    again for the same study and run is the same instance, and a resend replaces it)."""
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=[seed, part]) if seed else generate_uid()


def measurement_group(finding: Finding, version: str, seed: str | None = None):
    """The TID 1501 group: the finding, its site, the algorithm and the answer."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    tracking = new_uid(seed, "tracking")
    label = "glioma" if finding.region is None else ARROW
    common = dict(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=tracking, identifier=label),
        finding_type=codes.SCT.Neoplasm,
        finding_sites=[hd.sr.FindingSite(codes.SCT.Brain)],
        algorithm_id=hd.sr.AlgorithmIdentification(name="gliograde", version=version),
        measurements=[
            hd.sr.Measurement(coded(name), float(value), codes.UCUM.NoUnits)
            for name, value in finding.measurements
        ],
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(coded(name), coded(value))
            for name, value in finding.evaluations
        ],
    )
    if finding.region is None:
        return hd.sr.MeasurementsAndQualitativeEvaluations(**common)
    region = hd.sr.ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues.POINT,
        graphic_data=np.array([finding.region.point], np.float32),
        source_image=hd.sr.SourceImageForRegion.from_source_image(finding.region.image),
    )  # TID 1410: the finding on an image region
    group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(referenced_region=region, **common)
    placed_for_viewers(group, finding.region.label)
    return group


def placed_for_viewers(group, label: str) -> None:
    """Two items OHIF needs to show a TID 1410 group as an annotation: its first measurement
    ``INFERRED FROM`` the region (TID 300's form: OHIF reads a measurement's place there), and
    a comment (DCM 121106), the annotation's text. highdicom builds neither, so they are added
    to the group it built."""
    import copy

    import highdicom as hd

    items = group[0].ContentSequence
    where = copy.deepcopy(next(item for item in items if item.ValueType == "SCOORD"))
    where.RelationshipType = "INFERRED FROM"
    measurement = next(item for item in items if item.ValueType == "NUM")
    measurement.ContentSequence = [*measurement.get("ContentSequence", []), where]
    comment = hd.sr.CodedConcept("121106", "DCM", "Comment")
    items.append(hd.sr.TextContentItem(comment, label, hd.sr.RelationshipTypeValues.CONTAINS))


def write_sr(
    headers: list, finding: Finding, folder: Path, version: str, seed: str | None = None
) -> Path:
    """Write the SR of ``finding`` for the study of ``headers`` (its evidence) into ``folder``,
    named by its SOPInstanceUID (no patient identifier in the file name); with ``seed`` its
    UIDs are derived from it (:func:`new_uid`).

    Raises:
        ValueError: highdicom refuses the evidence (such as images of two studies).
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    device_uid = generate_uid(entropy_srcs=["gliograde"])  # the same device in every report
    device = hd.sr.DeviceObserverIdentifyingAttributes(uid=device_uid, name="gliograde")
    context = hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(codes.DCM.Device, device)
    )
    report = hd.sr.MeasurementReport(
        context,
        codes.SCT.ImagingProcedure,
        [measurement_group(finding, version, seed)],
        referenced_images=headers,  # the image library (TID 1600): what the answer was made of
    )
    sr = hd.sr.ComprehensiveSR(
        evidence=headers,
        content=report,
        series_instance_uid=new_uid(seed, "series"),
        series_number=SERIES_NUMBER,
        sop_instance_uid=(uid := new_uid(seed, "instance")),
        instance_number=1,
        manufacturer="gliograde",
        series_description=SERIES_DESCRIPTION,
        is_complete=True,
        is_final=False,  # a model's preliminary answer, not verified by a reader
    )
    sr.CodingSchemeIdentificationSequence = [coding_scheme()]
    path = Path(folder) / f"{uid}.dcm"
    path.parent.mkdir(parents=True, exist_ok=True)
    sr.save_as(path, enforce_file_format=True)
    return path


def coding_scheme():
    """The identification of the private coding scheme (DICOM PS3.3 C.12.1.1.3)."""
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodingSchemeDesignator = CODING
    item.CodingSchemeName = "gliograde model outputs"
    item.CodingSchemeResponsibleOrganization = "gliograde"
    return item


def sr_finding(prediction: Prediction) -> Finding:
    """A graded subject's answer as an SR finding: the grade and P(HGG), or another target's
    class and each class's probability; the uncertainty and flag. The numbers are those
    ``predict --json`` gives (:func:`~gliograde.predict.formats.rounded`)."""
    r, target = prediction.graded_result, prediction.target
    flag = ("UNCERTAIN", "Uncertain: review") if r.flag else ("CONFIDENT", "Confident")
    common = [(("UNCERTAINTY", "Model uncertainty"), rounded(r.uncertainty))]
    if target.is_grade:
        grades = {"HGG": ("HGG", "High-grade glioma"), "LGG": ("LGG", "Low-grade glioma")}
        return Finding(
            evaluations=[
                (("GRADE", "Predicted glioma grade"), grades[r.answer]),
                (("FLAG", "Model confidence flag"), flag),
            ],
            measurements=[
                (("P_HGG", "Probability of high-grade glioma"), rounded(r.p[1])),
                *common,
            ],
        )
    name, probabilities = target.name, class_probabilities(r.p, target.classes)
    index = target.classes.index(r.answer)
    return Finding(
        evaluations=[  # fixed concept codes: a target named "flag" cannot collide with FLAG
            (("TARGET", f"Predicted {name}"), (f"CLASS{index}", r.answer)),
            (("FLAG", "Model confidence flag"), flag),
        ],
        measurements=[
            ((f"P_CLASS{i}", f"Probability of {name} {c}"), probabilities[c])
            for i, c in enumerate(target.classes)
        ]
        + common,
    )


def without_dicom(prediction: Prediction, what: str) -> str | None:
    """Why ``prediction`` gets no ``what`` (a note: not graded, or not from a DICOM export
    that is still there); None when it can have one."""
    if prediction.result is None:
        return f"{prediction.subject}: not graded, so no {what}"
    if prediction.dicom is None:
        return (
            f"{prediction.subject}: no DICOM export to refer to (not a DICOM input, or the "
            f"export its preprocess.json names is gone), so no {what}"
        )
    return None


def write_dicom_srs(
    predictions: list[Prediction], out: Path, version: str
) -> tuple[dict[str, Path], list[str], dict[str, str]]:
    """One DICOM Structured Report per graded DICOM input (``predict --dicom-sr``), in the
    patient's study and referencing the images it was made from (``Prediction.dicom``).

    Returns:
        (written, notes, failed): subject → its SR file; a line for each subject that needs
        none (not graded, not DICOM); subject → why its SR could not be written.
    """
    from gliograde.scans.dicom import scan_folder

    written, notes, failed, scanned = {}, [], {}, {}
    for p in predictions:
        if (why := without_dicom(p, "DICOM SR")) is not None or p.dicom is None:
            notes.append(why or f"{p.subject}: no DICOM SR")
        else:
            folder, uids = p.dicom
            if folder not in scanned:  # one export, several patients: read its headers once
                scanned[folder] = scan_folder(folder)[0]
            headers = source_headers(folder, uids, scanned[folder])
            try:
                written[p.subject] = write_sr(headers, sr_finding(p), out, version)
            except ValueError as err:  # highdicom's refusal of these headers
                failed[p.subject] = f"no DICOM SR: {err}"
    return written, notes, failed
