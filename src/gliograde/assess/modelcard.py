"""``MODEL_CARD.md``: what a run is, what it was trained and measured on, and its limits.

Headings follow *Model Cards for Model Reporting* (Mitchell et al., FAT* 2019). Every figure is
read from the ``metrics.json`` beside the card, so the card cannot say more than was measured;
``train`` and ``evaluate`` (re)write it, ``explain`` adds the attention figures, exports write
it afresh and carry it. It names no patient and no local path: the source folder by its name.
"""

from __future__ import annotations

from pathlib import Path

from gliograde.assess.record import (
    CalibrationFigures,
    Flags,
    Metrics,
    ModeFigures,
    figure_label,
    figure_names,
    read_metrics,
)
from gliograde.core.files import write_text
from gliograde.run import Run
from gliograde.run.calibration import Mode

CARD_NAME = "MODEL_CARD.md"
PATHS = {Mode.SEG: "with a segmentation", Mode.NOSEG: "without a segmentation"}


def write_model_card(run: Run, metrics_dir: Path | None = None) -> Path:
    """Write ``MODEL_CARD.md`` into ``metrics_dir`` (default: the run) from its ``metrics.json``.

    ``metrics_dir`` is an ``evaluate --test`` output folder when the card reports an
    independent cohort; the run's own cross-validation figures are then quoted beside it.
    """
    out = Path(metrics_dir) if metrics_dir is not None else run.path
    metrics = metrics_if_any(out / "metrics.json")
    own = metrics_if_any(run.path / "metrics.json") if out != run.path else metrics
    sections = [
        header(run),
        model_details(run),
        intended_use(),
        factors(),
        training_data(run),
        preprocessing(run),
        protocol(run, own),
        figures("Cross-validation (out of fold)", own if not is_full(run) else None),
    ]
    if out != run.path:
        sections.append(figures("Independent cohort", metrics))
    sections += [limits(run), ethics(), versions(run)]
    path = out / CARD_NAME
    write_text(path, "\n\n".join(s.strip() for s in sections) + "\n")
    return path


def metrics_if_any(path: Path) -> Metrics | None:
    """The ``metrics.json`` at ``path``; None before any evaluation."""
    return read_metrics(path) if Path(path).is_file() else None


def is_full(run: Run) -> bool:
    return run.train_config.full


def source_name(run: Run) -> str:
    return Path(run.manifest.source).name


def header(run: Run) -> str:
    warning = (
        "\n\n> **Trained on SYNTHETIC data** (brain phantoms, not patients): the figures below "
        "say that the pipeline learns, nothing about accuracy on patients."
        if run.manifest.synthetic
        else ""
    )
    return f"# Model card: gliograde run `{run.path.name}`{warning}"


def model_details(run: Run) -> str:
    c, size = run.train_config, run.manifest.slice_size
    if is_full(run):
        kind = (
            "one model trained on every subject (`--full`), kept after its last epoch; its "
            "answers are not calibrated and never flagged (no patient was held out to fit either)"
        )
    else:
        kind = (
            f"the {len(run.folds())} fold models averaged, their answers calibrated and flagged "
            f"by the rule fitted out of fold; checkpoint rule `--select {c.select}`"
        )
    seg = "" if run.can_grade_without_seg else " A segmentation is required (tumour-slice store)."
    return f"""## Model details

- {network_line(c.spec, size)}; {heads(run.target.name, c.spec.is_3d)}.
  Method after Pitarch, Ribas and Vellido, Cancers 2023, 15:3369 (2D; the 3D networks are
  gliograde's extension).
- `predict` uses {kind}.
{answer_rule(run.target, seg, c.spec.is_3d)}
- Trained by gliograde {run.config.gliograde_version}: {c.epochs} epochs,
  batch {c.batch_size}, learning rate {c.lr}, seed {c.seed}{trained_in(c.precision)}."""


def heads(target: str, volume: bool) -> str:
    """The card's words on the network's heads (a 3D network's tumour head is not trained)."""
    if volume:
        return f"one head, the {target} (every volume holds tumour: no tumour head is trained)"
    return f"two heads: the {target} and whether the slice shows tumour"


def network_line(spec, size: int) -> str:
    """The network and what it reads, for the card (``spec``: the run's backbone)."""
    names = {"resnet18": "ResNet18 (MONAI's layout)", "densenet121": "DenseNet121 (MONAI)",
             "resnet18-2.5d": "ResNet18 (MONAI's layout), 2.5D", "resnet10-3d":
             "ResNet10 (MONAI, 3D)", "densenet121-3d": "DenseNet121 (MONAI, 3D)"}  # fmt: skip
    name = names.get(spec.name, spec.name)
    if spec.is_3d:
        return (f"{name} on the brain as one volume of {spec.grid}³ voxels, 4 channels (FLAIR, "
                f"T1ce, T1, T2), made from axial slices of {size}×{size}")  # fmt: skip
    if spec.is_2_5d:
        return (f"{name}: axial slices of {size}×{size} with {spec.context} neighbour(s) each "
                f"side, {spec.in_channels} input channels")  # fmt: skip
    return f"{name}, 4 input channels (FLAIR, T1ce, T1, T2), axial slices of {size}×{size}"


