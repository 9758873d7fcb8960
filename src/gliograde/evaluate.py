"""Slice- and patient-level metrics, from saved predictions.

A patient's probability of HGG is the mean of its tumour slices' probabilities (majority vote
is reported too). Without a segmentation, slices are weighted by the model's own tumour
probability instead (``p_tumor``), which is how ``predict`` works on new patients.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gliograde.errors import GliogradeError

TTA_SLICES = 16
"""Test-time flips are judged on a patient's 16 most tumour-bearing slices (not on all: three
forward passes per slice would triple ``predict``'s time for one term of the uncertainty)."""


def top_slices(scores: np.ndarray, k: int = TTA_SLICES) -> np.ndarray:
    """Indices of the ``k`` largest scores (ties: the earlier slice first), in slice order."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return np.sort(order[:k])


SLICE_COLUMNS = ("fold", "subject", "z", "y", "p_hgg", "p_tumor", "tumor_pixels", "tumor_slice",
                 "p_hgg_flip_lr", "p_hgg_flip_ap")  # fmt: skip
_FLOAT_COLUMNS = ("p_hgg", "p_tumor", "p_hgg_flip_lr", "p_hgg_flip_ap")
PATIENT_COLUMNS = ("fold", "subject", "y", "p_hgg", "p_vote", "p_hgg_noseg", "n_slices", "spread",
                   "tta_spread", "p_hgg_calibrated", "uncertainty", "flag", "pred")  # fmt: skip


@dataclass
class SlicePredictions:
    """Predictions of one or more folds, one entry per slice (columns as NumPy arrays)."""

    fold: np.ndarray
    subject: np.ndarray
    z: np.ndarray
    y: np.ndarray
    p_hgg: np.ndarray
    p_tumor: np.ndarray
    tumor_pixels: np.ndarray
    tumor_slice: np.ndarray  # bool: at least min_tumor_pixels of tumour in the seg
    p_hgg_flip_lr: np.ndarray  # P(HGG) of the slice mirrored left-right (test-time flip)
    p_hgg_flip_ap: np.ndarray  # ... mirrored front-back

    @classmethod
    def concat(cls, parts: list[SlicePredictions]) -> SlicePredictions:
        return cls(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in SLICE_COLUMNS})

    def write_csv(self, path: Path) -> None:
        with open(path, "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(SLICE_COLUMNS)
            for i in range(len(self.subject)):
                writer.writerow(
                    [int(self.fold[i]), self.subject[i], int(self.z[i]), int(self.y[i]),
                     f"{self.p_hgg[i]:.6f}", f"{self.p_tumor[i]:.6f}",
                     int(self.tumor_pixels[i]), int(self.tumor_slice[i]),
                     f"{self.p_hgg_flip_lr[i]:.6f}", f"{self.p_hgg_flip_ap[i]:.6f}"]
                )  # fmt: skip

    @classmethod
    def read_csv(cls, path: Path) -> SlicePredictions:
        if not Path(path).is_file():
            raise GliogradeError(f"{path}: no saved predictions; train the run first")
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        ints = ("fold", "z", "y", "tumor_pixels")
        cols = {k: np.array([int(r[k]) for r in rows]) for k in ints}
        cols |= {k: np.array([float(r[k]) for r in rows]) for k in _FLOAT_COLUMNS}
        cols["subject"] = np.array([r["subject"] for r in rows], dtype=object)
        cols["tumor_slice"] = np.array([r["tumor_slice"] == "1" for r in rows])
        return cls(**cols)


@dataclass
class PatientPredictions:
    fold: np.ndarray
    subject: np.ndarray
    y: np.ndarray
    p_hgg: np.ndarray  # mean over tumour slices (seg known)
    p_vote: np.ndarray  # share of tumour slices voting HGG
    p_hgg_noseg: np.ndarray  # tumour-probability-weighted mean over all slices (no seg)
    n_slices: np.ndarray
    spread: np.ndarray  # standard deviation of the used slices' P(HGG)
    tta_spread: np.ndarray  # std of P(HGG) over test-time flips, on the TTA_SLICES top slices
    p_hgg_calibrated: np.ndarray | None = None
    uncertainty: np.ndarray | None = None
    flag: np.ndarray | None = None

    def write_csv(self, path: Path) -> None:
        n = len(self.subject)
        cal = self.p_hgg_calibrated if self.p_hgg_calibrated is not None else self.p_hgg
        unc = self.uncertainty if self.uncertainty is not None else np.zeros(n)
        flag = self.flag if self.flag is not None else np.zeros(n, dtype=bool)
        with open(path, "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(PATIENT_COLUMNS)
            for i in range(n):
                writer.writerow(
                    [int(self.fold[i]), self.subject[i], int(self.y[i]), f"{self.p_hgg[i]:.6f}",
                     f"{self.p_vote[i]:.6f}", f"{self.p_hgg_noseg[i]:.6f}",
                     int(self.n_slices[i]), f"{self.spread[i]:.6f}", f"{self.tta_spread[i]:.6f}",
                     f"{cal[i]:.6f}", f"{unc[i]:.6f}", "uncertain" if flag[i] else "",
                     "HGG" if self.p_hgg[i] >= 0.5 else "LGG"]
                )  # fmt: skip


def tumour_mean(p_hgg: np.ndarray, tumour: np.ndarray) -> float:
    """A patient's P(HGG) with a segmentation: the mean over its tumour slices (all if none)."""
    return float(p_hgg[tumour].mean() if tumour.any() else p_hgg.mean())


