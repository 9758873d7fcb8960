"""An interactive page per patient: the four sequences, the Grad-CAM volume and the tumour's
outline in NiiVue (axial, coronal, sagittal and multiplanar, with a crosshair), beside a strip
of each axial slice's P(class) and P(tumour) that moves the viewer to the slice clicked.

The page opens offline from ``file://``: its volumes are inside it (NIfTI, gzip, base64), cut
to the brain's box and quantised for display (each sequence to 128 grey levels over its brain's
0–99.5th percentile, the map to 255 steps). NiiVue's build comes from the nilearn wheel
(``nilearn/_assets/js/niivue.umd.js``, BSD-2-Clause); it is written once beside the pages of a
folder (:data:`SCRIPT`) and each page loads it from there.
"""

from __future__ import annotations

import base64
import csv
import gzip
import html
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import nibabel as nib
import numpy as np

from gliograde import MODALITIES, SEQUENCE_NAMES
from gliograde.core.errors import GliogradeError
from gliograde.core.files import write_text
from gliograde.io.cohort import SEG, Subject
from gliograde.io.nifti import load_nifti
from gliograde.io.volumes import file_volume

SCRIPT = "niivue.umd.js"
"""NiiVue's build, written once into the folder that holds the patients' viewer folders."""
PAGE = "viewer.html"
SEQUENCE_LEVELS = 127  # 7 bits: 5.9 MB instead of 6.7 for a BraTS patient's four sequences
MAP_LEVELS = 255
MARGIN = 2  # voxels kept around the brain's box
NAMES = SEQUENCE_NAMES


@dataclass
class ViewerCase:
    """What the page says of the patient: the answer, its calibrated probability, the flag."""

    subject: str
    answer: str
    p: float  # the probability of ``of``: calibrated, unless ``calibrated`` is False
    of: str
    flag: bool | None  # None: no threshold to flag with (the run is not evaluated)
    synthetic: bool = False  # the patient's scans are SYNTHETIC
    trained_on_synthetic: bool = False
    notes: list[str] = field(default_factory=list)
    calibrated: bool = True


@dataclass
class ViewerFiles:
    """A patient's volumes for the page: the subject's own files (the four sequences and, when
    it has one, the segmentation; a :class:`~gliograde.io.cohort.Subject`), and
    ``gradcam.nii.gz`` and ``slices.csv`` as :mod:`~gliograde.assess.volume` writes them, all
    on one grid."""

    subject: Subject
    cam: Path
    slices: Path


def niivue_build() -> Path:
    """NiiVue's UMD build as the nilearn wheel ships it."""
    path = Path(str(resources.files("nilearn") / "_assets" / "js" / SCRIPT))
    if not path.is_file():
        raise GliogradeError(
            f"{path}: NiiVue's build is missing from nilearn; reinstall nilearn (>= 0.11)"
        )
    return path


def write_script(folder: Path) -> Path:
    """NiiVue's build in ``folder`` (written once; kept when already the same size)."""
    source, out = niivue_build(), Path(folder) / SCRIPT
    if not out.is_file() or out.stat().st_size != source.stat().st_size:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, out)
    return out


def brain_box(sequences: list[np.ndarray], margin: int = MARGIN) -> tuple[slice, ...]:
    """The box of the voxels non-zero in any sequence, ``margin`` voxels wider each side."""
    brain: np.ndarray = np.zeros(sequences[0].shape, dtype=bool)
    for volume in sequences:
        brain |= volume != 0
    if not brain.any():
        return tuple(slice(0, n) for n in brain.shape)
    box = []
    for axis, n in enumerate(brain.shape):
        others = tuple(a for a in range(brain.ndim) if a != axis)
        kept = np.flatnonzero(brain.any(axis=others))
        box.append(slice(max(int(kept[0]) - margin, 0), min(int(kept[-1]) + margin + 1, n)))
    return tuple(box)