def trained_in(precision: str) -> str:
    """The training's precision as the card says it (runs before it was recorded: nothing)."""
    names = {"fp32": "float32", "bf16": "bfloat16 autocast", "fp16": "float16 autocast"}
    return f", {names[precision]}" if precision in names else ""


def answer_rule(target, seg: str, volume: bool = False) -> str:
    """How a patient's answer is made, in the card's words (``volume``: a 3D network's)."""
    classes = target.classes
    if volume:
        return f"""- A patient's class probabilities ({", ".join(classes)}) are the network's on the
  whole volume, calibrated; the segmentation is never read, with or without one.{seg} The
  answer is the most probable class."""
    if len(classes) > 2:
        return f"""- A patient's probability of each class ({", ".join(classes)}) is the mean of its
  slice probabilities over the tumour slices (with a segmentation) or weighted by the tumour
  head (without one).{seg} The answer is the most probable class after calibration (one
  temperature); discrimination is one-vs-rest AUC per class and their macro mean."""
    neg, pos = classes
    return f"""- A patient's P({pos}) is the mean of its slice probabilities over the tumour slices
  (with a segmentation) or weighted by the tumour head (without one).{seg}
  The positive class is {pos}; the answer is {pos} when the (calibrated) P({pos}) is at least
  0.5, {neg} otherwise."""


def intended_use() -> str:
    return """## Intended use

- For research: to study glioma grading from multi-modal MRI and to try a model on one's own
  BraTS-preprocessed scans. **Not for diagnosis or any clinical decision.**
- Out of scope: scans not preprocessed as BraTS is (co-registered, 1 mm, skull-stripped),
  post-treatment scans, children, tumours other than diffuse gliomas, and any use in which a
  person does not read every answer."""


def factors() -> str:
    return """## Factors

Figures may differ by scanner, field strength, acquisition protocol, institution, tumour size
and location, and patient age; none of these was measured separately here."""


def training_data(run: Run) -> str:
    m = run.manifest
    counts = m.counts()
    listed = ", ".join(f"{k}: {v}" for k, v in counts.items())
    kind = "SYNTHETIC cohort written by `gliograde synth`" if m.synthetic else "scans"
    labels = (
        "BraTS's LGG/HGG (WHO 2016 grades II–III against IV), not a WHO CNS5 grade or\n"
        "  integrated diagnosis"
        if run.target.is_grade
        else f"the column `{run.target.name}` of the label CSV ({', '.join(run.target.classes)})"
    )
    return f"""## Training data

- Source: `{source_name(run)}` ({kind}), layout {m.layout}.
- {sum(counts.values())} subjects ({listed}); {m.n_slices} slices in the store.
- Labels: {labels}."""


def preprocessing(run: Run) -> str:
    o = run.manifest.prepare_config()
    size = o.size or "native (no resizing)"
    return f"""## Preprocessing

- Input assumed in BraTS form: co-registered, 1 mm isotropic, skull-stripped, 240×240×155.
- Each sequence clipped at its brain's {list(o.clip_percentiles)} percentiles and z-scored on
  the brain; slices kept: `{o.slices}` (tumour slices need {o.min_tumor_pixels}
  pixels of tumour); slice size {size}. `predict` repeats exactly these options."""


def protocol(run: Run, metrics: Metrics | None) -> str:
    if is_full(run):
        return "## Evaluation protocol\n\n- None: every subject trained the model (`--full`)."
    lines = [
        "## Evaluation protocol",
        "",
        f"- {len(run.folds())}-fold cross-validation split by patient, stratified by "
        f"{run.target.name}.",
        f"- {metrics.protocol if metrics else 'no evaluation recorded'}.",
        "- The figures are those of each fold model on its own held-out patients; the ensemble "
        "`predict` uses is not measured by them (use `evaluate --test`).",
    ]
    return "\n".join(lines + inference_lines(metrics))


def inference_lines(metrics: Metrics | None) -> list[str]:
    if metrics is None or metrics.inference is None:
        return []
    inference = metrics.inference
    return [
        f"- Computed with {inference.precision} inference on {inference.device} (`predict` "
        "uses bfloat16 where the hardware computes it natively; `--precision fp32` turns it "
        "off)."
    ]


