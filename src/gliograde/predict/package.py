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
from gliograde.predict.sr import Region, source_headers, sr_finding, write_sr

if TYPE_CHECKING:
    from gliograde.predict import Prediction

RESEARCH_LINE = "gliograde: research use, not for diagnosis"


@dataclass
class Uids:
    """The package's UIDs: derived from ``seed`` (stable), or new each time (None)."""

    seed: str | None = None

    def series(self, part: str) -> str:
        from gliograde.predict.sr import new_uid

        return new_uid(self.seed, f"{part} series")

    def instance(self, part: str) -> str:
        from gliograde.predict.sr import new_uid

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
        return [self.sr, *([self.heatmap] if self.heatmap else []), *self.key_images]


def write_package(prediction: Prediction, out: Path, version: str, seed: str | None = None):
    """The package of one graded DICOM subject in ``out`` (files named by SOPInstanceUID).
    Without a heat map (``prediction.heatmap``) or a source series to draw it on, the SR
    alone is written, and the notes say why.

    Raises:
        ValueError: highdicom refuses the source headers (such as images of two studies).
    """
    if prediction.dicom is None:
        raise ValueError(f"{prediction.subject}: not graded from a DICOM export")
    folder, uids = prediction.dicom
    headers = source_headers(folder, uids)
    finding, notes = sr_finding(prediction), []
    drawn = None
    try:
        drawn = draw_heatmap(prediction, headers)
    except (DataError, ValueError, OSError) as err:  # the answer is sent without its pictures
        notes.append(f"{prediction.subject}: no heat map or key images in DICOM: {err}")
    if drawn is None:
        return Package(write_sr(headers, finding, out, version, seed), None, [], notes)
    series, values = drawn
    k = peak_frame(values)
    row, col = np.unravel_index(int(np.argmax(values[k])), values[k].shape)
    label = f"{answer_label(prediction)}; research use, not for diagnosis"
    finding.region = Region(series.headers[k], (float(col) + 0.5, float(row) + 0.5), label)
    sr = write_sr(headers, finding, out, version, seed)
    heatmap, key_images = write_pictures(prediction, (series, values), out, (version, seed))
    return Package(sr, heatmap, key_images, notes)


def draw_heatmap(prediction: Prediction, headers: list):
    """The T1ce series and the heat map on its grid; None (nothing to draw) without a map."""
    from gliograde.predict.heatmap import heatmap_on_series, source_series

    if prediction.heatmap is None or prediction.folder is None:
        return None
    series = source_series(headers, prediction.folder)
    values = heatmap_on_series(prediction.heatmap, prediction.folder, series)
    if not values.any():
        raise ValueError("the heat map does not reach the T1ce series")
    return series, values


def write_pictures(prediction: Prediction, drawn, out: Path, made: tuple[str, str | None]):
    """The Parametric Map and the key images of ``drawn`` (series, map) in ``out``; ``made``:
    (version, seed)."""
    from gliograde.predict.heatmap import parametric_map

    (series, values), (version, seed) = drawn, made
    uids = Uids(seed)
    out.mkdir(parents=True, exist_ok=True)
    pm = parametric_map(series, values, uids, version)
    pm_path = out / f"{pm.SOPInstanceUID}.dcm"
    pm.save_as(pm_path, enforce_file_format=True)
    return pm_path, write_key_images(prediction, drawn, uids, out)


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
        if p.result is None:
            notes.append(f"{p.subject}: not graded, so no DICOM results")
        elif p.dicom is None:
            notes.append(
                f"{p.subject}: no DICOM export to refer to (not a DICOM input, or the export "
                "its preprocess.json names is gone), so no DICOM results"
            )
        else:
            try:
                written[p.subject] = write_package(p, Path(out) / p.subject, version)
            except ValueError as err:
                failed[p.subject] = f"no DICOM results: {err}"
            else:
                notes += written[p.subject].notes
    return written, notes, failed
