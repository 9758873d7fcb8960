"""``gliograde explain``: Grad-CAM panels for each patient, and attention on the tumour; for
new patients also the map as a volume in the patient's own grid (:mod:`~gliograde.assess.volume`).

A cross-validated run's patients (``--store``) are explained by the fold model that validated
each, with the folds frozen into the run; new patients (subject or cohort folders, CSV
manifests) by the run's models together. Each patient is graded by the one patient rule first,
so the P(HGG) shown is the calibrated one ``predict`` gives. See :mod:`gliograde.assess.gradcam`
for the attention figures.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gliograde.assess.gradcam import (
    ATTENTION_COLUMNS,
    attention_metrics,
    cam_mass,
    choose_layer,
    choose_slices,
    slice_cams,
    summarise_attention,
)
from gliograde.assess.modelcard import write_model_card
from gliograde.assess.plots import draw_panel
from gliograde.assess.viewer import synthetic_subject, viewer_case
from gliograde.assess.volume import StoreSources, look_at
from gliograde.core.errors import GliogradeError
from gliograde.core.files import merge_json
from gliograde.core.lock import folder_lock, lock_if_writing_into
from gliograde.run import Run
from gliograde.run.calibration import Mode


@dataclass
class ExplainOptions:
    """What ``explain`` draws and measures, and where."""

    out: Path | None = None  # default RUN/explain
    per_patient: int = 2  # panels per patient
    method: str = "gradcam"  # or gradcampp
    layer: str = "auto"  # the ResNet stage: auto, layer1 to layer4
    device: str = "auto"
    force: bool = False  # new patients out of distribution explained too, as predict --force
    max_attention_slices: int = 8  # tumour slices per patient attention is measured on
    viewer: bool = True  # per patient gradcam.nii.gz, slices.csv and an interactive viewer page
    precision: str = "auto"  # the grading's: auto, fp32 or bf16 (as predict --precision)

    def folder(self, run: Run) -> Path:
        out = Path(self.out) if self.out else run.path / "explain"
        out.mkdir(parents=True, exist_ok=True)
        return out


def explain_store(run_path: Path, store_path: Path, options: ExplainOptions | None = None) -> dict:
    """Explain the out-of-fold patients of a cross-validated run on its own store, each by the
    fold model that validated it.

    Attention is measured on up to ``max_attention_slices`` tumour slices per patient (those
    with the most tumour); panels are drawn for the ``per_patient`` most informative ones.

    Returns:
        The attention summary (also written to ``metrics.json`` under ``attention``).

    Raises:
        FolderBusy: another process writes the run (explain holds its lock, as train does).
    """
    from gliograde.store.read import SliceStore

    o = options or ExplainOptions()
    run = Run.open(run_path)
    store = SliceStore(store_path)
    check_holds_run(store, run)
    with folder_lock(run.path, "gliograde explain"):
        return explain_held_out(run, store, o)


def explain_held_out(run: Run, store, o: ExplainOptions) -> dict:
    """:func:`explain_store`'s work, the run's lock held."""
    from gliograde.infer.grader import Grader

    out = o.folder(run)
    answers = reported(run)
    layer = choose_layer(run.train_config.grid or store.manifest.slice_size, o.layer)
    sources = StoreSources(run, o.viewer)
    rows, panels, viewers = [], {}, {}
    for k, grader, held_out in Grader.per_fold(run, o.device, o.precision):
        for subject in held_out:
            answer = answers.get(subject)
            p = answer["p"] if answer else None
            case, slices = held_out_case(store, subject, grader, p, o)
            cams = all_cams(grader.models, case, o, layer) if sources.has(subject) else None
            files, found = explain_case(grader.models, case, slices, o, layer, out, cams)
            rows += [r | {"fold": k} for r in found]
            panels[subject] = files
            if cams is not None:
                about = sources.about(case, answer, k)
                files = sources[subject]
                viewers[subject] = look_at(grader.models, (case, cams), files, about, out)
    write_attention(out / "attention.csv", rows)
    summary = summarise_attention(rows) | {"method": o.method, "layer": layer, "panels": panels}
    viewers = {s: page for s, page in viewers.items() if page}
    summary |= {"viewers": viewers, "folder": str(out.resolve())}
    summary |= {"viewer_note": sources.note} if sources.note else {}
    merge_json(run.path / "metrics.json", "attention", summary)
    write_model_card(run)
    return summary


def held_out_case(store, subject: str, grader, p_reported, o: ExplainOptions):
    """An out-of-fold patient of the store as a case (answered with its reported probability
    ``p_reported`` when evaluated), and its slices to show and to measure."""
    from gliograde.assess.crossval import stored_slices

    x, tumor_px, _ = stored_slices(store, subject)
    ev = grader.evidence(x, tumor_px, modes=(Mode.SEG,))[Mode.SEG]
    order = np.argsort(-tumor_px, kind="stable")[: o.max_attention_slices]
    measure = np.sort(order[ev.weights[order] > 0])
    seg = store.read_subject(subject, "seg")
    p = ev.p if p_reported is None else p_reported
    classes = grader.run.target.classes
    case = Case(subject, x.numpy(), seg, store_z(store, subject), ev.slice_p, p, classes)
    return case, Slices(ev.weights > 0, measure)


def check_holds_run(store, run: Run) -> None:
    """Refuse a store that does not hold every held-out patient of the run."""
    held_out = {s for k in run.folds() for s in run.fold_split(k)["val"]}
    missing = sorted(held_out - set(store.subjects))
    if missing:
        raise GliogradeError(
            f"{store.path}: does not hold the run's patient {missing[0]} ({len(missing)} "
            f"missing); give the store the run was trained on ({run.store_path})"
        )


def reported(run: Run) -> dict[str, dict]:
    """Each out-of-fold patient's reported (calibrated, cross-fitted) probabilities ``p``
    ``[K]`` and ``flag``, when evaluated."""
    from gliograde.assess.patients import given, probability_of_text, read_rows, row_mode

    path = run.path / "predictions_patients.csv"
    if not path.is_file():
        return {}
    out = {}
    for r in read_rows(path, run.target.classes):
        suffix = row_mode(r).suffix
        p = r.get(f"p{suffix}")
        if given(p):
            out[r["subject"]] = {"p": probability_of_text(p), "flag": bool(r.get(f"flag{suffix}"))}
    return out


def store_z(store, subject: str) -> np.ndarray:
    rows = store.rows([subject])
    return store.index.z[rows[np.argsort(store.index.row[rows], kind="stable")]]


@dataclass
class Case:
    """One patient to explain: slices ``[n, 4, H, W]``, segmentation (or None), each slice's
    z, the slices' and the patient's class probabilities (``[n, K]`` and ``[K]``), and the
    class the maps are drawn for: the answer."""

    subject: str
    images: np.ndarray
    seg: np.ndarray | None
    z: np.ndarray
    slice_p: np.ndarray
    p_patient: np.ndarray
    classes: tuple[str, ...]

    def __post_init__(self):
        from gliograde.model.probability import answer_index

        self.p_patient = np.asarray(self.p_patient, dtype=np.float64)
        self.classes = tuple(self.classes)
        self.predicted = int(answer_index(self.p_patient))

    @property
    def shown(self) -> str:
        """The class whose probability panel titles give: class 1, or the answer."""
        return self.classes[1] if len(self.classes) == 2 else self.classes[self.predicted]

    def p_shown(self, p: np.ndarray) -> float:
        """``p``'s probability of :attr:`shown` (a slice's or the patient's)."""
        from gliograde.model.probability import shown_probability

        return shown_probability(p, self.predicted)

    def answer(self) -> dict:
        """The answer, and the probability of :attr:`shown` (``of``)."""
        p = self.p_shown(self.p_patient)
        return {"answer": self.classes[self.predicted], "p": p, "of": self.shown}

    def strength(self) -> np.ndarray:
        """How much each slice speaks for the answer: its probability of the answer."""
        return np.asarray(self.slice_p)[:, self.predicted]


