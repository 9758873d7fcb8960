"""``gliograde explain``: where does the model look? Grad-CAM panels and attention on the tumour.

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

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ATTENTION_COLUMNS = ("subject", "z", "fold", "share_tumor", "share_brain", "hit", "chance")


def attention_metrics(cam: np.ndarray, tumour: np.ndarray, brain: np.ndarray) -> dict:
    """Attention of one heat map (``H×W``, any real values) on a tumour and a brain mask.

    Only the positive part of the map counts. A map with no positive mass has shares 0.
    """
    positive = np.clip(np.asarray(cam, dtype=np.float64), 0, None)
    total = positive.sum()
    tumour = np.asarray(tumour, dtype=bool)
    brain = np.asarray(brain, dtype=bool)
    peak = np.unravel_index(int(np.argmax(positive)), positive.shape)
    return {
        "share_tumor": float(positive[tumour].sum() / total) if total > 0 else 0.0,
        "share_brain": float(positive[brain].sum() / total) if total > 0 else 0.0,
        "hit": bool(total > 0 and tumour[peak]),
        "chance": float(tumour.sum() / max(brain.sum(), 1)),
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
    total = None
    for model in models:
        cam = cam_type(nn_module=model, target_layers=f"backbone.{layer}", postprocessing=_identity)
        maps = []
        for start in range(0, len(x), 32):
            batch = x[start : start + 32].clone().requires_grad_(False)
            with torch.enable_grad():
                maps.append(cam(x=batch, class_idx=class_idx).detach()[:, 0])
        out = torch.cat(maps).numpy()
        total = out if total is None else total + out
    return total / len(models)


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


@dataclass
class SliceSet:
    """Slices of one patient to explain, with what is known about them."""

    subject: str
    fold: int
    images: np.ndarray  # float (n, 4, H, W)
    seg: np.ndarray | None  # uint8 (n, H, W)
    z: np.ndarray
    p_hgg: np.ndarray  # per slice
    p_patient: float


def choose_slices(p_hgg: np.ndarray, candidates: np.ndarray, k: int, predicted: int) -> np.ndarray:
    """The ``k`` candidate slices that speak most strongly for the predicted grade."""
    idx = np.flatnonzero(candidates)
    if len(idx) == 0:
        idx = np.arange(len(p_hgg))
    strength = p_hgg[idx] if predicted == 1 else 1 - p_hgg[idx]
    return np.sort(idx[np.argsort(-strength, kind="stable")[:k]])


def explain_store(
    run: Path,
    store_path: Path,
    out: Path | None = None,
    per_patient: int = 2,
    method: str = "gradcam",
    max_attention_slices: int = 8,
    layer: str = "auto",
) -> dict:
    """Explain the out-of-fold predictions of a cross-validated run on its own store.

    Each patient is explained by the fold model that validated it. Attention is measured on up to
    ``max_attention_slices`` tumour slices per patient (those with the most tumour); panels are
    drawn for the ``per_patient`` most informative ones.

    Returns:
        The attention summary (also written to ``metrics.json`` under ``attention``).
    """
    from gliograde.dataset import SliceStore
    from gliograde.evaluate import SlicePredictions, tumour_mean
    from gliograde.inference import load_models
    from gliograde.splits import load_splits

    run = Path(run)
    out = Path(out) if out else run / "explain"
    out.mkdir(parents=True, exist_ok=True)
    store = SliceStore(store_path)
    preds = SlicePredictions.read_csv(run / "predictions_slices.csv")
    splits = load_splits(store.path)
    layer = choose_layer(int(store.manifest["slice_shape"][-1]), layer)
    rows, panels = [], {}
    for fold, split in enumerate(splits):
        weights = run / f"fold_{fold}" / "model.safetensors"
        if not weights.is_file():
            continue
        models = load_models([weights])
        for subject in split["val"]:
            m = (preds.subject == subject) & (preds.fold == fold)
            if not m.any():
                continue
            tumour_rows = preds.tumor_slice[m]
            p_slices = preds.p_hgg[m]
            p_patient = tumour_mean(p_slices, tumour_rows)
            predicted = int(p_patient >= 0.5)
            images = np.asarray(store.array(subject, "images"), dtype=np.float32)
            seg = np.asarray(store.array(subject, "seg"))
            order = np.argsort(-preds.tumor_pixels[m], kind="stable")
            measure = np.sort(
                order[:max_attention_slices][tumour_rows[order[:max_attention_slices]]]
            )
            show = choose_slices(p_slices, tumour_rows, per_patient, predicted)
            wanted = np.union1d(measure, show)
            cams = grad_cam_maps(models, torch.from_numpy(images[wanted]), predicted, method, layer)
            cam_of = dict(zip(wanted.tolist(), cams))
            zs = preds.z[m]
            for i in measure:
                brain = np.any(images[i] != 0, axis=0)
                a = attention_metrics(cam_of[i], seg[i] > 0, brain)
                rows.append({"subject": subject, "z": int(zs[i]), "fold": fold, **a})
            files = []
            for i in show:
                name = f"{subject}_z{int(zs[i]):03d}.png"
                draw_panel(images[i], cam_of[i], seg[i], out / name,
                           f"{subject} z={int(zs[i])}  P(HGG) slice {p_slices[i]:.2f}, "
                           f"patient {p_patient:.2f}")  # fmt: skip
                files.append(name)
            panels[subject] = files
    write_attention(out / "attention.csv", rows)
    summary = summarise_attention(rows)
    summary["method"] = method
    summary["layer"] = layer
    summary["panels"] = panels
    merge_metrics(run, "attention", summary)
    return summary


def explain_subjects(
    run: Path, folders: list[Path], out: Path | None = None, per_patient: int = 2,
    method: str = "gradcam", layer: str = "auto",
) -> dict:  # fmt: skip
    """Explain new patients (their folders) with the run's models, averaged."""
    from gliograde.evaluate import tumour_mean
    from gliograde.inference import load_models, run_models
    from gliograde.predict import load_run, subject_slices, tumour_slices

    run = Path(run)
    out = Path(out) if out else run / "explain"
    out.mkdir(parents=True, exist_ok=True)
    run_config, weights = load_run(run)
    min_tumor = run_config["store_manifest"]["options"]["min_tumor_pixels"]
    models = load_models(weights)
    rows, panels, stage = [], {}, layer
    for folder in folders:
        subject, slices, with_seg = subject_slices(Path(folder), run_config)
        images = slices.images.astype(np.float32)
        p_hgg, p_tumor = run_models(models, torch.from_numpy(images))
        p_slices, p_tum = p_hgg[:, 0].mean(0), p_tumor[:, 0].mean(0)
        tumour_rows = tumour_slices(slices, min_tumor) if with_seg else p_tum >= 0.5
        p_patient = tumour_mean(p_slices, tumour_rows)
        predicted = int(p_patient >= 0.5)
        show = choose_slices(p_slices, tumour_rows, per_patient, predicted)
        stage = choose_layer(images.shape[-1], layer)
        cams = grad_cam_maps(models, torch.from_numpy(images[show]), predicted, method, stage)
        files = []
        for cam, i in zip(cams, show):
            seg = slices.seg[i] if with_seg else None
            if seg is not None:
                brain = np.any(images[i] != 0, axis=0)
                a = attention_metrics(cam, seg > 0, brain)
                rows.append({"subject": subject.subject_id, "z": int(slices.z[i]), "fold": -1, **a})
            name = f"{subject.subject_id}_z{int(slices.z[i]):03d}.png"
            title = f"{subject.subject_id} z={int(slices.z[i])}  P(HGG) {p_patient:.2f}"
            draw_panel(images[i], cam, seg, out / name, title)
            files.append(name)
        panels[subject.subject_id] = files
    write_attention(out / "attention.csv", rows)
    return summarise_attention(rows) | {"panels": panels, "method": method, "layer": stage}