def value(v) -> str:
    return "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def figure_line(m: ModeFigures, name: str, classes: tuple[str, ...]) -> str:
    interval = m.interval(name)
    ci = f" (95 % CI {interval[0]:.3f}–{interval[1]:.3f})" if interval else ""
    return f"- {figure_label(name, classes)}: {value(m.figure(name))}{ci}"


def figures(title: str, metrics: Metrics | None) -> str:
    """Discrimination with intervals, calibration, uncertainty and attention, per path."""
    if metrics is None:
        return f"## Metrics: {title}\n\nNone: no patient was held out of training."
    lines = [f"## Metrics: {title}", "", f"Patients: {metrics.n_patients}."]
    if metrics.independent:
        lines += [f"{metrics.protocol.capitalize()}; skipped: {len(metrics.skipped or {})}."]
        lines += inference_lines(metrics)
    classes = metrics.target.classes
    for mode, label in PATHS.items():
        if mode in metrics.not_measured:
            lines += ["", f"**{label.capitalize()}**", "", f"- {metrics.not_measured[mode]}"]
        m = metrics.mode(mode)
        if m is None:
            continue
        lines += ["", f"**{label.capitalize()}**", ""]
        lines += [figure_line(m, name, classes) for name in figure_names(classes)]
        if len(classes) > 2:
            lines.append(per_class_line(m, classes))
        lines += [f"- note: {m.note}"] if m.note else []
        lines += calibration_lines(m.calibration) + uncertainty_lines(m.uncertainty)
    if metrics.recalibrated:
        lines += ["", "A calibration was also fitted on this cohort (`calibration.json` here)."]
    return "\n".join(lines + attention_lines(metrics.attention))


def per_class_line(m: ModeFigures, classes: tuple[str, ...]) -> str:
    """The one-vs-rest AUC of each class, in one line."""
    aucs = m.discrimination.auc_per_class
    pairs = ", ".join(f"{c} {value(a)}" for c, a in zip(classes, aucs))
    return f"- one-vs-rest AUC per class: {pairs} (`auc` above is their macro mean)"


def calibration_lines(c: CalibrationFigures) -> list[str]:
    folds = c.folds_calibrated
    if folds is not None:  # cross-validation: decided per fold on the other folds
        count = "no fold" if folds == 0 else f"{folds} fold{'s' if folds != 1 else ''}"
        where = f"applied in {count} (decided on the other folds)"
        saved = "applied" if c.applied else "not applied"
        where += f"; the pair `predict` uses is {saved}"
    else:
        where = "applied" if c.applied else "not applied"
    return [f"- calibration {where}: ECE {value(c.ece_after)}, Brier {value(c.brier_after)}"]


def uncertainty_lines(u: Flags) -> list[str]:
    return [
        f"- uncertainty flag: {u.n_flagged} patients flagged, coverage "
        f"{value(u.coverage)}; accuracy {value(u.accuracy_confident)} when "
        f"confident, {value(u.accuracy_flagged)} when flagged"
    ]


def attention_lines(a: dict | None) -> list[str]:
    if not a or not a.get("n_slices"):
        return []
    return [
        "",
        f"**Attention** ({a.get('method')}, {a.get('n_slices')} tumour slices): "
        f"{value(a.get('mean_share_tumor'))} of the map inside the tumour, against "
        f"{value(a.get('mean_chance'))} by chance.",
    ]


def limits(run: Run) -> str:
    counts = run.manifest.counts()
    total = sum(counts.values())
    mix = ", ".join(f"{counts.get(c, 0) / total if total else 0.0:.0%} {c}" for c in counts)
    return f"""## Known limits

- Scanner and protocol shift: trained on one cohort's scans; another hospital's may differ in
  contrast, resolution and noise. `predict` refuses patients unlike the training data
  (spacing, grid, brain volume, intensities) unless forced, and then flags them.
- BraTS preprocessing is assumed; raw scans must be brought to that form first.
- Class balance: {mix} in training; its probabilities reflect that mix, not your
  clinic's.
- Small cohorts give wide intervals: read the 95 % intervals, not the point figures.
- Exported slice models (ONNX, TorchScript, safetensors) give slice outputs only: the patient
  figures above hold for `predict`'s rule, not for a rule rebuilt elsewhere."""


def ethics() -> str:
    return """## Ethical considerations

A wrong answer can change treatment. The model's answers must never replace a pathologist's
diagnosis; the flag marks some, not all, of the uncertain answers."""


def versions(run: Run) -> str:
    v = run.config.versions
    return "## Versions\n\n" + "\n".join(f"- {k} {val}" for k, val in v.items())
