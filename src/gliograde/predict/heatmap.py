"""The heat map on the patient's own MR: gliograde's Grad-CAM (``gradcam.nii.gz``, on the
preprocessed grid) brought back onto the grid of the T1ce series it was computed from, through
the atlas transform ``preprocess`` keeps (:mod:`gliograde.scans.space`), and written as a DICOM
Parametric Map (highdicom) that a viewer draws over that series.

The T1ce is the series the transform leads to (the other sequences were registered onto it),
so the map lies on it without a second resampling. Its values are the map's, 0 to 1, stored as
32-bit floats with a real-world value mapping (unitless, 0–1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAP_SERIES_NUMBER = 9902
MAP_DESCRIPTION = "gliograde heat map (Grad-CAM): research use"
ROLE = "t1ce"
"""The series the map is drawn over: the one the atlas transform leads back to."""


@dataclass
class SeriesImages:
    """One source series, ready to draw over: its images' headers in order along their normal
    (no pixels) and its grid (:meth:`~gliograde.scans.geometry.Stack.grid`)."""

    role: str
    headers: list
    grid: dict

    @property
    def oblique(self) -> bool:
        """Whether its planes are tilted from the axial, coronal and sagittal planes."""
        axes = np.abs(np.array(self.grid["direction"]).reshape(3, 3))
        return bool(np.any((axes > 1e-3) & (axes < 1 - 1e-3)))


def source_series(headers: list, subject_folder: Path, role: str = ROLE) -> SeriesImages:
    """The ``role`` series among ``headers`` (the images a subject was graded from), as the
    subject's ``preprocess.json`` names it, in slice order.

    Raises:
        DataError: the record names no such series, or it is not one image per plane.
    """
    from gliograde.core.errors import DataError
    from gliograde.scans.geometry import frames_of, stack_of

    record = json.loads((Path(subject_folder) / "preprocess.json").read_text())
    uid = record.get("series", {}).get(role, {}).get("uid")
    images = [ds for ds in headers if str(ds.SeriesInstanceUID) == uid]
    if not images:
        raise DataError(f"preprocess.json names no {role} series among the source images")
    if any(int(ds.get("NumberOfFrames") or 1) > 1 for ds in images):
        raise DataError(f"the {role} series is multi-frame: the map is drawn over single frames")
    row, col = np.array([float(v) for v in images[0].ImageOrientationPatient]).reshape(2, 3)
    normal = np.cross(row, col)
    images.sort(key=lambda ds: float(np.array(ds.ImagePositionPatient, float) @ normal))
    stack = stack_of(f"the {role} series", [frames_of(ds)[0] for ds in images])
    return SeriesImages(role, images, stack.grid())


def heatmap_on_series(heatmap: Path, subject_folder: Path, series: SeriesImages) -> np.ndarray:
    """The map ``heatmap`` (``gradcam.nii.gz`` of the subject ``preprocess`` wrote in
    ``subject_folder``) on ``series``' grid: ``[frames, rows, columns]``, float32, 0–1."""
    import SimpleITK as sitk

    from gliograde.io.nifti import load_nifti
    from gliograde.scans.space import onto_grid

    volume = np.asanyarray(load_nifti(heatmap).dataobj)
    image = onto_grid(volume, subject_folder, series.grid)
    return np.clip(sitk.GetArrayFromImage(image), 0.0, 1.0).astype(np.float32)


def heatmap_back(values: np.ndarray, subject_folder: Path, series: SeriesImages) -> np.ndarray:
    """The inverse of :func:`heatmap_on_series`: ``values`` on the series' grid resampled onto
    the preprocessed grid (x, y, z), to compare with the map it came from."""
    import SimpleITK as sitk

    from gliograde.scans.space import empty_image, into_preprocessed

    image = sitk.GetImageFromArray(np.asarray(values, np.float32))
    image.CopyInformation(empty_image(series.grid))
    return into_preprocessed(image, subject_folder)


def parametric_map(series: SeriesImages, values: np.ndarray, uids, version: str):
    """A highdicom ``ParametricMap`` of ``values`` (:func:`heatmap_on_series`) over
    ``series``: same study, Frame of Reference and planes; ``uids`` gives its series and
    instance UIDs (:class:`~gliograde.predict.package.Uids`)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    mapping = hd.pm.RealWorldValueMapping(
        lut_label="GRADCAM",
        lut_explanation="Grad-CAM attention for the answer (0-1)",
        unit=codes.UCUM.NoUnits,
        value_range=(0.0, 1.0),
        slope=1.0,
        intercept=0.0,
    )
    pm = hd.pm.ParametricMap(
        source_images=series.headers,
        pixel_array=np.ascontiguousarray(values, np.float32),
        series_instance_uid=uids.series("map"),
        series_number=MAP_SERIES_NUMBER,
        sop_instance_uid=uids.instance("map"),
        instance_number=1,
        manufacturer="gliograde",
        manufacturer_model_name="gliograde",
        software_versions=version,
        device_serial_number="0",
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        voi_lut_transformations=[hd.VOILUTTransformation(window_center=0.5, window_width=1.0)],
        content_label="GRADCAM",
        content_description="Grad-CAM heat map",
    )
    frames_along_normal(pm)
    pm.SeriesDescription = MAP_DESCRIPTION
    # an unpaired body part needs no Laterality (dciodvfy asks for one where none is named)
    pm.BodyPartExamined = series.headers[0].get("BodyPartExamined") or "BRAIN"
    return pm


def frame_heights(pm) -> np.ndarray:
    """Each frame's position along the normal of its planes (mm)."""
    orientation = pm.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0]
    row, col = np.array(orientation.ImageOrientationPatient, float).reshape(2, 3)
    return np.array(
        [
            np.array(f.PlanePositionSequence[0].ImagePositionPatient, float) @ np.cross(row, col)
            for f in pm.PerFrameFunctionalGroupsSequence
        ]
    )


def frames_along_normal(pm) -> None:
    """Store the map's frames in slice order along the normal, as its source series lies.

    Each frame says where it is, so the order is free; but OHIF 3.13 draws frame i on the
    source volume's i-th slice in that order, whatever the frame says, and highdicom writes
    them the other way: a map stored as highdicom orders it shows mirrored, off the tumour.
    """
    order = np.argsort(frame_heights(pm), kind="stable")
    frames = np.asarray(pm.pixel_array, np.float32).reshape(len(order), pm.Rows, pm.Columns)
    pm.PerFrameFunctionalGroupsSequence = [pm.PerFrameFunctionalGroupsSequence[i] for i in order]
    pm.FloatPixelData = np.ascontiguousarray(frames[order]).tobytes()


def peak_frame(values: np.ndarray) -> int:
    """The frame holding the map's maximum (the first, on a tie)."""
    return int(np.argmax(values.reshape(len(values), -1).max(axis=1)))


def read_map(path: Path) -> np.ndarray:
    """A Parametric Map's values ``[frames, rows, columns]`` in slice order along the normal
    (the order :func:`heatmap_on_series` gives), whatever order its frames are stored in."""
    import pydicom

    ds = pydicom.dcmread(path)
    heights = frame_heights(ds)
    frames = np.asarray(ds.pixel_array, np.float32).reshape(len(heights), ds.Rows, ds.Columns)
    return frames[np.argsort(heights, kind="stable")]
