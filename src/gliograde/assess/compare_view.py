"""What ``gliograde compare`` shows: a table for the terminal and a figure (ROC curves overlaid,
and each pair's AUC difference with its paired interval)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gliograde.assess.compare import Comparison
from gliograde.assess.plots import pyplot, save


def fmt(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def comparison_table(c: Comparison) -> str:
    """The runs' figures, then each pair's paired difference, as text."""
    head = ["run", "backbone", "AUC [95% CI]", "bal.acc", "ECE", "Brier", "acc.conf",
            "flagged", "train s", "peak MiB", "device", "s/patient"]  # fmt: skip
    rows = [
        [r.name, r.backbone, f"{r.auc:.3f} [{r.auc_ci95[0]:.3f}, {r.auc_ci95[1]:.3f}]",
         fmt(r.balanced_accuracy), fmt(r.ece), fmt(r.brier), fmt(r.accuracy_confident),
         f"{r.share_flagged:.0%}", fmt(r.training_seconds, ".0f"), fmt(r.peak_memory_mib, ".0f"),
         r.device or "n/a", fmt(r.seconds_per_patient, ".3f")]
        for r in c.runs
    ]  # fmt: skip
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "  ".join(x.ljust(w) for x, w in zip(cells, widths)).rstrip()  # noqa: E731
    what = "SYNTHETIC cohort, " if c.synthetic else ""
    out = [
        f"{what}{c.n_patients} patients, out-of-fold, grading mode {c.mode.value}, "
        f"score P({c.classes[1]})",
        line(head),
        *map(line, rows),
        "",
        "paired differences (same patients): AUC(a) - AUC(b)",
    ]
    for p in c.pairs:
        d, t = p.bootstrap, p.delong
        z = "z n/a" if t.z is None else f"z {t.z:+.2f}"
        verdict = "told apart" if p.told_apart else "interval holds 0: not told apart"
        out.append(
            f"  {p.a} - {p.b}: {d.difference:+.3f} [{d.ci95[0]:+.3f}, {d.ci95[1]:+.3f}] "
            f"(paired bootstrap, {d.n_boot}); DeLong se {t.se:.3f}, {z}, "
            f"p {fmt(t.p_value, '.3g')}; {verdict}"
        )
    out += ["", LEGEND]
    return "\n".join(out)


LEGEND = (
    "AUC: patient-level, its 95 % bootstrap interval; bal.acc: balanced accuracy; ECE, Brier: of "
    "the probabilities compared;\nacc.conf: accuracy on the patients the flag left confident; "
    "flagged: share flagged uncertain; train s: training,\nall folds; peak MiB: the training "
    "process's peak resident memory (the GPU's allocation on cuda); s/patient: the\nmodels on "
    "a patient's stored slices. 'Not told apart': these patients cannot tell the two runs "
    "apart, which does\nnot make them equal."
)


def plot_comparison(c: Comparison, path: Path) -> Path:
    """ROC curves of the runs overlaid (left) and each pair's AUC difference with its paired
    95 % interval (right), as a PNG at ``path``."""
    from sklearn.metrics import roc_curve

    plt = pyplot()
    fig, (roc, diff) = plt.subplots(1, 2, figsize=(10, 4.5))
    for r, s in zip(c.runs, c.scores):
        fpr, tpr, _ = roc_curve(s.y, s.p)
        roc.plot(fpr, tpr, lw=1.8, label=f"{r.name} ({r.backbone}), AUC {r.auc:.3f}")
    roc.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    roc.set(xlabel=f"1 − specificity ({c.classes[0]} called {c.classes[1]})",
            ylabel=f"sensitivity ({c.classes[1]} recall)", xlim=(0, 1), ylim=(0, 1.01),
            title=f"Patient-level ROC, {c.n_patients} patients, out-of-fold")  # fmt: skip
    roc.legend(loc="lower right", fontsize=7)
    ys = np.arange(len(c.pairs))[::-1]
    for y, p in zip(ys, c.pairs):
        low, high = p.bootstrap.ci95
        diff.plot([low, high], [y, y], color="black", lw=2)
        diff.plot([p.bootstrap.difference], [y], "o", color="tab:blue")
    diff.axvline(0, color="grey", ls="--", lw=0.8)
    diff.set_yticks(
        ys, [f"{p.a} − {p.b}\nDeLong p {fmt(p.delong.p_value, '.2g')}" for p in c.pairs]
    )
    diff.set(xlabel="AUC difference, paired bootstrap 95 % interval", ylim=(-0.7, len(ys) - 0.3),
             title="Paired differences")  # fmt: skip
    diff.tick_params(axis="y", labelsize=7)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save(fig, path)
    return path