def quantised(volume: np.ndarray, levels: int = SEQUENCE_LEVELS) -> np.ndarray:
    """``volume`` as uint8 ``0..levels``: 0 stays 0, the 99.5th percentile of the non-zero
    voxels (the brain) and above are ``levels``."""
    data = np.asarray(volume, dtype=np.float32)
    inside = data[data != 0]
    high = float(np.percentile(inside, 99.5)) if inside.size else 0.0
    if high <= 0:
        return np.zeros(data.shape, dtype=np.uint8)
    return np.clip(np.rint(data * (levels / high)), 0, levels).astype(np.uint8)


def outline(seg: np.ndarray) -> np.ndarray:
    """The tumour's surface (uint8 1, else 0): its voxels with a neighbour outside it, so that
    any plane through it shows a contour."""
    from scipy import ndimage

    tumor = np.asarray(seg) > 0
    return (tumor & ~ndimage.binary_erosion(tumor)).astype(np.uint8)


def cropped_affine(affine: np.ndarray, box: tuple[slice, ...]) -> np.ndarray:
    """The affine of ``box`` cut from a volume with ``affine``: same voxels, same world."""
    shift = np.eye(4)
    shift[:3, 3] = [s.start for s in box]
    return affine @ shift


def nifti_base64(data: np.ndarray, affine: np.ndarray) -> str:
    """``data`` as a gzipped NIfTI-1, base64: what NiiVue's ``loadFromBase64`` reads."""
    image = nib.Nifti1Image(np.ascontiguousarray(data), affine)
    image.header.set_qform(affine, code=1)
    image.header.set_sform(affine, code=1)
    packed = gzip.compress(image.to_bytes(), compresslevel=6, mtime=0)
    return base64.b64encode(packed).decode("ascii")


def on_grid(data: np.ndarray, affine: np.ndarray, grid: tuple, where) -> np.ndarray:
    """A volume that must lie on ``grid`` (the FLAIR's shape and affine)."""
    shape, grid_affine = grid
    if data.shape[:3] != shape or not np.allclose(affine, grid_affine, atol=1e-3):
        raise GliogradeError(
            f"{where}: not on the FLAIR's grid (shape {data.shape[:3]}, FLAIR {shape}); "
            "the viewer shows volumes of one grid"
        )
    return data


def slice_positions(
    affine: np.ndarray, shape: tuple[int, ...], z: np.ndarray
) -> tuple[int, list[float]]:
    """For axial slices ``z`` (indices in the LPS-reoriented volume the model saw): the file's
    axis that runs inferior–superior, and each slice's world S coordinate in mm (at the volume's
    centre: exact for axis-aligned grids)."""
    ornt = nib.orientations.io_orientation(affine)
    axis = int(np.flatnonzero(ornt[:, 0] == 2)[0])
    n = shape[axis]
    index = np.asarray(z, dtype=int) if ornt[axis, 1] > 0 else n - 1 - np.asarray(z, dtype=int)
    centre = (np.asarray(shape[:3], dtype=float) - 1) / 2
    points = np.tile(centre, (len(index), 1))
    points[:, axis] = index
    world = nib.affines.apply_affine(affine, points)
    return axis, [round(float(s), 3) for s in world[:, 2]]


