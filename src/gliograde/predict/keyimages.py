"""Key images: a few slices of the source series with the heat map blended in colour, a legend,
and the answer and the research-use line burned into the pixels, as DICOM Secondary Capture
images (highdicom ``SCImage``). Every viewer shows a Secondary Capture, whatever the series'
orientation, where a Parametric Map over an oblique series may not be drawn (OHIF 3.13).
"""

from __future__ import annotations

import numpy as np

KEY_SERIES_NUMBER = 9903
KEY_DESCRIPTION = "gliograde key images: research use"
KEY_IMAGES = 3
HEAT_FROM = 0.2
"""Map values below this are left uncoloured (the MR shows through)."""
SIDE_PX = 512
"""The MR's longer side in a key image, in pixels."""
TOP_PX = 50
"""Black above the MR: viewers write the series' name and their controls there."""


def key_frames(values: np.ndarray, count: int = KEY_IMAGES) -> list[int]:
    """The ``count`` frames with the most map, each more than two frames from those chosen
    before it (so that they show different levels), in slice order."""
    mass = values.reshape(len(values), -1).sum(axis=1)
    chosen: list[int] = []
    for k in np.argsort(-mass, kind="stable"):
        if mass[k] > 0 and all(abs(int(k) - c) > 2 for c in chosen):
            chosen.append(int(k))
        if len(chosen) == count:
            break
    return sorted(chosen)


def render(image: np.ndarray, heat: np.ndarray, lines: list[str], aspect: float) -> np.ndarray:
    """One key image, RGB uint8: ``image`` (one MR frame, rows × columns) in grey, ``heat``
    (0–1, same shape) over it in colour, the colour scale beside it and the ``lines`` below it
    (viewers write their own notes in the corners above); ``aspect`` is the row spacing over
    the column spacing."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows, cols = image.shape
    scale = SIDE_PX / max(rows * aspect, cols)
    shown_w, shown_h, text_h = cols * scale, rows * aspect * scale, 24 * len(lines) + 20
    width, height = int(shown_w) + 160, int(shown_h + text_h + TOP_PX)
    fig = Figure(figsize=(width / 100, height / 100), dpi=100, facecolor="black")
    FigureCanvasAgg(fig)
    ax = fig.add_axes((10 / width, text_h / height, shown_w / width, shown_h / height))
    low, high = np.percentile(image[image > 0], (1, 99)) if np.any(image > 0) else (0, 1)
    ax.imshow(image, cmap="gray", vmin=low, vmax=max(high, low + 1e-6), aspect=aspect)
    coloured = ax.imshow(
        np.ma.masked_less(heat, HEAT_FROM), cmap="jet", vmin=0, vmax=1, alpha=0.5, aspect=aspect
    )
    ax.set_axis_off()
    bar = fig.add_axes((1 - 130 / width, 0.3, 20 / width, 0.45))
    legend = fig.colorbar(coloured, cax=bar)
    legend.set_label("Grad-CAM attention", color="white")
    legend.ax.tick_params(colors="white")
    for i, line in enumerate(lines):
        bottom = (text_h - 10 - 24 * (i + 1)) / height
        fig.text(10 / width, bottom, line, color="white", fontsize=13, family="DejaVu Sans")
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()  # type: ignore[attr-defined]


def orientation_letters(direction) -> tuple[str, str]:
    """The patient-orientation letters of a picture's rows and columns (LPS frame): the main
    direction of the series' row and column axes."""
    letters = (("R", "L"), ("A", "P"), ("F", "H"))
    axes = np.array(direction, float).reshape(3, 3)

    def letter(v):
        i = int(np.argmax(np.abs(v)))
        return letters[i][int(v[i] > 0)]

    return letter(axes[:, 0]), letter(axes[:, 1])


def key_image(source, rgb: np.ndarray, uids, number: int, direction):
    """A highdicom ``SCImage`` of ``rgb`` in ``source``'s study (its patient and study
    attributes), derived from it."""
    import highdicom as hd

    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source,
        pixel_array=rgb,
        photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
        bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT,
        series_instance_uid=uids.series("key images"),
        series_number=KEY_SERIES_NUMBER,
        sop_instance_uid=uids.instance(f"key image {number}"),
        instance_number=number,
        manufacturer="gliograde",
        patient_orientation=orientation_letters(direction),
    )
    sc.SeriesDescription = KEY_DESCRIPTION
    # an unpaired body part needs no Laterality (dciodvfy asks for one where none is named)
    sc.BodyPartExamined = source.get("BodyPartExamined") or "BRAIN"
    sc.BurnedInAnnotation = "YES"
    sc.ImageComments = "Grad-CAM over the source MR; research use, not for diagnosis"
    return sc
