"""Grad-CAM as a volume in the patient's own grid (``gradcam.nii.gz``), with a per-slice table.

The maps are computed on the axial slices the model saw (the run's slice size, the volume in
LPS). Each is resized back to the volume's in-plane size, put at its axial index, and the stack
is brought back to the orientation of the subject's own FLAIR file: the saved NIfTI has that
file's shape and affine, so that 3D Slicer, ITK-SNAP or FSLeyes lay it on the FLAIR as it is.
Values are the positive part of the map inside the brain (the FLAIR's non-zero voxels),
divided by its maximum over the patient: 0 to 1, in steps of 1/1024.
"""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np

from gliograde.core.console import say
from gliograde.core.errors import GliogradeError
from gliograde.io.nifti import TARGET_ORIENTATION, load_nifti

STEPS = 1024
"""The map's values are multiples of 1/STEPS."""


def cam_volume(
    cams: np.ndarray, z: np.ndarray, shape: tuple[int, int, int], inside: np.ndarray | None = None
) -> np.ndarray:
    """The maps ``[n, h, w]`` of axial slices ``z`` as one float32 volume ``shape`` (LPS: x, y,
    z), each resized to ``shape[:2]``, scaled to 0–1 over the patient; 0 on other slices and,
    with ``inside`` (a mask of ``shape``: the brain), outside it."""
    import torch
    import torch.nn.functional as F

    maps = torch.from_numpy(np.maximum(np.asarray(cams, dtype=np.float32), 0))[:, None]
    if maps.shape[-2:] != shape[:2]:
        maps = F.interpolate(maps, size=shape[:2], mode="bilinear", align_corners=False)
    volume = np.zeros(shape, dtype=np.float32)
    volume[:, :, np.asarray(z, dtype=int)] = maps[:, 0].numpy().transpose(1, 2, 0)
    if inside is not None:  # the model saw zeros there: a coarse map's spill means nothing
        volume *= inside
    peak = float(volume.max())
    scaled = volume / peak if peak > 0 else volume
    # Steps of 1/1024 (exact in float32) are far finer than a heat map's colours, and gzip
    # packs them to a quarter of the unrounded map's size (about 5 MB instead of 20 at BraTS's).
    return np.round(scaled * STEPS) / STEPS


def in_file_grid(volume_lps: np.ndarray, image: nib.Nifti1Image) -> np.ndarray:
    """A volume in LPS brought back to ``image``'s own axis order and directions."""
    ornt = nib.orientations
    back = ornt.ornt_transform(
        ornt.axcodes2ornt(TARGET_ORIENTATION), ornt.io_orientation(image.affine)
    )
    return np.ascontiguousarray(ornt.apply_orientation(volume_lps, back))