def read_slice_table(path: Path) -> dict[str, list]:
    """``slices.csv`` as the page carries it: z, p_class and p_tumor, each a list."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {
        "z": [int(r["z"]) for r in rows],
        "p_class": [float(r["p_class"]) for r in rows],
        "p_tumor": [float(r["p_tumor"]) for r in rows],
    }


def viewer_volumes(files: ViewerFiles) -> tuple[list[dict], tuple, list[float]]:
    """The page's volumes (name, kind, NIfTI base64, display range), cut to the brain's box;
    the grid they came from (shape, affine); and where the page opens: the map's peak (mm)."""
    subject = files.subject
    flair, affine = file_volume(subject, "flair")
    grid = (flair.shape[:3], affine)
    sequences = {r: on_grid(*file_volume(subject, r), grid, subject.files[r]) for r in MODALITIES}
    box = brain_box(list(sequences.values()))
    cut = cropped_affine(affine, box)
    layers = [
        layer(NAMES[r], "sequence", quantised(v[box]), cut, SEQUENCE_LEVELS)
        for r, v in sequences.items()
    ]
    image = load_nifti(files.cam)
    cam = on_grid(np.asarray(image.dataobj, dtype=np.float32), image.affine, grid, files.cam)
    cam = cam[box]
    cam_u8 = np.clip(np.rint(cam * MAP_LEVELS), 0, MAP_LEVELS).astype(np.uint8)
    layers.append(layer("Grad-CAM", "map", cam_u8, cut, MAP_LEVELS))
    if SEG in subject.files:
        seg = on_grid(*file_volume(subject, SEG), grid, subject.files[SEG])
        layers.append(layer("tumour", "outline", outline(seg[box]), cut, 1))
    peak = np.unravel_index(int(np.argmax(cam)), cam.shape)
    start = nib.affines.apply_affine(cut, np.asarray(peak, dtype=float))
    return layers, grid, [round(float(v), 3) for v in start]


def layer(name: str, kind: str, data: np.ndarray, affine: np.ndarray, top: int) -> dict:
    """One volume of the page: its name, kind (sequence, map or outline), top value, NIfTI."""
    return {"name": name, "kind": kind, "max": top, "base64": nifti_base64(data, affine)}


def page_data(case: ViewerCase, files: ViewerFiles) -> dict:
    """Everything the page shows, as the JSON it carries."""
    layers, (shape, affine), start = viewer_volumes(files)
    table = read_slice_table(files.slices)
    axis, positions = slice_positions(affine, shape, np.asarray(table["z"]))
    return {
        "case": asdict(case),
        "volumes": layers,
        "slices": table | {"s_mm": positions, "axis": axis},
        "start_mm": start,
    }


def write_viewer(folder: Path, case: ViewerCase, files: ViewerFiles, script: Path) -> Path:
    """``folder/viewer.html`` for one patient; ``script`` is NiiVue's build, loaded by the page
    from its path relative to the page (see :func:`write_script`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # Inside <script>, "<" is written as \u003c (still JSON): no "</script>" or "<!--" can end it
    data = json.dumps(page_data(case, files), separators=(",", ":")).replace("<", "\\u003c")
    source = Path(os.path.relpath(Path(script).resolve(), folder.resolve())).as_posix()
    template = (resources.files("gliograde.assess") / "viewer_page.html").read_text()
    page = (
        template.replace("{{TITLE}}", html.escape(f"gliograde viewer: {case.subject}"))
        .replace("{{SCRIPT}}", html.escape(source))
        .replace("{{DATA}}", data)
    )
    write_text(folder / PAGE, page)
    return folder / PAGE


def viewer_case(case, flag, synthetic: bool, trained_on_synthetic: bool, notes=(), **more):
    """What a patient's viewer says: ``case``'s answer (an explained
    :class:`~gliograde.assess.explain.Case`), its flag and where its data come from; ``more``:
    other :class:`ViewerCase` fields (``calibrated``)."""
    a = case.answer()
    return ViewerCase(
        case.subject, a["answer"], a["p"], a["of"], flag, synthetic, trained_on_synthetic,
        [*notes], **more,
    )  # fmt: skip


def synthetic_subject(subject: Subject) -> bool:
    """A subject ``gliograde synth`` made: its id, or a ``SYNTHETIC.txt`` beside it."""
    folders = [subject.folder, subject.folder.parent] if subject.folder else []
    named = subject.subject_id.startswith("Synth_")
    return named or any((f / "SYNTHETIC.txt").is_file() for f in folders)
