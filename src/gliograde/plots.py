"""Figures written next to the metrics (PNG, matplotlib without a display)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
