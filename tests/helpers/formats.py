"""A BraTS subject written in the layouts other tools write: BrainLesion's names (with its
float 0–1 intensities), a Medical Segmentation Decathlon case (one 4D NIfTI, its own label
codes, a dataset.json) and an nnU-Net v2 case (one file per channel)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

ROLES = ("flair", "t1ce", "t1", "t2")
DECATHLON_ORDER = ("flair", "t1", "t1ce", "t2")  # the Decathlon's: FLAIR, T1w, t1gd, T2w
DECATHLON_NAMES = {"flair": "FLAIR", "t1": "T1w", "t1ce": "t1gd", "t2": "T2w"}
DECATHLON_LABELS = {
    "0": "background",
    "1": "edema",
    "2": "non-enhancing tumor",
    "3": "enhancing tumour",
}
TO_DECATHLON = {0: 0, 2: 1, 1: 2, 4: 3}  # BraTS code → the Decathlon's
NNUNET_ORDER = ("t2", "flair", "t1ce", "t1")  # any order: roles come from channel_names


def load(subject: Path, role: str) -> nib.Nifti1Image:
    return nib.load(next(subject.glob(f"*_{role}.nii.gz")))


def brainlesion(subject: Path, out: Path, unit_range: bool = True) -> Path:
    """``out/ID/ID_{fla,t1c,t1,t2}.nii.gz`` (and ``_seg``), intensities scaled to 0–1."""
    folder = out / subject.name
    folder.mkdir(parents=True)
    for role, token in zip(ROLES, ("fla", "t1c", "t1", "t2")):
        image = load(subject, role)
        data = np.asanyarray(image.dataobj).astype(np.float32)
        if unit_range:
            data /= data.max()
        nib.save(nib.Nifti1Image(data, image.affine), folder / f"{subject.name}_{token}.nii.gz")
    seg = load(subject, "seg")
    nib.save(seg, folder / f"{subject.name}_seg.nii.gz")
    return folder


def relabelled(seg: nib.Nifti1Image, codes: dict[int, int]) -> nib.Nifti1Image:
    data = np.asanyarray(seg.dataobj).astype(np.uint8)
    lookup = np.zeros(max(codes) + 1, dtype=np.uint8)
    for a, b in codes.items():
        lookup[a] = b
    return nib.Nifti1Image(lookup[data], seg.affine)


def decathlon(subject: Path, root: Path, case: str) -> Path:
    """``root/imagesTr/CASE.nii.gz`` (4D, float32), ``labelsTr/CASE.nii.gz`` in the Decathlon's
    codes, and its ``dataset.json``."""
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(exist_ok=True)
    images = [load(subject, r) for r in DECATHLON_ORDER]
    stacked = np.stack([np.asanyarray(i.dataobj).astype(np.float32) for i in images], axis=-1)
    nib.save(nib.Nifti1Image(stacked, images[0].affine), root / "imagesTr" / f"{case}.nii.gz")
    seg = relabelled(load(subject, "seg"), TO_DECATHLON)
    nib.save(seg, root / "labelsTr" / f"{case}.nii.gz")
    (root / "imagesTr" / f"._{case}.nii.gz").write_bytes(b"\x00\x05\x16\x07")  # the tar's debris
    description = {
        "name": "BRATS",
        "modality": {str(i): DECATHLON_NAMES[r] for i, r in enumerate(DECATHLON_ORDER)},
        "labels": DECATHLON_LABELS,
        "numTraining": 1,
    }
    (root / "dataset.json").write_text(json.dumps(description, indent=2))
    return root


def nnunet(subject: Path, root: Path, case: str) -> Path:
    """``root/imagesTr/CASE_000K.nii.gz`` per channel, ``labelsTr/CASE.nii.gz`` and an nnU-Net
    v2 ``dataset.json``."""
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(exist_ok=True)
    for k, role in enumerate(NNUNET_ORDER):
        nib.save(load(subject, role), root / "imagesTr" / f"{case}_{k:04d}.nii.gz")
    nib.save(relabelled(load(subject, "seg"), TO_DECATHLON), root / "labelsTr" / f"{case}.nii.gz")
    names = {"flair": "FLAIR", "t1": "T1w", "t1ce": "T1ce", "t2": "T2"}
    description = {
        "channel_names": {str(k): names[r] for k, r in enumerate(NNUNET_ORDER)},
        "labels": {"background": 0, "edema": 1, "non-enhancing tumor": 2, "enhancing tumour": 3},
        "numTraining": 1,
        "file_ending": ".nii.gz",
    }
    (root / "dataset.json").write_text(json.dumps(description, indent=2))
    return root


def unmasked(subject: Path, out: Path, roles=("flair",), value: float = 0.0219) -> Path:
    """A copy of ``subject`` (BraTS names) whose ``roles`` have their background at ``value``
    of their maximum instead of 0, as a toolkit that masked only the other sequences leaves."""
    folder = out / subject.name
    folder.mkdir(parents=True)
    for role in (*ROLES, "seg"):
        image = load(subject, role)
        data = np.asanyarray(image.dataobj)
        if role in roles:
            data = data.astype(np.float32)
            data[data == 0] = value * data.max()
        nib.save(nib.Nifti1Image(data, image.affine), folder / f"{subject.name}_{role}.nii.gz")
    return folder
