"""``MODEL_CARD.md``: what a run is, what it was trained and measured on, and its limits.

Headings follow *Model Cards for Model Reporting* (Mitchell et al., FAT* 2019). Every figure is
read from the ``metrics.json`` beside the card, so the card cannot say more than was measured;
``train`` and ``evaluate`` (re)write it, ``explain`` adds the attention figures, exports copy it.
"""

from __future__ import annotations

from pathlib import Path

from gliograde.core.files import read_json, write_text
from gliograde.run import Run

CARD_NAME = "MODEL_CARD.md"
PATHS = (("patient", "with a segmentation"), ("patient_noseg", "without a segmentation"))


def write_model_card(run: Run, metrics_dir: Path | None = None) -> Path:
    """Write ``MODEL_CARD.md`` into ``metrics_dir`` (default: the run) from its ``metrics.json``.

    ``metrics_dir`` is an ``evaluate --test`` output folder when the card reports an
    independent cohort; the run's own cross-validation figures are then quoted beside it.
    """
    out = Path(metrics_dir) if metrics_dir is not None else run.path
    metrics = read_json(out / "metrics.json")
    own = read_json(run.path / "metrics.json") if out != run.path else metrics
    sections = [
        header(run),
        model_details(run),
        intended_use(),
        training_data(run),
        preprocessing(run),
        protocol(run, own),
        figures("Cross-validation (out of fold)", own),
    ]
    if out != run.path:
        sections.append(figures("Independent cohort", metrics))
    sections += [limits(run), versions(run)]
    path = out / CARD_NAME
    write_text(path, "\n\n".join(s.strip() for s in sections) + "\n")
    return path


def header(run: Run) -> str:
    synthetic = run.manifest.get("synthetic", False)
    warning = (
        "\n\n> **Trained on SYNTHETIC data** (brain phantoms, not patients): the figures below "
        "say that the pipeline learns, nothing about accuracy on patients."
        if synthetic
        else ""
    )
    return f"# Model card: gliograde run `{run.path.name}`{warning}"


def model_details(run: Run) -> str:
    c = run.config
    folds = run.folds()
    kind = (
        "one model trained on every subject (--full)"
        if c.get("full")
        else (f"an ensemble of {len(folds)} fold models (mean of their probabilities)")
    )
    size = run.manifest["slice_shape"][-1]
    return f"""## Model details

- ResNet18 (MONAI), 4 input channels (FLAIR, T1ce, T1, T2), axial slices of {size}×{size};
  two heads: the grade (LGG, HGG) and whether the slice shows tumour.
- `predict` uses {kind}; per patient, slice probabilities are averaged over the tumour slices
  (with a segmentation) or weighted by the tumour head (without one), then calibrated, with an
  uncertainty and a flag.
- Trained by gliograde {c.get("versions", {}).get("gliograde", "?")}: {c.get("epochs")} epochs,
  batch {c.get("batch_size")}, learning rate {c.get("lr")}, seed {c.get("seed")}, checkpoint
  rule `--select {c.get("select")}`. Method after Pitarch, Ribas and Vellido, Cancers 2023,
  15:3369."""


def intended_use() -> str:
    return """## Intended use

- For research: to study glioma grading from multi-modal MRI and to try a model on one's own
  BraTS-preprocessed scans. **Not for diagnosis or any clinical decision.**
- Out of scope: scans not preprocessed as BraTS is (co-registered, 1 mm, skull-stripped),
  paediatric or non-glioma tumours, and any use without a person reading the QC and the flag."""


def training_data(run: Run) -> str:
    m = run.manifest
    grades = list(m.get("grades", {}).values())
    counts = ", ".join(f"{g} {grades.count(g)}" for g in sorted(set(grades)))
    source = "SYNTHETIC cohort written by `gliograde synth`" if m.get("synthetic") else "real scans"
    return f"""## Training data

- Source: `{m.get("source")}` ({source}), layout {m.get("layout")}.
- {len(m.get("subjects", []))} subjects ({counts}); {m.get("n_slices")} slices in the store;
  skipped subjects: {len(m.get("skipped", {}))}."""


