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
from gliograde.evaluate import tumor_weighted_mean
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
        raise GliogradeError(f"{run}: not a gliograde run (no config.json); give --model RUN")
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


def predict_subjects(
    folders: list[Path], run: Path, ignore_seg: bool = False, device: str = "cpu"
) -> list[Prediction]:
    """Predict the grade of each subject folder; a bad subject gets an error, not an exception."""
    from gliograde.inference import load_models, run_models
    from gliograde.store import preprocess_subject
    from gliograde.volumes import SubjectError

    run_config, weights = load_run(run)
    models = load_models(weights, device)
    min_tumor = run_config["store_manifest"]["options"]["min_tumor_pixels"]
    out = []
    for folder in folders:
        try:
            subject = subject_from_folder(Path(folder))
        except GliogradeError as err:
            out.append(Prediction(Path(folder).name, error=str(err)))
            continue
        with_seg = SEG in subject.files and not ignore_seg
        try:
            slices = preprocess_subject(subject, prediction_config(run_config, with_seg), with_seg)
        except SubjectError as err:
            out.append(Prediction(subject.subject_id, error="; ".join(err.problems)))
            continue
        import torch

        p_hgg, p_tumor = run_models(
            models, torch.from_numpy(slices.images.astype(np.float32)), device
        )
        if with_seg:
            tumour = np.asarray(slices.counts["tumor_1"]) + slices.counts["tumor_2"]
            tumour = (tumour + np.asarray(slices.counts["tumor_4"])) >= min_tumor
            used = tumour if tumour.any() else np.ones_like(tumour)
            p = float(p_hgg[used].mean())
            n = int(used.sum())
        else:
            p = tumor_weighted_mean(p_hgg, p_tumor)
            n = len(p_hgg)
        out.append(Prediction(subject.subject_id, "HGG" if p >= 0.5 else "LGG", p, n, with_seg))
    return out


def format_predictions(predictions: list[Prediction]) -> str:
    lines = [f"{'subject':<28}{'grade':<7}{'P(HGG)':>8}{'slices':>8}  seg"]
    for p in predictions:
        if p.error:
            lines.append(f"{p.subject:<28}ERROR  {p.error}")
        else:
            seg = "yes" if p.used_seg else "no"
            lines.append(f"{p.subject:<28}{p.grade:<7}{p.p_hgg:>8.3f}{p.n_slices:>8}  {seg}")
    return "\n".join(lines)