@dataclass
class Slices:
    """Which of a case's slices may be shown (``candidates``, a mask) and which are measured."""

    candidates: np.ndarray
    measure: np.ndarray


def explain_case(
    models, case: Case, slices: Slices, o: ExplainOptions, layer: str, out: Path, cams=None
):
    """Grad-CAM on the slices to measure and to show (taken from ``cams``, every slice's, when
    given); returns (panel files, attention rows).

    A 3D network answers once for the volume, so its slices cannot be ranked by their own
    answer: its map is computed on every slice (one pass on the volume) and the slices shown are
    those holding most of the map.
    """
    volume = bool(getattr(models, "grid", 0))
    if volume and cams is None:
        cams = all_cams(models, case, o, layer)
    strength = cam_mass(cams, len(case.z)) if volume else case.strength()
    show = choose_slices(strength, slices.candidates, o.per_patient)
    wanted = np.union1d(slices.measure, show).astype(int)
    if cams is None:
        maps = slice_cams(models, case.images, wanted, case.predicted, o.method, layer)
        cams = dict(zip(wanted.tolist(), maps))
    cam_of = {i: cams[i] for i in wanted.tolist()}
    rows = []
    if case.seg is not None:  # attention is measured on the tumour: none without a segmentation
        tumor_seg = case.seg
        for i in slices.measure.tolist():
            brain = np.any(case.images[i] != 0, axis=0)
            a = attention_metrics(cam_of[i], tumor_seg[i] > 0, brain)
            rows.append({"subject": case.subject, "z": int(case.z[i]), **a})
    files = []
    for i in show.tolist():
        name = f"{case.subject}_z{int(case.z[i]):03d}.png"
        title = panel_title(case, i, volume)
        seg = case.seg[i] if case.seg is not None else None
        draw_panel(case.images[i], cam_of[i], seg, out / name, title)
        files.append(name)
    return files, rows


