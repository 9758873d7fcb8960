"""What ``predict --dicom-out`` must hold for a graded DICOM export, checked the same way for
each export that the tests grade (a real subject made raw-like, with axial series:
tests/integration/test_raw_scans.py; a SYNTHETIC export with oblique series:
tests/integration/test_dicom_results.py)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from helpers.validator import validator_errors


def graded_package(export: Path, run: Path, root: Path, cache: Path):
    """``export`` graded by predict with its Grad-CAM drawn (preprocessed into ``cache``, or
    read from there), and its DICOM package written under ``root``: (prediction, package)."""
    from gliograde.predict import PredictOptions, predict_subjects
    from gliograde.predict.package import write_dicom_packages

    options = PredictOptions(force=True, cache=cache, explain=root / "maps")
    (prediction,) = predict_subjects([export], run, options)
    assert prediction.error is None and prediction.heatmap is not None
    written, notes, failed = write_dicom_packages([prediction], root / "out", "test")
    assert failed == {} and notes == []
    return prediction, written[prediction.subject]


def check_objects_are_valid_in_the_study(export: Path, package) -> None:
    """Each object passes dciodvfy, lies in the patient's study, is named by its instance UID
    and reads back with highdicom; the map shares the series' Frame of Reference, 0–1."""
    import highdicom as hd

    source = pydicom.dcmread(next(export.iterdir()), stop_before_pixels=True)
    assert package.heatmap is not None and 1 <= len(package.key_images) <= 3
    kinds = {package.sr: "ComprehensiveSR", package.heatmap: "ParametricMap"}
    kinds |= {path: "SCImage" for path in package.key_images}
    for path, kind in kinds.items():
        assert validator_errors(path, kind) == [], path
        ds = pydicom.dcmread(path)
        assert ds.StudyInstanceUID == source.StudyInstanceUID and ds.PatientID == source.PatientID
        assert path.name == f"{ds.SOPInstanceUID}.dcm"
    hd.sr.srread(package.sr)
    pm = hd.pm.ParametricMap.from_dataset(pydicom.dcmread(package.heatmap))
    assert pm.FrameOfReferenceUID == source.FrameOfReferenceUID
    mapping = pm.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    assert mapping.LUTLabel == "GRADCAM" and mapping.DoubleFloatRealWorldValueLastValueMapped == 1.0


def map_match(export: Path, prediction, package, oblique: bool) -> float:
    """The map drawn over the T1ce series, resampled back onto the preprocessed grid: its
    correlation with gradcam.nii.gz inside the brain, checked to be a peak (two voxels off any
    way matches less). The series and its orientation are checked on the way."""
    from gliograde.predict.heatmap import heatmap_back, read_map, source_series
    from gliograde.predict.sr import source_headers

    folder = prediction.folder
    series = source_series(source_headers(export, prediction.dicom[1]), folder)
    record = json.loads((folder / "preprocess.json").read_text())
    assert series.headers[0].SeriesInstanceUID == record["series"]["t1ce"]["uid"]
    assert series.oblique == oblique
    values = read_map(package.heatmap)
    assert values.shape == (len(series.headers), series.headers[0].Rows, series.headers[0].Columns)
    assert values.min() >= 0 and 0.5 < values.max() <= 1
    cam = np.asanyarray(nib.load(prediction.heatmap).dataobj)
    brain = np.asanyarray(nib.load(folder / f"{folder.name}_flair.nii.gz").dataobj) > 0
    back = heatmap_back(values, folder, series)

    def match(moved):
        return np.corrcoef(moved[brain], cam[brain])[0, 1]

    here = match(back)
    assert here > max(match(np.roll(back, d, a)) for a in range(3) for d in (-2, 2))
    return here


def check_the_srs_finding(export: Path, prediction, package) -> None:
    """The finding is a point on the T1ce image where the map peaks, in the form OHIF draws as
    a labelled arrow (its first measurement inferred from the point; the answer as the
    comment); its answer is the one ``--dicom-sr`` writes (the same finding, now placed)."""
    import highdicom as hd

    from gliograde.predict.heatmap import read_map, source_series
    from gliograde.predict.package import answer_label
    from gliograde.predict.sr import ARROW, source_headers, sr_finding

    sr = hd.sr.srread(package.sr)
    (group,) = sr.content.get_planar_roi_measurement_groups()
    region = group.roi
    series = source_series(source_headers(export, prediction.dicom[1]), prediction.folder)
    values = read_map(package.heatmap)
    peak = int(np.argmax(values.reshape(len(values), -1).max(axis=1)))
    (image,) = region.ContentSequence[0].ReferencedSOPSequence
    assert image.ReferencedSOPInstanceUID == series.headers[peak].SOPInstanceUID
    column, row = region.GraphicData
    assert region.GraphicType == "POINT"
    assert values[peak][int(row), int(column)] == values[peak].max()
    assert group.tracking_identifier == ARROW
    first = next(item for item in group[0].ContentSequence if item.ValueType == "NUM")
    assert first.ContentSequence[-1].RelationshipType == "INFERRED FROM"
    assert list(first.ContentSequence[-1].GraphicData) == [column, row]
    items = group[0].ContentSequence
    (comment,) = [i for i in items if i.ConceptNameCodeSequence[0].CodeValue == "121106"]
    assert comment.TextValue.startswith(answer_label(prediction))
    want = sr_finding(prediction)
    values_said = {m.name.value: m.value for m in group.get_measurements()}
    assert values_said == {code: pytest.approx(v) for (code, _), v in want.measurements}
    said = {e.name.value: e.value.value for e in group.get_qualitative_evaluations()}
    assert said == {code: value for (code, _), (value, _) in want.evaluations}


def check_key_images(package) -> None:
    """Each key image: the MR with the map in colour, the answer in white below it."""
    for path in package.key_images:
        ds = pydicom.dcmread(path)
        assert ds.BurnedInAnnotation == "YES" and ds.PhotometricInterpretation == "RGB"
        rgb = ds.pixel_array.astype(int)
        mr = rgb[:, :-170]  # left of the colour scale, which alone would pass
        coloured = (np.abs(mr[..., 0] - mr[..., 2]) > 80).mean()
        assert coloured > 0.01  # the map's colours (grey MR: red = blue)
        text_band = rgb[-80:, : rgb.shape[1] // 2]  # below the MR
        assert (text_band.min(axis=-1) > 200).sum() > 300  # white lettering on black
