"""``gliograde report``: one self-contained HTML page per run (images embedded, opens offline)."""

from __future__ import annotations

import base64
import csv
import html
import json
from pathlib import Path

from gliograde.errors import GliogradeError

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


def metrics_table(metrics: dict) -> str:
    p, ci = metrics["patient"], metrics["patient"].get("ci95", {})
    rows = []
    for key, label in (("auc", "ROC AUC"), ("balanced_accuracy", "balanced accuracy"),
                       ("sensitivity", "sensitivity (HGG recall)"),
                       ("specificity", "specificity (LGG recall)"), ("f1", "F1")):  # fmt: skip
        interval = ci.get(key)
        ci_text = f"{interval[0]:.3f} – {interval[1]:.3f}" if interval else ""
        rows.append(
            f"<tr><td>{label}</td><td>{fmt(p[key])}</td><td>{ci_text}</td>"
            f"<td>{fmt(p['noseg'][key])}</td><td>{fmt(metrics['slice'][key])}</td></tr>"
        )
    head = ("<tr><th>metric</th><th>patient</th><th>95% CI (bootstrap)</th>"
            "<th>patient, no seg</th><th>slice</th></tr>")  # fmt: skip
    return f"<table>{head}{''.join(rows)}</table>"


def calibration_table(cal: dict) -> str:
    rows = []
    for level in ("slice", "patient", "patient_noseg"):
        c = cal.get(level)
        if c:
            rows.append(
                f"<tr><td>{level.replace('_', ', ')}</td>"
                f"<td>{'yes' if c.get('applied', True) else 'no'}</td>"
                f"<td>{fmt(c.get('fitted_temperature', c['temperature']))}</td>"
                f"<td>{fmt(c.get('fitted_bias', c.get('bias', 0.0)))}</td>"
                f"<td>{fmt(c['ece_before'])}</td><td>{fmt(c['ece_after'])}</td>"
                f"<td>{fmt(c['ece_after_crossfit'])}</td>"
                f"<td>{fmt(c['brier_before'])}</td><td>{fmt(c['brier_after'])}</td></tr>"
            )
    head = (
        "<tr><th>level</th><th>applied</th><th>temperature (fitted)</th><th>bias (fitted)</th>"
        "<th>ECE before</th><th>ECE after</th>"
        "<th>ECE after, cross-fitted</th><th>Brier before</th><th>Brier after</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def read_patients(run: Path) -> list[dict]:
    with open(run / "predictions_patients.csv", newline="") as f:
        return list(csv.DictReader(f))


def patient_card(row: dict, panels: list[str], explain_dir: Path) -> str:
    true = "HGG" if row["y"] == "1" else "LGG"
    right = row["pred"] == true
    verdict = '<span class="ok">correct</span>' if right else '<span class="bad">wrong</span>'
    flag = '<span class="bad">uncertain</span>' if row.get("flag") else "confident"
    images = "".join(embed_png(explain_dir / name) for name in panels[:2])
    return (
        f'<div class="card"><h3>{html.escape(row["subject"])}</h3>'
        f"<div>predicted <b>{row['pred']}</b> (true {true}, {verdict}) · "
        f"P(HGG) {float(row['p_hgg']):.3f}, calibrated {float(row['p_hgg_calibrated']):.3f} · "
        f"uncertainty {float(row['uncertainty']):.3f} ({flag}) · fold {row['fold']} · "
        f"{row['n_slices']} tumour slices</div>{images}</div>"
    )


def write_report(run: Path, out: Path | None = None) -> Path:
    """Write ``RUN/report.html``; every image is embedded, nothing is fetched when opened."""
    run = Path(run)
    metrics_path = run / "metrics.json"
    if not metrics_path.is_file():
        raise GliogradeError(f"{run}: no metrics.json; train (and evaluate) the run first")
    metrics = json.loads(metrics_path.read_text())
    config = json.loads((run / "config.json").read_text())
    manifest = config["store_manifest"]
    synthetic = manifest.get("synthetic", False)
    grades = list(manifest["grades"].values())
    attention = metrics.get("attention", {})
    panels = attention.get("panels", {})
    unc = metrics.get("uncertainty", {})
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>gliograde report: {html.escape(run.name)}</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>gliograde report</h1>",
        f"<p class='muted'>run {html.escape(str(run.resolve()))} · gliograde "
        f"{html.escape(config['versions'].get('gliograde', '?'))}</p>",
    ]
    if synthetic:
        parts.append(
            "<div class='warn'><b>SYNTHETIC DATA.</b> These patients are brain phantoms made by "
            "<code>gliograde synth</code>, not people. The figures show that the pipeline "
            "learns; they say nothing of accuracy on real patients.</div>"
        )
    parts += [
        "<h2>Cohort and splits</h2>",
        f"<p>{len(grades)} subjects ({grades.count('HGG')} HGG, {grades.count('LGG')} LGG) from "
        f"<code>{html.escape(manifest['source'])}</code> ({manifest['layout']} layout), "
        f"{manifest['n_slices']} slices of {'×'.join(map(str, manifest['slice_shape']))} "
        f"({manifest['options']['slices']} slices), {manifest['folds']} patient-level folds "
        f"(stratified by grade; no patient in both training and validation). "
        f"{len(manifest['skipped'])} subjects skipped.</p>",
        "<h2>Results (out-of-fold, pooled)</h2>",
        metrics_table(metrics),
        f"<p>{metrics['n_patients']} patients. Patient P(HGG) = mean of its tumour slices' "
        "probabilities; 'no seg' weights every brain slice by the model's tumour probability "
        "(how <code>predict</code> works without a segmentation).</p>",
        "<div class='figs'>",
        embed_png(run / "roc.png"),
        embed_png(run / "confusion.png"),
        embed_png(run / "reliability.png"),
        "</div>",
    ]
    if "calibration" in metrics:
        method = html.escape(metrics["calibration"].get("method", ""))
        parts += ["<h2>Calibration</h2>", calibration_table(metrics["calibration"]),
                  f"<p class='muted'>{method}</p>"]  # fmt: skip
    if unc:
        parts += [
            "<h2>Uncertainty</h2>",
            f"<p>{unc['n_flagged']} of {unc['n_flagged'] + unc['n_confident']} patients flagged "
            f"uncertain (threshold {unc['threshold']:.3f}). Accuracy on confident patients "
            f"{fmt(unc['accuracy_confident'])}, on flagged patients {fmt(unc['accuracy_flagged'])}"
            f", on all {fmt(unc['accuracy_all'])}.</p>",
            f"<p class='muted'>{html.escape(unc.get('note', ''))}</p>",
        ]
    if attention.get("n_slices"):
        parts += [
            "<h2>Does the model look at the tumour?</h2>",
            f"<p>Grad-CAM on {attention['n_slices']} tumour slices of "
            f"{attention['n_patients']} patients: on average {attention['mean_share_tumor']:.1%}"
            f" of the map's mass lies inside the tumour, which covers "
            f"{attention['mean_chance']:.1%} of the brain (chance level); "
            f"{attention['mean_share_brain']:.1%} lies inside the brain. The map's peak falls "
            f"in the tumour on {attention['hit_rate']:.1%} of slices, and "
            f"{attention['share_patients_above_chance']:.1%} of patients are above chance. "
            f"Grad-CAM taken on {attention.get('layer', 'layer4')}.</p>",
        ]
    parts.append("<h2>Patients</h2><div class='cards'>")
    for row in read_patients(run):
        parts.append(patient_card(row, panels.get(row["subject"], []), run / "explain"))
    parts.append("</div></body></html>")
    out = Path(out) if out else run / "report.html"
    out.write_text("\n".join(parts))
    return out
