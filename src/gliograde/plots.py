"""Figures written next to the metrics (PNG, matplotlib without a display)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> None:
    """Lay out, write as PNG, and free the figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)


def plot_roc(patients, path: Path) -> None:
    """Patient-level ROC: pooled out-of-fold, and one thin line per fold."""
    from sklearn.metrics import roc_curve

    from gliograde.evaluate import roc_auc

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for fold in sorted(set(patients.fold.tolist())):
        m = patients.fold == fold
        if len(set(patients.y[m].tolist())) == 2:
            fpr, tpr, _ = roc_curve(patients.y[m], patients.p_hgg[m])
            ax.plot(fpr, tpr, lw=0.8, alpha=0.5, label=f"fold {fold}")
    if len(set(patients.y.tolist())) == 2:
        fpr, tpr, _ = roc_curve(patients.y, patients.p_hgg)
        auc = roc_auc(patients.y, patients.p_hgg)
        ax.plot(fpr, tpr, lw=2, color="black", label=f"pooled, AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    ax.set(xlabel="1 − specificity (LGG called HGG)", ylabel="sensitivity (HGG recall)",
           title="Patient-level ROC", xlim=(0, 1), ylim=(0, 1.01))  # fmt: skip
    ax.legend(loc="lower right", fontsize=7)
    save(fig, path)


def plot_confusion(confusion: list[list[int]], path: Path) -> None:
    """Patient-level confusion matrix, rows true grade, columns predicted grade."""
    plt = pyplot()
    cm = np.asarray(confusion)
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center",
                color="white" if v > cm.max() / 2 else "black", fontsize=14)  # fmt: skip
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["LGG", "HGG"], yticklabels=["LGG", "HGG"],
           xlabel="predicted", ylabel="true", title="Patients")  # fmt: skip
    save(fig, path)


def plot_reliability(patients, path: Path, bins: int = 10) -> None:
    """Reliability diagram at patient level: observed HGG share against mean P(HGG) per bin."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8, label="perfect calibration")
    series = [("before", patients.p_hgg, "tab:orange")]
    cal = patients.p_hgg_calibrated
    if cal is not None and np.allclose(cal, patients.p_hgg):
        series = [("P(HGG); calibration not applied", patients.p_hgg, "tab:orange")]
    elif cal is not None:
        series.append(("after calibration", cal, "tab:blue"))
    for label, p, color in series:
        which = np.minimum((np.asarray(p) * bins).astype(int), bins - 1)
        xs, ys, ns = [], [], []
        for b in range(bins):
            m = which == b
            if m.any():
                xs.append(float(np.mean(p[m])))
                ys.append(float(np.mean(patients.y[m])))
                ns.append(int(m.sum()))
        ax.plot(xs, ys, marker="o", color=color, label=label)
        for x, y, n in zip(xs, ys, ns):
            ax.annotate(str(n), (x, y), fontsize=6, color=color, xytext=(3, -8),
                        textcoords="offset points")  # fmt: skip
    ax.set(xlabel="mean predicted P(HGG)", ylabel="observed share of HGG",
           title="Reliability (patients; n per bin)", xlim=(0, 1), ylim=(0, 1))  # fmt: skip
    ax.legend(loc="upper left", fontsize=7)
    save(fig, path)
