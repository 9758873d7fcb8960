"""``gliograde predict``: grade new patients with a trained run.

The preprocessing is the one recorded in the run (``RUN/config.json``), never re-typed. The
models are the run's fold models, averaged (or its ``--full`` model when there is one).

* With a segmentation: the tumour slices are selected from it and their P(HGG) averaged.
* Without one (the usual case for a new patient, or ``--ignore-seg``): every brain slice is
  scored and weighted by the model's own probability that the slice shows tumour.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gliograde.errors import GliogradeError
from gliograde.layouts import SEG, subject_from_folder


@dataclass
class Prediction:
    """The answer for one subject (``error`` set instead when it could not be read)."""

    subject: str
    grade: str | None = None
    p_hgg: float | None = None
    n_slices: int = 0
    used_seg: bool = False
    error: str | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {"subject": self.subject}
        if self.error is not None:
            return out | {"error": self.error}
        out |= {"grade": self.grade, "p_hgg": round(self.p_hgg, 6), "n_slices": self.n_slices,
                "used_seg": self.used_seg}  # fmt: skip
        return out | self.extra


def load_run(run: Path) -> tuple[dict, list[Path]]:
    """The run's recorded config and the weights to use.

    Raises:
        GliogradeError: not a run folder, or no trained model in it.
    """
    run = Path(run)
    config_path = run / "config.json"
    if not config_path.is_file():
        raise GliogradeError(
            f"{run}: not a gliograde run (no config.json); give the folder `gliograde train` wrote"
        )
    config = json.loads(config_path.read_text())
    full = run / "full" / "model.safetensors"
    weights = [full] if full.is_file() else sorted(run.glob("fold_*/model.safetensors"))
    if not weights:
        raise GliogradeError(f"{run}: no trained model (model.safetensors) in it; train it first")
    return config, weights


def prediction_config(run_config: dict, with_seg: bool):
    """The store's preprocessing; seg-free prediction scores every brain slice."""
    from gliograde.store import PrepareConfig

    options = dict(run_config["store_manifest"]["options"])
    if not with_seg:
        options["slices"] = "brain"
    return PrepareConfig(**options)


def subject_slices(folder: Path, run_config: dict, ignore_seg: bool = False):
    """A new patient's folder, preprocessed as the run's store was.

    Returns:
        (subject, slices, with_seg): with_seg is True when a segmentation was found and used.

    Raises:
        GliogradeError: the folder or its files cannot be used (SubjectError lists why).
    """
    from gliograde.store import preprocess_subject

    subject = subject_from_folder(folder)
    with_seg = SEG in subject.files and not ignore_seg
    slices = preprocess_subject(subject, prediction_config(run_config, with_seg), with_seg)
    return subject, slices, with_seg


def tumour_pixels(slices) -> np.ndarray:
    """Tumour pixels of each slice in the segmentation (native resolution)."""
    return sum(np.asarray(slices.counts[f"tumor_{k}"]) for k in (1, 2, 4))


def tumour_slices(slices, min_tumor: int) -> np.ndarray:
    """Slices with at least ``min_tumor`` tumour pixels in the segmentation (native counts)."""
    return tumour_pixels(slices) >= min_tumor


def flip_spread(models, x, p_hgg, weights, top, device) -> float:
    """Disagreement of test-time flips: the standard deviation, over (as is, left-right,
    front-back), of the patient P(HGG) on the ``top`` slices, averaged over models.

    Args:
        p_hgg: ``[models, 1, slices]``, the slices as they are (already computed).
        weights: ``[models, slices]``, each slice's weight in the patient's P(HGG).
        top: indices of the slices to flip (see :data:`gliograde.evaluate.TTA_SLICES`).
    """
    from gliograde.inference import VARIANTS, run_models

    flipped, _ = run_models(models, x[top], device, variants=VARIANTS[1:])
    variants = np.concatenate([p_hgg[:, :1, top], flipped], axis=1)  # [models, 3, k]
    w = weights[:, top][:, None, :]
    per = (variants * w).sum(axis=2) / np.maximum(w.sum(axis=2), 1e-9)
    return float(per.mean(axis=0).std())