def tumor_weighted_mean(p_hgg: np.ndarray, p_tumor: np.ndarray) -> float:
    """Mean of slice probabilities weighted by each slice's tumour probability."""
    w = np.asarray(p_tumor, dtype=np.float64)
    if w.sum() <= 1e-6:
        return float(np.mean(p_hgg))
    return float(np.sum(w * p_hgg) / w.sum())


def aggregate_patients(s: SlicePredictions) -> PatientPredictions:
    """One row per (fold, subject), in order of first appearance."""
    keys = list(dict.fromkeys(zip(s.fold.tolist(), s.subject.tolist())))
    names = ("fold", "subject", "y", "p_hgg", "p_vote", "p_hgg_noseg", "n_slices", "spread",
             "tta_spread")  # fmt: skip
    out = {k: [] for k in names}
    for fold, subject in keys:
        m = (s.fold == fold) & (s.subject == subject)
        tumour = m & s.tumor_slice
        used = tumour if tumour.any() else m
        out["fold"].append(fold)
        out["subject"].append(subject)
        out["y"].append(int(s.y[m][0]))
        out["p_hgg"].append(tumour_mean(s.p_hgg[m], s.tumor_slice[m]))
        out["p_vote"].append(float((s.p_hgg[used] >= 0.5).mean()))
        out["p_hgg_noseg"].append(tumor_weighted_mean(s.p_hgg[m], s.p_tumor[m]))
        out["n_slices"].append(int(used.sum()))
        out["spread"].append(float(s.p_hgg[used].std()))
        idx = np.flatnonzero(used)
        top = idx[top_slices(s.tumor_pixels[idx])]
        flips = [s.p_hgg[top].mean(), s.p_hgg_flip_lr[top].mean(), s.p_hgg_flip_ap[top].mean()]
        out["tta_spread"].append(float(np.std(flips)))
    return PatientPredictions(
        **{k: np.array(v, dtype=object if k == "subject" else None) for k, v in out.items()}
    )


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict:
    """AUC, balanced accuracy, sensitivity (HGG recall), specificity (LGG recall), F1, confusion.

    The confusion matrix is ``[[TN, FP], [FN, TP]]`` with HGG as the positive class. AUC is None
    when only one class is present.
    """
    y = np.asarray(y).astype(int)
    pred = (np.asarray(p) >= threshold).astype(int)
    tp = int(np.sum((pred == 1) & (y == 1)))
    tn = int(np.sum((pred == 0) & (y == 0)))
    fp = int(np.sum((pred == 1) & (y == 0)))
    fn = int(np.sum((pred == 0) & (y == 1)))
    sens = tp / (tp + fn) if tp + fn else None
    spec = tn / (tn + fp) if tn + fp else None
    bal = (sens + spec) / 2 if sens is not None and spec is not None else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    return {
        "auc": roc_auc(y, p),
        "balanced_accuracy": bal,
        "sensitivity": sens,
        "specificity": spec,
        "f1": f1,
        "accuracy": (tp + tn) / len(y) if len(y) else None,
        "confusion": [[tn, fp], [fn, tp]],
        "n": len(y),
    }


