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


def plot_roc(
    y: np.ndarray, p: np.ndarray, fold: np.ndarray, path: Path, classes: tuple[str, ...]
) -> None:
    """Patient-level ROC of probabilities ``p`` ``[n, K]``. Two classes: of P(class 1) (HGG
    for the grade, the positive class), pooled, and one thin line per fold (when there are
    several). More: one pooled one-vs-rest curve per class."""
    if p.shape[-1] > 2:
        return plot_roc_one_vs_rest(y, p, path, classes)
    neg, pos = classes
    p = p[:, 1]
    from sklearn.metrics import roc_curve

    from gliograde.model.probability import roc_auc

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    folds = sorted(set(fold.tolist()))
    for k in folds if len(folds) > 1 else []:
        m = fold == k
        if len(set(y[m].tolist())) == 2:
            fpr, tpr, _ = roc_curve(y[m], p[m])
            ax.plot(fpr, tpr, lw=0.8, alpha=0.5, label=f"fold {k}")
    if len(set(y.tolist())) == 2:
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, lw=2, color="black", label=f"pooled, AUC {roc_auc(y == 1, p):.3f}")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    ax.set(
        xlabel=f"1 − specificity ({neg} called {pos})",
        ylabel=f"sensitivity ({pos} recall)",
        title="Patient-level ROC",
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=7)
    else:
        ax.set_title("Patient-level ROC: needs patients of both classes")
    save(fig, path)


def plot_roc_one_vs_rest(y: np.ndarray, p: np.ndarray, path: Path, classes: tuple) -> None:
    """One-vs-rest ROC of each class that has patients and others, pooled over folds."""
    from sklearn.metrics import roc_curve

    from gliograde.model.probability import roc_auc

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for c, name in enumerate(classes):
        is_c = (np.asarray(y) == c).astype(int)
        if 0 < is_c.sum() < len(is_c):
            fpr, tpr, _ = roc_curve(is_c, p[:, c])
            ax.plot(fpr, tpr, lw=1.5, label=f"{name} vs rest, AUC {roc_auc(is_c, p[:, c]):.3f}")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    ax.set(
        xlabel="1 − specificity (the rest called the class)",
        ylabel="sensitivity (the class's recall)",
        title="Patient-level ROC, one vs rest",
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=7)
    save(fig, path)


def plot_confusion(confusion: list[list[int]], path: Path, classes: tuple[str, ...]) -> None:
    """Patient-level confusion matrix, rows the true class, columns the predicted one."""
    plt = pyplot()
    cm = np.asarray(confusion)
    ticks = list(range(len(classes)))
    fig, ax = plt.subplots(figsize=(1.6 + len(classes), 1.2 + len(classes)))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        color = "white" if v > cm.max() / 2 else "black"
        ax.text(j, i, str(v), ha="center", va="center", color=color, fontsize=14)
    ax.set(
        xticks=ticks,
        yticks=ticks,
        xticklabels=list(classes),
        yticklabels=list(classes),
        xlabel="predicted",
        ylabel="true",
        title="Patients",
    )
    save(fig, path)


def plot_reliability(
    y: np.ndarray,
    p_before: np.ndarray,
    p_after: np.ndarray,
    path: Path,
    classes: tuple[str, ...],
    bins: int = 10,
) -> None:
    """Reliability diagram at patient level of probabilities ``[n, K]``, before calibration and
    after (the out-of-sample calibrated probability that is reported). Two classes: observed
    share of ``classes[1]`` (HGG) against its mean probability per bin. More: the accuracy of
    the top class against its probability."""
    from gliograde.model.probability import answer_index

    what, observed = f"P({classes[1]})", f"observed share of {classes[1]}"
    if p_before.shape[-1] > 2:
        y = answer_index(p_before) == np.asarray(y)  # a temperature keeps the top class
        p_before, p_after = np.max(p_before, axis=1), np.max(p_after, axis=1)
        what, observed = "P(top class)", "accuracy of the top class"
    else:
        p_before, p_after = p_before[:, 1], p_after[:, 1]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8, label="perfect calibration")
    series = [("before calibration", p_before, "tab:orange")]
    if np.allclose(p_after, p_before):
        series = [(f"{what}; calibration not applied", p_before, "tab:orange")]
    else:
        series.append(("after calibration (out of sample)", p_after, "tab:blue"))
    for label, p, color in series:
        xs, ys, ns = reliability_bins(np.asarray(p), np.asarray(y), bins)
        ax.plot(xs, ys, marker="o", color=color, label=label)
        for x, v, n in zip(xs, ys, ns):
            ax.annotate(
                str(n), (x, v), fontsize=6, color=color, xytext=(3, -8), textcoords="offset points"
            )
    ax.set(
        xlabel=f"mean predicted {what}",
        ylabel=observed,
        title="Reliability (patients; n per bin)",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(loc="upper left", fontsize=7)
    save(fig, path)


def reliability_bins(p: np.ndarray, y: np.ndarray, bins: int) -> tuple[list, list, list]:
    """Per non-empty bin of P(HGG): mean P(HGG), observed HGG share, count."""
    which = np.minimum((p * bins).astype(int), bins - 1)
    xs, ys, ns = [], [], []
    for b in range(bins):
        m = which == b
        if m.any():
            xs.append(float(np.mean(p[m])))
            ys.append(float(np.mean(y[m])))
            ns.append(int(m.sum()))
    return xs, ys, ns


def draw_panel(
    image: np.ndarray, cam: np.ndarray, seg: np.ndarray | None, path: Path, title: str
) -> None:
    """Four sequences, then the heat map over FLAIR; the tumour outline where a seg exists."""
    from gliograde import MODALITIES, SEQUENCE_NAMES

    plt = pyplot()
    fig, axes = plt.subplots(1, 5, figsize=(11, 2.6))
    # Slices are stored (x, y) in LPS: transposed, the patient's right is on the viewer's left and
    # anterior is at the top (the radiological convention).
    for c, name in enumerate(MODALITIES):
        axes[c].imshow(image[c].T, cmap="gray")
        axes[c].set_title(SEQUENCE_NAMES[name], fontsize=9)
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