def panel_title(case: Case, i: int, volume: bool) -> str:
    """A panel's title: the slice and its probability beside the patient's (a 3D network: the
    volume's alone, which every slice shares)."""
    where = f"{case.subject} z={int(case.z[i])}  P({case.shown})"
    if volume:
        return f"{where} volume {case.p_shown(case.p_patient):.2f}"
    return (
        f"{where} slice {case.p_shown(case.slice_p[i]):.2f}, "
        f"patient {case.p_shown(case.p_patient):.2f}"
    )


def explain_subjects(
    run_path: Path, inputs: list[Path], options: ExplainOptions | None = None
) -> dict:
    """Explain new patients with the run's models, each graded as ``predict`` grades it (one
    out of distribution is refused, as there, unless ``force``); every subject is answered, a
    bad one with its error (under ``errors`` in the summary). Writing into the run folder (the
    default ``RUN/explain``), it holds the run's lock; into another folder, it only reads."""
    from gliograde.infer.grader import Grader

    o = options or ExplainOptions()
    grader = Grader.open(run_path, device=o.device, precision=o.precision)
    run = grader.run
    out = run.path / "explain" if o.out is None else Path(o.out)
    with lock_if_writing_into(run.path, out, "gliograde explain"):
        return explain_new(grader, inputs, o)


