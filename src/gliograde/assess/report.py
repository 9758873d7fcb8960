"""``gliograde report``: one self-contained HTML page per run (images embedded, opens offline)."""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

import numpy as np

from gliograde.assess.patients import probability_of_text, read_rows, row_mode
from gliograde.assess.record import Metrics, figure_label, figure_names, read_metrics
from gliograde.core.errors import GliogradeError
from gliograde.core.files import write_text
from gliograde.run import Run
from gliograde.run.calibration import Mode

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:1100px;color:#222;line-height:1.4}
h1{margin-bottom:0}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
.warn{background:#fff4d6;border:1px solid #e0b34a;padding:10px 14px;border-radius:6px;margin:14px 0}
table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ddd;padding:4px 10px;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.figs img{width:32%;min-width:260px;margin-right:1%}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #ccc;border-radius:8px;padding:10px;width:100%;box-sizing:border-box}
.card h3{margin:0 0 6px 0;font-size:16px}.card img{width:49.5%}
.bad{color:#b00020;font-weight:600}.ok{color:#1b5e20}.muted{color:#666;font-size:13px}
"""


def embed_png(path: Path) -> str:
    """An ``<img>`` with the PNG inlined as base64 (empty string when the file is missing)."""
    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def fmt(v, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return html.escape(str(v))


def metrics_table(metrics: Metrics) -> str:
    """Patient-level figures with intervals: with a segmentation and without."""
    seg, noseg = metrics.mode(Mode.SEG), metrics.mode(Mode.NOSEG)
    classes = metrics.target.classes
    rows = []
    for key in figure_names(classes):
        interval = seg.interval(key) if seg else None
        ci_text = f"{interval[0]:.3f} – {interval[1]:.3f}" if interval else ""
        values = [None if f is None else f.figure(key) for f in (seg, noseg, metrics.slice)]
        rows.append(
            f"<tr><td>{html.escape(figure_label(key, classes))}</td><td>{fmt(values[0])}</td>"
            f"<td>{ci_text}</td><td>{fmt(values[1])}</td><td>{fmt(values[2])}</td></tr>"
        )
    head = (
        "<tr><th>metric</th><th>patient, with seg</th><th>95% CI (bootstrap)</th>"
        "<th>patient, no seg</th><th>slice</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


PATH_LABELS = {Mode.SEG: "patients, with seg", Mode.NOSEG: "patients, no seg"}


def calibration_table(metrics: Metrics) -> str:
    """Per path: applied or not, the fitted pair, ECE and Brier before and after."""
    rows = []
    for mode, figures in metrics.modes.items():
        c = figures.calibration
        rows.append(
            f"<tr><td>{PATH_LABELS[mode]}</td><td>{'yes' if c.applied else 'no'}</td>"
            f"<td>{fmt(c.fitted_temperature)}</td><td>{fmt(c.fitted_bias)}</td>"
            f"<td>{fmt(c.ece_before)}</td><td>{fmt(c.ece_after)}</td>"
            f"<td>{fmt(c.brier_before)}</td><td>{fmt(c.brier_after)}</td></tr>"
        )
    head = (
        "<tr><th>path</th><th>applied</th><th>temperature (fitted)</th><th>bias (fitted)</th>"
        "<th>ECE before</th><th>ECE after</th><th>Brier before</th><th>Brier after</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def read_patients(folder: Path, classes: tuple[str, ...]) -> list[dict]:
    """The rows of the run's ``predictions_patients.csv``, probabilities as texts per class."""
    return read_rows(folder / "predictions_patients.csv", tuple(classes))


def patient_card(
    row: dict, panels: list[str], explain_dir: Path, classes: tuple[str, ...], viewer: str = ""
) -> str:
    """One patient: prediction, probabilities, uncertainty and flag, two Grad-CAM panels, and a
    link to the patient's viewer (``viewer``, relative to the page) when there is one."""
    true = classes[int(row["y"])]
    mode = row_mode(row)
    pred = row.get(f"pred{mode.suffix}", "")
    verdict = (
        '<span class="ok">correct</span>' if pred == true else '<span class="bad">wrong</span>'
    )
    flag = '<span class="bad">uncertain</span>' if row.get(f"flag{mode.suffix}") else "confident"
    p = probability_of_text(row[f"p{mode.suffix}"])
    p_unc = probability_of_text(row[f"p{mode.suffix}_uncalibrated"])
    unc = row.get(f"uncertainty{mode.suffix}")
    if unc is None:
        raise ValueError(f"{row['subject']}: no uncertainty in the patient's row")
    images = "".join(embed_png(explain_dir / name) for name in panels[:2])
    link = viewer_link(viewer)
    return (
        f'<div class="card"><h3>{html.escape(row["subject"])}</h3>{link}'
        f"<div>predicted <b>{html.escape(pred)}</b> (true {html.escape(true)}, {verdict}) · "
        f"{probabilities_html(p, p_unc, classes)} · "
        f"uncertainty {float(unc):.3f} ({flag}) · fold {row['fold']}</div>{images}</div>"
    )


def viewer_link(href: str) -> str:
    """A card's link to the patient's viewer (nothing without one)."""
    if not href:
        return ""
    return (
        f"<p class='viewer'><a href='{html.escape(href)}'>open the 3D viewer</a> (the four "
        "sequences, the Grad-CAM volume and the tumour's outline, in three planes)</p>"
    )


def viewer_href(explain_dir: Path, relative: str | None, page: Path) -> str:
    """The link from ``page`` to a viewer listed as ``relative`` to ``explain_dir`` (empty when
    there is none, or its file is gone)."""
    if not relative or not (explain_dir / relative).is_file():
        return ""
    return Path(os.path.relpath(explain_dir / relative, Path(page).parent)).as_posix()


def probabilities_html(p: np.ndarray, p_unc: np.ndarray, classes: tuple) -> str:
    """``P(class 1) 0.912 (uncalibrated 0.870)`` for two classes, each class's for more."""
    if len(classes) == 2:
        return f"P({html.escape(classes[1])}) {p[1]:.3f} (uncalibrated {p_unc[1]:.3f})"
    shown = ", ".join(f"P({html.escape(c)}) {v:.3f}" for c, v in zip(classes, p))
    return f"{shown} (uncalibrated {', '.join(f'{v:.3f}' for v in p_unc)})"


def cohort_section(run, metrics: Metrics) -> list[str]:
    """Where the patients come from and how they were split (or that they are a test set)."""
    if run is None:
        return [
            "<h2>Cohort</h2>",
            f"<p>{metrics.n_patients} patients of an independent "
            f"cohort ({html.escape(metrics.protocol)}); "
            f"{len(metrics.skipped or {})} could not be graded.</p>",
        ]
    m = run.manifest
    labels = list(m.labels.values())
    name = m.target.name
    counts = ", ".join(f"{labels.count(c)} {html.escape(c)}" for c in m.target.classes)
    return [
        "<h2>Cohort and splits</h2>",
        f"<p>{len(labels)} subjects ({counts}; target: {html.escape(name)}) from "
        f"<code>{html.escape(m.source)}</code> ({m.layout} layout), "
        f"{m.n_slices} slices of {'×'.join(map(str, m.slice_shape))} "
        f"({m.prepare_config().slices} slices), {m.folds} patient-level folds "
        f"(stratified by {html.escape(name)}; no patient in both training and validation). "
        f"{len(m.skipped)} subjects skipped.</p>",
        f"<p class='muted'>Protocol: {html.escape(metrics.protocol)}.</p>",
    ]


def uncertainty_section(metrics: Metrics) -> list[str]:
    if metrics.main is None:
        return []
    unc = metrics.main.uncertainty
    return [
        "<h2>Uncertainty</h2>",
        f"<p>{unc.n_flagged} of {unc.n_flagged + unc.n_confident} patients flagged "
        f"uncertain. Accuracy on confident patients {fmt(unc.accuracy_confident)}, on flagged "
        f"patients {fmt(unc.accuracy_flagged)}, on all {fmt(unc.accuracy_all)}. Each "
        "patient flagged by a threshold not chosen on it.</p>",
    ]


def attention_section(attention: dict) -> list[str]:
    if not attention.get("n_slices"):
        return []
    a = attention
    return [
        "<h2>Does the model look at the tumour?</h2>",
        f"<p>Grad-CAM on {a['n_slices']} tumour slices of {a['n_patients']} patients: on "
        f"average {a['mean_share_tumor']:.1%} of the map's mass lies inside the tumour, which "
        f"covers {a['mean_chance']:.1%} of the brain (chance level); {a['mean_share_brain']:.1%}"
        f" lies inside the brain. The map's peak falls in the tumour on {a['hit_rate']:.1%} of "
        f"slices, and {a['share_patients_above_chance']:.1%} of patients are above chance. "
        f"Grad-CAM taken on {a.get('layer', 'layer4')}.</p>",
    ]


def write_report(folder: Path, out: Path | None = None) -> Path:
    """Write ``FOLDER/report.html`` for a run (or an ``evaluate --test`` folder); every image is
    embedded, nothing is fetched when it is opened."""
    folder = Path(folder)
    metrics = read_metrics(folder / "metrics.json")
    config_path = folder / "config.json"
    if not config_path.is_file() and not metrics.independent:
        raise GliogradeError(
            f"{folder}: no config.json; give the run folder `gliograde train` wrote"
        )
    run = Run.open(folder) if config_path.is_file() else None
    synthetic = run.manifest.synthetic if run else bool(metrics.synthetic)
    attention = metrics.attention or {}
    classes = metrics.target.classes
    parts = page_head(folder, run, synthetic) + cohort_section(run, metrics)
    parts += ["<h2>Results, by patient</h2>", metrics_table(metrics), "<div class='figs'>"]
    parts += [embed_png(folder / f"{n}.png") for n in ("roc", "confusion", "reliability")]
    parts += ["</div>", "<h2>Calibration</h2>", calibration_table(metrics)]
    parts += uncertainty_section(metrics) + attention_section(attention)
    parts.append("<h2>Patients</h2><div class='cards'>")
    panels, viewers = attention.get("panels", {}), attention.get("viewers", {})
    out = Path(out) if out else folder / "report.html"
    explain_dir = Path(attention.get("folder") or folder / "explain")
    for row in read_patients(folder, classes):
        subject = row["subject"]
        link = viewer_href(explain_dir, viewers.get(subject), out)
        parts.append(patient_card(row, panels.get(subject, []), explain_dir, classes, link))
    parts.append("</div></body></html>")
    write_text(out, "\n".join(parts))
    return out


def page_head(folder: Path, run, synthetic: bool) -> list[str]:
    version = run.config.gliograde_version if run else ""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>gliograde report: {html.escape(folder.name)}</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>gliograde report</h1>",
        f"<p class='muted'>{html.escape(str(folder.resolve()))} · gliograde "
        f"{html.escape(version)}</p>",
    ]
    if (folder / "MODEL_CARD.md").is_file():
        parts.append(
            "<p>Model card (data, protocol, metrics with intervals, intended use, limits): "
            "<a href='MODEL_CARD.md'>MODEL_CARD.md</a></p>"
        )
    if synthetic:
        parts.append(
            "<div class='warn'><b>SYNTHETIC DATA.</b> These patients are brain phantoms made by "
            "<code>gliograde synth</code>, not people. The figures show that the pipeline "
            "learns; they say nothing of accuracy on real patients.</div>"
        )
    return parts
