"""``gliograde explain``: Grad-CAM panels for each patient, and attention on the tumour.

A cross-validated run's patients (``--store``) are explained by the fold model that validated
each, with the folds frozen into the run; new patients (subject or cohort folders, CSV
manifests) by the run's models together. Each patient is graded by the one patient rule first,
so the P(HGG) shown is the calibrated one ``predict`` gives. See :mod:`gliograde.assess.gradcam`
for the attention figures.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from gliograde import GRADES
from gliograde.assess.gradcam import (
    ATTENTION_COLUMNS,
    attention_metrics,
    choose_layer,
    choose_slices,
    grad_cam_maps,
    summarise_attention,
)
from gliograde.assess.modelcard import write_model_card
from gliograde.core.errors import GliogradeError
from gliograde.core.files import merge_json
from gliograde.run import Run


def explain_store(
    run_path: Path,
    store_path: Path,
    out: Path | None = None,
    per_patient: int = 2,
    method: str = "gradcam",
    max_attention_slices: int = 8,
    layer: str = "auto",
    device: str = "auto",
) -> dict:
    """Explain the out-of-fold patients of a cross-validated run on its own store.

    Attention is measured on up to ``max_attention_slices`` tumour slices per patient (those
    with the most tumour); panels are drawn for the ``per_patient`` most informative ones.

    Returns:
        The attention summary (also written to ``metrics.json`` under ``attention``).
    """
    from gliograde.assess.crossval import stored_slices
    from gliograde.core.devices import torch_device
    from gliograde.infer.models import load_models, slice_outputs
    from gliograde.infer.patient import patient_evidence
    from gliograde.store.read import SliceStore

    run, dev = Run.open(run_path), torch_device(device)
    out = Path(out) if out else run.path / "explain"
    out.mkdir(parents=True, exist_ok=True)
    store = SliceStore(store_path)
    held_out = {s for k in run.folds() for s in run.fold_split(k)["val"]}
    missing = sorted(held_out - set(store.subjects))
    if missing:
        raise GliogradeError(
            f"{store.path}: does not hold the run's patient {missing[0]} ({len(missing)} "
            f"missing); give the store the run was trained on ({run.config['store']})"
        )
    answers = reported_p(run)
    layer = choose_layer(int(store.manifest["slice_shape"][-1]), layer)
    rows, panels = [], {}
    for k in run.folds():
        models = load_models(run.weights(k), dev)
        for subject in run.fold_split(k)["val"]:
            x, tumor_px, _ = stored_slices(store, subject)
            p_class, p_tumor = slice_outputs(models, x, dev)
            ev = patient_evidence(models, x, p_class, p_tumor, tumor_px, run.min_tumor, dev)
            seg = store.read_subject(subject, "seg")
            order = np.argsort(-tumor_px, kind="stable")[:max_attention_slices]
            measure = np.sort(order[ev.weights[order] > 0])
            p_patient = answers.get(subject, ev.p)
            z = store_z(store, subject)
            case = Case(subject, x.numpy(), seg, z, ev.slice_p, p_patient, run.target.classes)
            files, found = explain_case(
                models, case, ev.weights > 0, measure, per_patient, method, layer, out
            )
            rows += [r | {"fold": k} for r in found]
            panels[subject] = files
    write_attention(out / "attention.csv", rows)
    summary = summarise_attention(rows) | {"method": method, "layer": layer, "panels": panels}
    merge_json(run.path / "metrics.json", "attention", summary)
    write_model_card(run)
    return summary


def reported_p(run: Run) -> dict[str, float | np.ndarray]:
    """Each out-of-fold patient's reported (calibrated, cross-fitted) probability of the
    target's class 1 (P(HGG) for the grade; for more classes, of each), when evaluated."""
    from gliograde.assess.patients import read_rows

    path = run.path / "predictions_patients.csv"
    if not path.is_file():
        return {}
    rows = read_rows(path, run.target.classes)
    return {
        r["subject"]: np.array(r["p_hgg"], dtype=float) if isinstance(r["p_hgg"], list)
        else float(r["p_hgg"])
        for r in rows if r.get("p_hgg")
    }  # fmt: skip


def store_z(store, subject: str) -> np.ndarray:
    rows = store.rows([subject])
    return store.index.z[rows[np.argsort(store.index.row[rows], kind="stable")]]


class Case:
    """One patient to explain: slices, segmentation (or None), slice and patient probability
    (of the target's class 1 for two classes: HGG for the grade; of each class for more), and
    the class the maps are drawn for: the patient's answer."""

    def __init__(self, subject, images, seg, z, slice_p, p_patient, classes=GRADES):
        from gliograde.infer.patient import predicted_index

        self.subject, self.images, self.seg, self.z = subject, images, seg, z
        self.slice_p, self.p_patient = slice_p, np.asarray(p_patient, dtype=np.float64)
        self.predicted = int(predicted_index(self.p_patient[None])[0])
        self.classes = tuple(classes)

    @property
    def shown(self) -> str:
        """The class whose probability panel titles give: class 1, or the answer."""
        return self.classes[1] if len(self.classes) == 2 else self.classes[self.predicted]

    def p_shown(self, p: np.ndarray) -> float:
        """``p``'s probability of :attr:`shown` (a slice's or the patient's)."""
        from gliograde.infer.patient import shown_probability

        return shown_probability(p, self.predicted)

    def answer(self) -> dict:
        """The answer, and the probability of :attr:`shown` (``of``)."""
        p = self.p_shown(self.p_patient)
        return {"answer": self.classes[self.predicted], "p": p, "of": self.shown}

    def strength(self) -> np.ndarray:
        """How much each slice speaks for the answer."""
        p = np.asarray(self.slice_p)
        if p.ndim == 2:
            return p[:, self.predicted]
        return p if self.predicted == 1 else 1 - p