def explain_new(grader, inputs: list[Path], o: ExplainOptions) -> dict:
    """:func:`explain_subjects`'s work (the run's lock held when it writes into the run)."""
    from gliograde.infer.grader import Graded
    from gliograde.io.layouts import discover_inputs

    out = o.folder(grader.run)
    subjects, errors = discover_inputs(inputs)
    rows, panels, answers, viewers, stage = [], {}, {}, {}, o.layer
    for subject in subjects:
        graded = grader.grade(subject, force=o.force)
        if not isinstance(graded, Graded):
            errors[graded.subject] = graded.reason
            continue
        done = explain_graded(grader, graded, o, out)
        stage = done.layer
        rows += [r | {"fold": -1} for r in done.attention]
        panels[graded.subject] = done.panels
        if done.viewer:
            viewers[graded.subject] = done.viewer
        answers[graded.subject] = done.case.answer()
    write_attention(out / "attention.csv", rows)
    summary = summarise_attention(rows) | {"panels": panels, "method": o.method, "layer": stage}
    folder = {"folder": str(out.resolve())}
    return summary | {"answers": answers, "errors": errors, "viewers": viewers} | folder


@dataclass
class Explained:
    """A new patient explained: its case, panels, attention rows, viewer (relative to the
    explain folder, None without one) and the ResNet stage its maps were taken on."""

    case: Case
    panels: list[str]
    attention: list[dict]
    viewer: str | None
    layer: str


def explain_graded(grader, graded, o: ExplainOptions, out: Path) -> Explained:
    """One patient ``grader`` graded (``predict``'s :class:`~gliograde.infer.grader.Graded`):
    Grad-CAM of each of its slices, its panels and attention, the map as a volume in its own
    grid and, with ``o.viewer``, its viewer page; all under ``out``."""
    run = grader.run
    case, slices = case_of(graded, run)
    stage = choose_layer(getattr(grader.models, "grid", 0) or case.images.shape[-1], o.layer)
    cams = all_cams(grader.models, case, o, stage) if o.viewer else None  # else panels' alone
    files, found = explain_case(grader.models, case, slices, o, stage, out, cams)
    e = graded.examined
    about = viewer_case(
        case, graded.result.flag, synthetic_subject(e.subject), run.manifest.synthetic,
        forced(e.reasons),
    )  # fmt: skip
    viewer = look_at(grader.models, (case, cams), e.subject, about, out) if o.viewer else None
    return Explained(case, files, found, viewer, stage)


def forced(reasons: list[str]) -> list[str]:
    """The viewer's note on a patient graded out of distribution (``--force``)."""
    if not reasons:
        return []
    return [f"Out of distribution, graded anyway (--force): {'; '.join(reasons)}."]


def all_cams(models, case: Case, o: ExplainOptions, layer: str) -> dict[int, np.ndarray]:
    """The Grad-CAM of every slice of ``case`` for its answer."""
    return dict(enumerate(slice_cams(models, case.images, None, case.predicted, o.method, layer)))


def case_of(graded, run: Run) -> tuple[Case, Slices]:
    """A graded patient as a case to explain, and the slices to show and to measure."""
    e, ev = graded.examined, graded.result.evidence
    seg = e.slices.seg if e.with_seg else None
    measure = top_tumor(e.slices, run.min_tumor) if e.with_seg else np.zeros(0, dtype=int)
    images = e.slices.images.astype(np.float32)
    case = Case(
        graded.subject, images, seg, e.slices.z, ev.slice_p, graded.result.p, run.target.classes
    )
    return case, Slices(ev.weights >= 0.5, measure)


def top_tumor(slices, min_tumor: int, k: int = 8) -> np.ndarray:
    """Up to ``k`` tumour slices (``min_tumor`` pixels or more), those with the most tumour."""
    from gliograde.infer.grader import tumor_pixels

    pixels = tumor_pixels(slices)
    order = np.argsort(-pixels, kind="stable")[:k]
    return np.sort(order[pixels[order] >= min_tumor])


def write_attention(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=ATTENTION_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: csv_value(v) for k, v in r.items()})


def csv_value(v):
    if isinstance(v, bool):
        return int(v)
    return f"{v:.6f}" if isinstance(v, float) else v
