"""The DICOM result package of a graded study (``predict --dicom-out``, and what ``serve``
sends): in the patient's study, next to the images it was made from,

* the structured report (:mod:`gliograde.predict.sr`), its finding placed on the heat map's
  peak on the T1ce, so that a viewer that draws TID 1500 findings on images (OHIF) shows it;
* the heat map as a Parametric Map over the T1ce series (:mod:`gliograde.predict.heatmap`);
* key images as Secondary Captures (:mod:`gliograde.predict.keyimages`), which every viewer
  shows, an oblique series' included.

With a seed (the node's: the study and the run), every UID is derived from it, so that a study
graded again gives the same instances and a resend replaces them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gliograde.core.errors import DataError
from gliograde.predict.heatmap import peak_frame
from gliograde.predict.sr import (
    Region,
    new_uid,
    source_headers,
    sr_finding,
    without_dicom,
    write_sr,
)

if TYPE_CHECKING:
    from gliograde.predict import Prediction

RESEARCH_LINE = "gliograde: research use, not for diagnosis"


@dataclass
class Uids:
    """The package's UIDs: derived from ``seed`` (stable), or new each time (None)."""

    seed: str | None = None

    def series(self, part: str) -> str:
        """The SeriesInstanceUID of the package's ``part`` (``map``, ``key images``)."""
        return new_uid(self.seed, f"{part} series")

    def instance(self, part: str) -> str:
        """The SOPInstanceUID of ``part`` (``map``, ``key image 1``...)."""
        return new_uid(self.seed, f"{part} instance")


@dataclass
class Package:
    """What was written for one study: the SR, the Parametric Map and the key images (None
    and empty when the heat map could not be drawn), and notes on what was left out."""

    sr: Path
    heatmap: Path | None
    key_images: list[Path]
    notes: list[str]

    @property
    def files(self) -> list[Path]:
        """Every file written, the SR first (the order they are sent in)."""
        return [self.sr, *([self.heatmap] if self.heatmap else []), *self.key_images]


@dataclass
class Made:
    """Who writes a package: gliograde's version, and the seed of its UIDs (None: new ones)."""

    version: str
    seed: str | None = None


@dataclass
class Pictures:
    """The heat map and key images written for a study, and where the SR's finding points."""

    heatmap: Path
    key_images: list[Path]
    region: Region


def write_package(
    prediction: Prediction, out: Path, version: str, seed: str | None = None
) -> Package:
    """The package of one graded DICOM subject in ``out`` (files named by SOPInstanceUID).
    The SR is always written; without a heat map (``prediction.heatmap``), a source series to
    draw it on, or when drawing it fails, it is written alone and the notes say why.

    Raises:
        DataError: not graded from a DICOM export.
        ValueError: highdicom refuses the source headers (such as images of two studies).
    """
    if prediction.dicom is None:
        raise DataError(f"{prediction.subject}: not graded from a DICOM export")
    made = Made(version, seed)
    headers = source_headers(*prediction.dicom)
    finding, pictures, notes = sr_finding(prediction), None, []
    try:
        pictures = write_pictures(prediction, headers, out, made)
    except (DataError, OSError) as err:  # the answer is sent without its pictures
        notes.append(f"{prediction.subject}: no heat map or key images in DICOM: {err}")
    if pictures is None:
        return Package(write_sr(headers, finding, out, version, seed), None, [], notes)
    finding.region = pictures.region
    sr = write_sr(headers, finding, out, version, seed)
    return Package(sr, pictures.heatmap, pictures.key_images, notes)


def draw_heatmap(prediction: Prediction, headers: list):
    """The T1ce series and the heat map on its grid; None (nothing to draw) without a map.

    Raises:
        DataError: the subject's folder cannot take the map back to its scans, or the series
            cannot carry it.
    """
    from gliograde.predict.heatmap import heatmap_on_series, source_series
    from gliograde.scans.space import original_grid_missing

    if prediction.heatmap is None or prediction.folder is None:
        return None
    why = original_grid_missing(prediction.folder)
    if why is not None:
        raise DataError(why)
    series = source_series(headers, prediction.folder)
    values = heatmap_on_series(prediction.heatmap, prediction.folder, series)
    if not values.any():
        raise DataError("the heat map does not reach the T1ce series")
    return series, values