def roc_auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """ROC AUC (ties count half), or None with a single class."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y).astype(int)
    if len(np.unique(y)) < 2:
        return None
    return float(roc_auc_score(y, p))


def bootstrap_intervals(
    y: np.ndarray, p: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, list[float] | None]:
    """Percentile bootstrap intervals over patients, resampled within each grade."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y == c) for c in (0, 1)]
    if min(len(g) for g in groups) == 0:
        return {}
    names = ("auc", "balanced_accuracy", "sensitivity", "specificity", "f1")
    samples = {k: [] for k in names}
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(g, len(g)) for g in groups])
        m = binary_metrics(y[idx], p[idx])
        for k in names:
            if m[k] is not None:
                samples[k].append(m[k])
    alpha = (1 - level) / 2
    return {
        k: [float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha))] if v else None
        for k, v in samples.items()
    }


def patient_metrics(pp: PatientPredictions, n_boot: int = 1000) -> dict:
    out = binary_metrics(pp.y, pp.p_hgg)
    out["ci95"] = bootstrap_intervals(pp.y, pp.p_hgg, n_boot)
    out["vote"] = binary_metrics(pp.y, pp.p_vote)
    out["noseg"] = binary_metrics(pp.y, pp.p_hgg_noseg)
    return out


def compute_metrics(
    slices: SlicePredictions, n_boot: int = 1000
) -> tuple[dict, PatientPredictions]:
    """Pooled out-of-fold metrics plus per-fold metrics, at slice and patient level."""
    patients = aggregate_patients(slices)
    tumour = slices.tumor_slice if slices.tumor_slice.any() else np.ones_like(slices.tumor_slice)
    metrics = {
        "patient": patient_metrics(patients, n_boot),
        "slice": binary_metrics(slices.y[tumour], slices.p_hgg[tumour]),
        "n_patients": len(patients.subject),
        "n_slices": int(tumour.sum()),
        "per_fold": [],
    }
    metrics["calibration"] = calibrate_predictions(slices, patients, tumour)
    metrics["uncertainty"] = flag_uncertain(patients)
    for fold in sorted(set(patients.fold.tolist())):
        pm = patients.fold == fold
        sm = (slices.fold == fold) & tumour
        metrics["per_fold"].append(
            {
                "fold": fold,
                "patient": binary_metrics(patients.y[pm], patients.p_hgg[pm]),
                "slice": binary_metrics(slices.y[sm], slices.p_hgg[sm]),
            }
        )
    return metrics, patients