def write_cam_volume(path: Path, volume_lps: np.ndarray, reference: Path) -> Path:
    """Save an LPS volume as a float32 NIfTI with the shape and affine of ``reference``."""
    image = load_nifti(reference)
    data = in_file_grid(volume_lps, image).astype(np.float32)
    if data.shape != image.shape[:3]:
        raise GliogradeError(f"{reference}: Grad-CAM of shape {data.shape}, volume {image.shape}")
    out = nib.Nifti1Image(data, image.affine)
    out.header.set_qform(image.affine, code=1)
    out.header.set_sform(image.affine, code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(out, path)
    return path


def write_slice_table(path: Path, z: np.ndarray, of: str, p_class, p_tumor) -> None:
    """``slices.csv``: each axial slice the model saw (``z``, in the volume reoriented to LPS),
    its probability ``p_class`` of class ``of`` and its P(tumour)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["z", "class", "p_class", "p_tumor"])
        for zi, pc, pt in zip(z, p_class, p_tumor):
            writer.writerow([int(zi), of, f"{float(pc):.6f}", f"{float(pt):.6f}"])


def explain_volume(models, case, cams: np.ndarray, subject, folder: Path) -> Path:
    """``folder/gradcam.nii.gz`` (``cams``: the maps of every slice the model saw, for the
    answered class) and ``folder/slices.csv`` (each slice's probability of the class the
    answer is shown with, and P(tumour)); for a subject ``preprocess`` made, also
    ``gradcam_t1ce.nii.gz`` in its original T1ce's grid."""
    import torch

    from gliograde.infer.models import model_inputs, slice_outputs

    x = model_inputs(models, torch.from_numpy(case.images)).float()
    p_class, p_tumor = slice_outputs(models, x)
    if len(x) != len(case.z):  # 3D: one output, the volume's, on each of its slices
        p_class, p_tumor = (np.repeat(p, len(case.z), axis=1) for p in (p_class, p_tumor))
    folder.mkdir(parents=True, exist_ok=True)
    shown = case.classes.index(case.shown)
    p_shown = p_class.mean(axis=0)[:, shown]
    write_slice_table(folder / "slices.csv", case.z, case.shown, p_shown, p_tumor.mean(0))
    brain = model_brain(subject)
    volume = cam_volume(cams, case.z, brain.shape, inside=brain)
    written = write_cam_volume(folder / "gradcam.nii.gz", volume, subject.files["flair"])
    in_original_grid(written, Path(subject.files["flair"]).parent, folder / "gradcam_t1ce.nii.gz")
    return written


def model_brain(subject) -> np.ndarray:
    """The brain the model saw (LPS): voxels non-zero in any sequence once a sequence left
    unmasked is masked (:mod:`gliograde.io.consensus`)."""
    from gliograde.io.volumes import load_subject

    return load_subject(subject, use_seg=False).brain


def in_original_grid(cam: Path, subject_folder: Path, out: Path) -> Path | None:
    """The map ``cam`` (on a preprocessed subject's grid) in the original T1ce's grid, or a
    note that says why not, for subjects ``preprocess`` made (others are in their own grid)."""
    from gliograde.scans.space import original_grid_missing, to_original_t1ce

    if not (subject_folder / "preprocess.json").is_file():
        return None
    why = original_grid_missing(subject_folder)
    if why is not None:
        say(f"note: no {out.name}: {why}")
        return None
    return to_original_t1ce(np.asanyarray(load_nifti(cam).dataobj), subject_folder, out)


def look_at(models, case_cams, subject, about, out: Path) -> str | None:
    """A patient's map as a volume (``out/SUBJECT/gradcam.nii.gz`` and ``slices.csv``) and its
    viewer page, whose header ``about`` (a :class:`~gliograde.assess.viewer.ViewerCase`) gives;
    returns the page's path relative to ``out``, or None (with a note said) when the patient's
    files could not be drawn.

    Args:
        case_cams: the explained case and the map of each of its slices (index → map).
        subject: the patient's own files (:class:`~gliograde.io.cohort.Subject`).
    """
    from gliograde.assess.viewer import PAGE, ViewerFiles, write_script, write_viewer

    case, cams = case_cams
    folder = Path(out) / case.subject
    maps = np.stack([cams[i] for i in range(len(case.z))])
    try:  # one patient's files must not stop the others' explanations
        explain_volume(models, case, maps, subject, folder)
        files = ViewerFiles(subject, folder / "gradcam.nii.gz", folder / "slices.csv")
        write_viewer(folder, about, files, write_script(out))
    except GliogradeError as err:
        say(f"note: {case.subject}: no Grad-CAM volume or viewer: {err}")
        return None
    return f"{case.subject}/{PAGE}"


class StoreSources:
    """A store's patients' own files, found again in the data folder it was prepared from (its
    manifest's ``source``): their volumes and viewers are drawn on them."""

    def __init__(self, run, enabled: bool = True):
        from gliograde.io.layouts import discover

        self.subjects, self.note = {}, None
        self.synthetic = run.manifest.synthetic
        if not enabled:
            return
        source = Path(run.manifest.source)
        try:
            cohort = discover(source, need_labels=False)
        except GliogradeError as err:
            self.note = f"no viewers: the store's data folder cannot be read ({err})"
            return
        self.subjects = {s.subject_id: s for s in cohort.subjects if "flair" in s.files}

    def has(self, subject: str) -> bool:
        return subject in self.subjects

    def __getitem__(self, subject: str):
        return self.subjects[subject]

    def about(self, case, answer: dict | None, fold: int):
        """The viewer's header of an out-of-fold patient of the run: its reported ``answer``
        (calibrated, with its flag), or None for a run not evaluated yet."""
        from gliograde.assess.viewer import viewer_case

        notes = [f"Held out: graded by fold {fold}'s model, which never trained on this patient."]
        if answer is None:
            notes.append("The run is not evaluated: no calibration, no flag (gliograde evaluate).")
        flag = answer["flag"] if answer else None
        return viewer_case(
            case, flag, self.synthetic, self.synthetic, notes, calibrated=answer is not None
        )
