"""Where does the model look? Grad-CAM maps and how much of them falls on the tumour.

Grad-CAM (MONAI's ``GradCAM`` on ``backbone.layer4`` for full-size slices, see
:func:`choose_layer`; Grad-CAM++ with ``method="gradcampp"``) is computed for the class the
model predicts for the patient, without MONAI's min-max normalisation, so that the map's mass
is comparable between slices. For slices with a
segmentation, attention is measured as:

* ``share_tumor``: the share of the map's positive mass inside the whole tumour (labels 1, 2, 4);
* ``share_brain``: the share inside the brain;
* ``hit``: the pointing game — is the map's maximum inside the tumour?
* ``chance``: the tumour's share of the brain area, what a map spread evenly over the brain gets.

A patient is "above chance" when its mean ``share_tumor`` exceeds its mean ``chance``.
"""

from __future__ import annotations

import numpy as np
import torch

ATTENTION_COLUMNS = ("subject", "z", "fold", "share_tumor", "share_brain", "hit", "chance")


def attention_metrics(cam: np.ndarray, tumor: np.ndarray, brain: np.ndarray) -> dict:
    """Attention of one heat map (``H×W``, any real values) on a tumour and a brain mask.

    Only the positive part of the map counts. A map with no positive mass has shares 0.
    """
    positive = np.clip(np.asarray(cam, dtype=np.float64), 0, None)
    total = positive.sum()
    tumor = np.asarray(tumor, dtype=bool)
    brain = np.asarray(brain, dtype=bool)
    peak = np.unravel_index(int(np.argmax(positive)), positive.shape)
    return {
        "share_tumor": float(positive[tumor].sum() / total) if total > 0 else 0.0,
        "share_brain": float(positive[brain].sum() / total) if total > 0 else 0.0,
        "hit": bool(total > 0 and tumor[peak]),
        "chance": float(tumor.sum() / max(brain.sum(), 1)),
    }


def summarise_attention(rows: list[dict]) -> dict:
    """Mean shares, hit rate, and the share of patients whose attention beats chance."""
    if not rows:
        return {"n_slices": 0, "n_patients": 0}
    by_patient: dict[str, list[dict]] = {}
    for r in rows:
        by_patient.setdefault(r["subject"], []).append(r)
    above = [
        np.mean([r["share_tumor"] for r in rs]) > np.mean([r["chance"] for r in rs])
        for rs in by_patient.values()
    ]
    return {
        "n_slices": len(rows),
        "n_patients": len(by_patient),
        "mean_share_tumor": float(np.mean([r["share_tumor"] for r in rows])),
        "mean_share_brain": float(np.mean([r["share_brain"] for r in rows])),
        "hit_rate": float(np.mean([r["hit"] for r in rows])),
        "mean_chance": float(np.mean([r["chance"] for r in rows])),
        "share_patients_above_chance": float(np.mean(above)),
    }


def grad_cam_maps(
    models: list[torch.nn.Module],
    x: torch.Tensor,
    class_idx: int,
    method: str = "gradcam",
    layer: str = "layer4",
) -> np.ndarray:
    """Grad-CAM maps ``[N, H, W]`` (not normalised), averaged over ``models``."""
    from monai.visualize import GradCAM, GradCAMpp

    cam_type = {"gradcam": GradCAM, "gradcampp": GradCAMpp}[method]
    total: np.ndarray | None = None
    for model in models:
        spec = getattr(model, "spec", None)  # a GradeNet's backbone; a stand-in is a ResNet
        stage = spec.stage(layer) if spec is not None else layer
        cam = cam_type(nn_module=model, target_layers=f"backbone.{stage}", postprocessing=_identity)
        maps = []
        for start in range(0, len(x), 32):
            batch = x[start : start + 32].clone().requires_grad_(False)
            with torch.enable_grad():
                maps.append(cam(x=batch, class_idx=class_idx).detach()[:, 0])
        out = torch.cat(maps).numpy()
        total = out if total is None else total + out
    if total is None:
        raise ValueError("Grad-CAM needs at least one model")
    return total / len(models)


def slice_cams(
    models, images: np.ndarray, rows: np.ndarray | None, class_idx: int, method: str, layer: str
) -> np.ndarray:
    """The Grad-CAM of a patient's slices ``rows`` (all when None) for ``class_idx``,
    ``[len(rows), H, W]`` (``images``: its slices ``[n, 4, H, W]`` in slice order).

    For 2.5D models each slice is seen with its neighbours; for 3D models the map is computed
    once on the patient's volume and taken back onto the slices it was cut from
    (:func:`~gliograde.store.volumes.on_slices`), so every later step (panels, attention, the
    map as a NIfTI volume or a DICOM one) reads a 3D map as it reads a 2D one.
    """
    from gliograde.infer.models import model_inputs

    x = model_inputs(models, torch.from_numpy(images), rows).float()
    if not getattr(models, "grid", 0):
        return grad_cam_maps(models, x, class_idx, method, layer)
    from gliograde.store.volumes import brain_box, on_slices

    cam = grad_cam_maps(models, x, class_idx, method, layer)[0]
    n, _, h, w = images.shape
    on_stack = on_slices(cam, brain_box(images), (n, h, w))
    return on_stack if rows is None else on_stack[np.asarray(rows, dtype=np.int64)]


def _identity(t):
    return t


def choose_layer(size: int, layer: str = "auto") -> str:
    """``auto``: the deepest ResNet stage whose map is at least 6 pixels wide.

    At 240×240, layer4's map is 8×8: layer4, as Grad-CAM is usually run. At 48×48 (the CPU
    demo), layer4's map is 2×2, too coarse to say where in the slice the model looks, so an
    earlier stage is used and the summary says which.
    """
    if layer != "auto":
        return layer
    for stage, stride in (("layer4", 32), ("layer3", 16), ("layer2", 8)):
        if size // stride >= 6:
            return stage
    return "layer1"


def cam_mass(cams: dict[int, np.ndarray], n: int) -> np.ndarray:
    """Each of ``n`` slices' positive Grad-CAM mass (``cams``: slice → map)."""
    return np.array([np.clip(cams[i], 0, None).sum() for i in range(n)])


def choose_slices(strength: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` candidate slices that speak most strongly for the answer (``strength``: each
    slice's probability of the answered class)."""
    idx = np.flatnonzero(candidates)
    if len(idx) == 0:
        idx = np.arange(len(strength))
    return np.sort(idx[np.argsort(-strength[idx], kind="stable")[:k]])


def attention_line(summary: dict) -> str:
    """The attention summary in one line."""
    return (
        f"attention on {summary['n_slices']} slices of {summary['n_patients']} patients: "
        f"{summary['mean_share_tumor']:.1%} of Grad-CAM mass in the tumour "
        f"(chance {summary['mean_chance']:.1%}), peak in tumour {summary['hit_rate']:.1%}, "
        f"{summary['share_patients_above_chance']:.1%} of patients above chance "
        f"(Grad-CAM on {summary['layer']})"
    )