def write_attention(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=ATTENTION_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: csv_value(v) for k, v in r.items()})


def csv_value(v):
    if isinstance(v, bool):
        return int(v)
    return f"{v:.6f}" if isinstance(v, float) else v


def merge_metrics(run: Path, key: str, value: dict) -> None:
    path = Path(run) / "metrics.json"
    metrics = json.loads(path.read_text()) if path.is_file() else {}
    metrics[key] = value
    path.write_text(json.dumps(metrics, indent=2) + "\n")


def draw_panel(image: np.ndarray, cam: np.ndarray, seg: np.ndarray | None, path: Path, title: str):
    """Four sequences, then the heat map over FLAIR; the tumour outline where a seg exists."""
    from gliograde import MODALITIES
    from gliograde.plots import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, 5, figsize=(11, 2.6))
    # Slices are stored (x, y) in LPS: transposed, the patient's right is on the viewer's left and
    # anterior is at the top (the radiological convention).
    for c, name in enumerate(MODALITIES):
        axes[c].imshow(image[c].T, cmap="gray")
        axes[c].set_title(name.upper() if name != "t1ce" else "T1ce", fontsize=9)
    axes[4].imshow(image[0].T, cmap="gray")
    heat = np.clip(cam, 0, None)
    if heat.max() > 0:
        heat = heat / heat.max()
    axes[4].imshow(heat.T, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    axes[4].set_title("Grad-CAM on FLAIR", fontsize=9)
    if seg is not None and (seg > 0).any():
        for ax in (axes[0], axes[4]):
            ax.contour((seg > 0).T.astype(float), levels=[0.5], colors="lime", linewidths=0.8)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