def calibrate_predictions(s: SlicePredictions, patients: PatientPredictions, tumour) -> dict:
    """Calibration at slice and patient level; sets ``patients.p_hgg_calibrated``.

    See :func:`gliograde.calibrate.calibration_summary` for the figures reported.
    """
    from gliograde.calibrate import apply_temperature, calibration_summary

    out = {
        "slice": calibration_summary(s.p_hgg[tumour], s.y[tumour], s.fold[tumour]),
        "patient": calibration_summary(patients.p_hgg, patients.y, patients.fold),
        "patient_noseg": calibration_summary(patients.p_hgg_noseg, patients.y, patients.fold),
        "method": "temperature and bias on the logit, sigmoid(logit(p)/T + b), fitted on the "
        "out-of-fold predictions and applied only where each fold calibrated by the other folds "
        "has a lower Brier score than no calibration ('after': in-sample; 'after_crossfit': "
        "out-of-sample; 'after_temperature_only': no bias); ECE over 10 bins of P(HGG)",
    }
    c = out["patient"]
    patients.p_hgg_calibrated = apply_temperature(patients.p_hgg, c["temperature"], c["bias"])
    return out


def flag_uncertain(patients: PatientPredictions) -> dict:
    """Uncertainty per patient and the flag threshold, chosen on these validation predictions."""
    from gliograde.calibrate import choose_threshold, flag_summary, uncertainty_score

    p = patients.p_hgg_calibrated
    patients.uncertainty = uncertainty_score(p, patients.spread, patients.tta_spread, 0.0)
    correct = (patients.p_hgg >= 0.5) == (patients.y == 1)
    threshold = choose_threshold(patients.uncertainty, correct)
    patients.flag = patients.uncertainty > threshold
    summary = flag_summary(patients.uncertainty, correct, threshold)
    summary["note"] = (
        "threshold chosen on these out-of-fold predictions (the largest whose confident "
        "patients reach 95% accuracy); judge it on an independent test set"
    )
    return summary


def evaluate_run(run: Path, n_boot: int = 1000) -> dict:
    """Recompute ``metrics.json``, patient predictions and plots from ``predictions_slices.csv``."""
    run = Path(run)
    slices = SlicePredictions.read_csv(run / "predictions_slices.csv")
    metrics, patients = compute_metrics(slices, n_boot)
    old = run / "metrics.json"
    if old.is_file():  # keep sections other commands added (calibration, attention, ...)
        metrics = json.loads(old.read_text()) | metrics
    patients.write_csv(run / "predictions_patients.csv")
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    cal = metrics["calibration"]
    calibration = {
        "slice_temperature": cal["slice"]["temperature"],
        "patient_temperature": cal["patient"]["temperature"],
        "patient_temperature_noseg": cal["patient_noseg"]["temperature"],
        "slice_bias": cal["slice"]["bias"],
        "patient_bias": cal["patient"]["bias"],
        "patient_bias_noseg": cal["patient_noseg"]["bias"],
        "uncertainty_threshold": metrics["uncertainty"]["threshold"],
    }
    (run / "calibration.json").write_text(json.dumps(calibration, indent=2) + "\n")
    from gliograde.plots import plot_confusion, plot_reliability, plot_roc

    plot_roc(patients, run / "roc.png")
    plot_confusion(metrics["patient"]["confusion"], run / "confusion.png")
    plot_reliability(patients, run / "reliability.png")
    return metrics


def format_table(metrics: dict) -> str:
    """A plain-text summary of the patient- and slice-level metrics."""

    def fmt(v):
        return "  n/a" if v is None else f"{v:.3f}"

    p, ci = metrics["patient"], metrics["patient"].get("ci95", {})
    lines = [f"{'metric':<20}{'patient':>9}  {'95% CI':<15}{'no seg':>8}{'slice':>8}"]
    for k in ("auc", "balanced_accuracy", "sensitivity", "specificity", "f1"):
        interval = ci.get(k)
        ci_text = f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""
        lines.append(
            f"{k:<20}{fmt(p[k]):>9}  {ci_text:<15}{fmt(p['noseg'][k]):>8}"
            f"{fmt(metrics['slice'][k]):>8}"
        )
    (tn, fp), (fn, tp) = p["confusion"]
    lines.append(f"patients: {metrics['n_patients']}  (TN {tn}, FP {fp}, FN {fn}, TP {tp})")
    return "\n".join(lines)
