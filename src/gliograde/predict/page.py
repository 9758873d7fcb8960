"""``predict --report``: one self-contained HTML page of the subjects graded, each with its
answer, a link to its viewer (``predict --explain``) and the QC picture of a subject
preprocessed from raw scans.

It reads each :class:`~gliograde.predict.Prediction`'s attributes (the numbers rounded as
``predict --json`` gives them), and the page's style from :mod:`gliograde.assess.report`.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import TYPE_CHECKING

from gliograde.assess.report import CSS, embed_png, viewer_link
from gliograde.core.files import write_text
from gliograde.predict.formats import class_probabilities, rounded

if TYPE_CHECKING:
    from gliograde.predict import Prediction

QC_ADVICE = (
    "<p>Preprocessed from raw scans. <b>Look at the QC picture</b>: the four sequences "
    "on three planes with the brain mask's outline (green). A misaligned sequence or a "
    "mask that cuts the tumour makes the grade meaningless.</p>"
)


def prediction_card(prediction: Prediction, out: Path) -> str:
    """One subject of ``predict``: its answer, a link to its viewer (``predict --explain``),
    and its QC picture when it was preprocessed; ``out``: the page's path."""
    name, r, extra = html.escape(prediction.subject), prediction.result, prediction.extra
    if r is None:
        problem = html.escape(prediction.error or "")
        return f'<div class="card"><h3>{name}</h3><p class="bad">{problem}</p></div>'
    flag = '<span class="bad">uncertain</span>' if r.flag else "confident"
    lines = [
        f'<div class="card"><h3>{name}</h3>',
        f"<div><b>{html.escape(answer_text(prediction))}</b> · uncertainty "
        f"{rounded(r.uncertainty):.3f} ({flag}) · {r.evidence.n_slices} slices, "
        f"{'with' if r.evidence.used_seg else 'without'} segmentation</div>",
    ]
    if extra.get("viewer"):
        href = Path(os.path.relpath(extra["viewer"], Path(out).resolve().parent)).as_posix()
        lines.append(viewer_link(href))
    for key in ("note", "out_of_distribution", "warnings"):
        if extra.get(key):
            lines.append(f"<p class='bad'>{html.escape(str(extra[key]))}</p>")
    if extra.get("preprocessed"):
        lines.append(QC_ADVICE)
        lines.append(f"<div class='qc'>{embed_png(Path(extra['qc']))}</div>")
    return "".join(lines) + "</div>"


def answer_text(prediction: Prediction) -> str:
    """``HGG · P(HGG) 0.812 (uncalibrated 0.901)``, or the same for another target."""
    r, target = prediction.graded_result, prediction.target
    if target.is_grade:
        p, p_unc = rounded(r.p[1]), rounded(r.p_uncalibrated[1])
        return f"{r.answer} · P(HGG) {p:.3f} (uncalibrated {p_unc:.3f})"
    shown = class_probabilities(r.p, target.classes)
    probabilities = ", ".join(f"P({c}) {p:.3f}" for c, p in shown.items())
    return f"{target.name}: {r.answer} · {probabilities}"


def write_predictions_report(predictions: list[Prediction], run: Path, out: Path) -> Path:
    """``predict --report``: one self-contained page of the subjects graded, with the QC
    picture of each preprocessed one.

    Args:
        predictions: ``predict``'s answers, in the order the page lists them.
        run: the run that graded them (named on the page).
        out: the page's path (its folder is made).

    Returns:
        ``out``.
    """
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<title>gliograde predictions</title>",
        f"<style>{CSS}.qc img{{width:100%;max-width:720px}}</style></head><body>",
        "<h1>gliograde predictions</h1>",
        f"<p class='muted'>model: {html.escape(str(Path(run).resolve()))}. Research use, not "
        "for diagnosis.</p><div class='cards'>",
    ]
    parts += [prediction_card(p, out) for p in predictions]
    parts.append("</div></body></html>")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_text(Path(out), "\n".join(parts))
    return Path(out)