def preprocessing(run: Run) -> str:
    o = run.store_options
    size = o.get("size") or "native (no resizing)"
    return f"""## Preprocessing

- Input assumed in BraTS form: co-registered, 1 mm isotropic, skull-stripped, 240×240×155.
- Each sequence clipped at its brain's {o.get("clip_percentiles")} percentiles and z-scored on
  the brain; slices kept: `{o.get("slices")}` (tumour slices need {o.get("min_tumor_pixels")}
  pixels of tumour); slice size {size}. `predict` repeats exactly these options."""


def protocol(run: Run, metrics: dict) -> str:
    splits = (
        "every subject (--full: no held-out figure)"
        if run.config.get("full")
        else (f"{len(run.folds())}-fold cross-validation split by patient, stratified by grade")
    )
    inference = metrics.get("inference")
    ran = (
        f"\n- The figures come from {inference['precision']} inference on {inference['device']} "
        "(`predict` uses bfloat16 where the hardware computes it natively; "
        "`GLIOGRADE_PRECISION=fp32` turns it off)."
        if inference
        else ""
    )
    return f"""## Evaluation protocol

- {splits}.
- {metrics.get("protocol", "no evaluation recorded")}.{ran}"""


def ci(metrics: dict, key: str) -> str:
    interval = metrics.get("ci95", {}).get(key)
    return f" (95 % CI {interval[0]:.3f}–{interval[1]:.3f})" if interval else ""


def value(v) -> str:
    return "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def figures(title: str, metrics: dict) -> str:
    """Discrimination with intervals, calibration, uncertainty and attention, per path."""
    if not metrics:
        return f"## Metrics: {title}\n\nNone: no patient was held out of training."
    lines = [f"## Metrics: {title}", "", f"Patients: {metrics.get('n_patients', 'n/a')}."]
    for key, label in PATHS:
        m = metrics.get(key)
        if not m:
            continue
        if "auc" not in m:  # not measured, and why
            lines += ["", f"**{label.capitalize()}**: {m.get('note', 'not measured')}."]
            continue
        lines += ["", f"**{label.capitalize()}**", ""]
        for name in ("auc", "balanced_accuracy", "sensitivity", "specificity"):
            lines.append(f"- {name.replace('_', ' ')}: {value(m.get(name))}{ci(m, name)}")
        lines += calibration_lines(m.get("calibration")) + uncertainty_lines(m.get("uncertainty"))
    a = metrics.get("attention")
    if a:
        lines += [
            "",
            f"**Attention** ({a.get('method')}, {a.get('n_slices')} tumour slices): "
            f"{value(a.get('mean_share_tumor'))} of the map inside the tumour, against "
            f"{value(a.get('mean_chance'))} by chance.",
        ]
    return "\n".join(lines)


def calibration_lines(c: dict | None) -> list[str]:
    if not c:
        return []
    folds = c.get("folds_calibrated")
    if folds is not None:  # cross-validation: decided per fold on the other folds
        state = f"applied in {folds} folds" if folds else "applied in no fold"
    else:
        state = "applied" if c.get("applied") else "not applied"
    return [
        f"- calibration {state}: ECE {value(c.get('ece_after'))}, "
        f"Brier {value(c.get('brier_after'))}"
    ]


def uncertainty_lines(u: dict | None) -> list[str]:
    if not u:
        return []
    return [
        f"- uncertainty flag: {u.get('n_flagged')} patients flagged, coverage "
        f"{value(u.get('coverage'))}; accuracy {value(u.get('accuracy_confident'))} when "
        f"confident, {value(u.get('accuracy_flagged'))} when flagged"
    ]


def limits(run: Run) -> str:
    grades = list(run.manifest.get("grades", {}).values())
    share = grades.count("HGG") / len(grades) if grades else 0.0
    return f"""## Known limits

- Scanner and protocol shift: trained on one cohort's scans; another hospital's may differ in
  contrast, resolution and noise. `predict` refuses patients unlike the training data
  (spacing, grid, brain volume, intensities) unless forced, and then flags them.
- BraTS preprocessing is assumed; raw scans must be brought to that form first.
- Class balance: {share:.0%} HGG in training; its probabilities reflect that mix, not
  your clinic's.
- Small cohorts give wide intervals: read the 95 % intervals, not the point figures."""


def versions(run: Run) -> str:
    v = run.config.get("versions", {})
    return "## Versions\n\n" + "\n".join(f"- {k} {val}" for k, val in v.items())