def explain_case(models, case: Case, candidates, measure, per_patient, method, layer, out):
    """Grad-CAM on the slices to measure and to show; returns (panel files, attention rows)."""
    predicted = case.predicted
    show = choose_slices(case.strength(), candidates, per_patient)
    wanted = np.union1d(measure, show).astype(int)
    cams = grad_cam_maps(models, torch.from_numpy(case.images[wanted]), predicted, method, layer)
    cam_of = dict(zip(wanted.tolist(), cams))
    rows = []
    for i in measure.tolist() if case.seg is not None else []:
        brain = np.any(case.images[i] != 0, axis=0)
        a = attention_metrics(cam_of[i], case.seg[i] > 0, brain)
        rows.append({"subject": case.subject, "z": int(case.z[i]), **a})
    files = []
    for i in show.tolist():
        name = f"{case.subject}_z{int(case.z[i]):03d}.png"
        title = (
            f"{case.subject} z={int(case.z[i])}  P({case.shown}) slice "
            f"{case.p_shown(case.slice_p[i]):.2f}, patient {case.p_shown(case.p_patient):.2f}"
        )
        seg = case.seg[i] if case.seg is not None else None
        draw_panel(case.images[i], cam_of[i], seg, out / name, title)
        files.append(name)
    return files, rows


def explain_subjects(
    run_path: Path,
    inputs: list[Path],
    out: Path | None = None,
    per_patient: int = 2,
    method: str = "gradcam",
    layer: str = "auto",
    device: str = "auto",
) -> dict:
    """Explain new patients with the run's models; every subject is answered, a bad one with
    its error (under ``errors`` in the summary)."""
    from gliograde.core.devices import torch_device
    from gliograde.infer.guard import out_of_distribution
    from gliograde.infer.models import load_models
    from gliograde.infer.subjects import grade_slices, subject_slices
    from gliograde.io.layouts import discover_inputs
    from gliograde.io.volumes import SubjectError

    run, dev = Run.open(run_path), torch_device(device)
    out = Path(out) if out else run.path / "explain"
    out.mkdir(parents=True, exist_ok=True)
    models = load_models(run.weights(), dev)
    subjects, errors = discover_inputs(inputs)
    rows, panels, answers, stage = [], {}, {}, layer
    for subject in subjects:
        try:
            slices, with_seg = subject_slices(subject, run)
        except SubjectError as err:
            errors[subject.subject_id] = "; ".join(err.problems)
            continue
        except GliogradeError as err:
            errors[subject.subject_id] = str(err)
            continue
        reasons = out_of_distribution(slices.profile, run.manifest.get("profile"), run.resized)
        if reasons:  # refused as predict refuses it
            errors[subject.subject_id] = "out of distribution: " + "; ".join(reasons)
            continue
        result = grade_slices(models, slices, with_seg, run, dev)
        ev = result.evidence
        images = slices.images.astype(np.float32)
        stage = choose_layer(images.shape[-1], layer)
        seg = slices.seg if with_seg else None
        measure = top_tumor(slices, run.min_tumor) if with_seg else np.zeros(0, dtype=int)
        classes = run.target.classes
        case = Case(subject.subject_id, images, seg, slices.z, ev.slice_p, result.p, classes)
        files, found = explain_case(
            models, case, ev.weights >= 0.5, measure, per_patient, method, stage, out
        )
        rows += [r | {"fold": -1} for r in found]
        panels[subject.subject_id] = files
        answers[subject.subject_id] = case.answer()
    write_attention(out / "attention.csv", rows)
    summary = summarise_attention(rows) | {"panels": panels, "method": method, "layer": stage}
    return summary | {"answers": answers, "errors": errors}


def top_tumor(slices, min_tumor: int, k: int = 8) -> np.ndarray:
    """Up to ``k`` tumour slices (``min_tumor`` pixels or more), those with the most tumour."""
    from gliograde.infer.subjects import tumor_pixels

    pixels = tumor_pixels(slices)
    order = np.argsort(-pixels, kind="stable")[:k]
    return np.sort(order[pixels[order] >= min_tumor])


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


def draw_panel(
    image: np.ndarray, cam: np.ndarray, seg: np.ndarray | None, path: Path, title: str
) -> None:
    """Four sequences, then the heat map over FLAIR; the tumour outline where a seg exists."""
    from gliograde import MODALITIES
    from gliograde.assess.plots import pyplot

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