def write_pictures(prediction: Prediction, headers: list, out: Path, made: Made):
    """The Parametric Map and the key images in ``out``, and the SR's region (the map's peak);
    None without a map. A failure removes what it wrote.

    Raises:
        DataError: the map cannot be drawn on the series, or highdicom refused an object.
    """
    from gliograde.predict.heatmap import parametric_map

    drawn = draw_heatmap(prediction, headers)
    if drawn is None:
        return None
    series, values = drawn
    uids, written = Uids(made.seed), []
    try:
        out.mkdir(parents=True, exist_ok=True)
        pm = parametric_map(series, values, uids, made.version)
        written.append(out / f"{pm.SOPInstanceUID}.dcm")
        pm.save_as(written[0], enforce_file_format=True)
        written += write_key_images(prediction, drawn, uids, out)
    except ValueError as err:  # highdicom's refusal of what the series gave it
        for path in written:
            path.unlink(missing_ok=True)
        raise DataError(f"{type(err).__name__}: {err}") from None
    return Pictures(written[0], written[1:], peak_region(prediction, series, values))


def peak_region(prediction: Prediction, series, values: np.ndarray) -> Region:
    """The SR's finding: the map's peak, on its source image, labelled with the answer."""
    k = peak_frame(values)
    row, col = np.unravel_index(int(np.argmax(values[k])), values[k].shape)
    label = f"{answer_label(prediction)}; research use, not for diagnosis"
    return Region(series.headers[k], (float(col) + 0.5, float(row) + 0.5), label)


def write_key_images(prediction: Prediction, drawn, uids: Uids, out: Path) -> list[Path]:
    """The key images of ``drawn`` (series, map): the frames with the most map, in slice
    order, with the answer and the research-use line burned in."""
    import pydicom

    from gliograde.predict.keyimages import key_frames, key_image, render

    series, values = drawn
    lines = [RESEARCH_LINE, answer_text(prediction)]
    aspect = series.grid["spacing"][1] / series.grid["spacing"][0]
    paths = []
    for number, k in enumerate(key_frames(values), start=1):
        source = series.headers[k]
        pixels = pydicom.dcmread(source.filename).pixel_array.astype(np.float32)
        rgb = render(pixels, values[k], [*lines, f"slice {k + 1} of {len(values)}"], aspect)
        sc = key_image(source, rgb, uids, number, series.grid["direction"])
        paths.append(out / f"{sc.SOPInstanceUID}.dcm")
        sc.save_as(paths[-1], enforce_file_format=True)
    return paths


def answer_text(prediction: Prediction) -> str:
    """The answer as a key image says it: ``HGG · P(HGG) 0.873 · confident``, or a target's
    class and its probability."""
    answer, p, flag = answer_parts(prediction)
    return f"{answer} · P({answer}) {p:.3f} · {flag}"


def answer_label(prediction: Prediction) -> str:
    """The answer as the SR's annotation says it: ``Predicted glioma grade: HGG (P(HGG) 0.873,
    confident)``, or ``Predicted idh: mutant (...)`` for another target."""
    answer, p, flag = answer_parts(prediction)
    said = "glioma grade" if prediction.target.is_grade else prediction.target.name
    return f"Predicted {said}: {answer} (P({answer}) {p:.3f}, {flag})"


def answer_parts(prediction: Prediction) -> tuple[str, float, str]:
    """The answer, its probability (as ``predict --json`` rounds it) and the flag in words."""
    from gliograde.predict.formats import rounded

    r = prediction.graded_result
    flag = "uncertain: review" if r.flag else "confident"
    return r.answer, rounded(r.p[prediction.target.classes.index(r.answer)]), flag


def write_dicom_packages(
    predictions: list[Prediction], out: Path, version: str
) -> tuple[dict[str, Package], list[str], dict[str, str]]:
    """``predict --dicom-out``: the package of each graded DICOM input, each in
    ``out/SUBJECT``.

    Returns:
        (written, notes, failed): subject → its package; a line for each subject that has none
        (not graded, not DICOM) or whose package lacks a part; subject → why none was written.
    """
    written, notes, failed = {}, [], {}
    for p in predictions:
        if (why := without_dicom(p, "DICOM results")) is not None:
            notes.append(why)
        else:
            try:
                written[p.subject] = write_package(p, Path(out) / p.subject, version)
            except ValueError as err:  # highdicom's refusal of the source headers
                failed[p.subject] = f"no DICOM results: {err}"
            else:
                notes += written[p.subject].notes
    return written, notes, failed