def load_calibration(run: Path) -> dict:
    path = Path(run) / "calibration.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def predict_subjects(
    folders: list[Path], run: Path, ignore_seg: bool = False, device: str = "cpu"
) -> list[Prediction]:
    """Predict the grade of each subject folder; a bad subject gets an error, not an exception.

    P(HGG) is calibrated with the run's patient-level temperature and bias when the run has
    them, and each answer carries an uncertainty score and a flag (see :mod:`gliograde.calibrate`).
    """
    from gliograde.calibrate import apply_temperature, uncertainty_score
    from gliograde.evaluate import top_slices
    from gliograde.inference import load_models, run_models
    from gliograde.volumes import SubjectError

    run_config, weights = load_run(run)
    calibration = load_calibration(run)
    models = load_models(weights, device)
    min_tumor = run_config["store_manifest"]["options"]["min_tumor_pixels"]
    out = []
    for folder in folders:
        try:
            subject, slices, with_seg = subject_slices(Path(folder), run_config, ignore_seg)
        except SubjectError as err:
            out.append(Prediction(err.subject_id, error="; ".join(err.problems)))
            continue
        except GliogradeError as err:
            out.append(Prediction(Path(folder).name, error=str(err)))
            continue
        x = torch_slices(slices.images)
        p_hgg, p_tumor = run_models(models, x, device)  # [models, 1, slices]
        if with_seg:
            tumour = tumour_slices(slices, min_tumor)
            used = tumour if tumour.any() else np.ones_like(tumour)
            weights_ = used.astype(np.float64)[None, :].repeat(len(models), 0)
            ranking = np.where(used, tumour_pixels(slices), -1)  # as evaluation ranks them
        else:
            used = np.ones(p_hgg.shape[2], dtype=bool)
            weights_ = p_tumor[:, 0]
            ranking = weights_.mean(axis=0)
        # Patient P(HGG) for each model: a weighted mean over slices.
        per = (p_hgg[:, 0] * weights_).sum(axis=1) / np.maximum(weights_.sum(axis=1), 1e-9)
        p = float(per.mean())
        t, b = ("patient_temperature", "patient_bias") if with_seg else (
            "patient_temperature_noseg", "patient_bias_noseg")  # fmt: skip
        p_cal = float(apply_temperature(p, calibration.get(t, 1.0), calibration.get(b, 0.0)))
        slice_p = p_hgg[:, 0, :].mean(axis=0)[used]
        spread = (
            float(np.sqrt(np.cov(slice_p, aweights=weights_[0, used]))) if used.sum() > 1 else 0.0
        )
        candidates = np.flatnonzero(used)
        top = candidates[top_slices(ranking[candidates])]
        tta = flip_spread(models, x, p_hgg, weights_, top, device)
        folds = float(per.std())
        u = float(uncertainty_score(p_cal, spread, tta, folds))
        threshold = calibration.get("uncertainty_threshold")
        extra = {
            "p_hgg_uncalibrated": round(p, 6),
            "uncertainty": round(u, 6),
            "uncertainty_parts": {
                "slice_spread": round(spread, 6),
                "tta": round(tta, 6),
                "folds": round(folds, 6),
            },
            "flag": "uncertain" if threshold is not None and u > threshold else "confident",
        }
        grade = "HGG" if p_cal >= 0.5 else "LGG"
        out.append(Prediction(subject.subject_id, grade, p_cal, int(used.sum()), with_seg,
                              extra=extra))  # fmt: skip
    return out


def torch_slices(images: np.ndarray):
    import torch

    return torch.from_numpy(images.astype(np.float32))


def format_predictions(predictions: list[Prediction]) -> str:
    lines = [f"{'subject':<28}{'grade':<7}{'P(HGG)':>8}{'slices':>8}  {'seg':<5}flag"]
    for p in predictions:
        if p.error:
            lines.append(f"{p.subject:<28}ERROR  {p.error}")
        else:
            seg = "yes" if p.used_seg else "no"
            flag = p.extra.get("flag", "")
            lines.append(
                f"{p.subject:<28}{p.grade:<7}{p.p_hgg:>8.3f}{p.n_slices:>8}  {seg:<5}{flag}"
            )
    return "\n".join(lines)
