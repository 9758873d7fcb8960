"""Targets other than the grade, end to end, for two classes and for three: a SYNTHETIC cohort
with a second label, prepared with ``--target``, trained, evaluated, graded, explained,
reported and exported. Every output speaks of the target's classes, and every figure is the
one a hand computation from the saved out-of-fold probabilities gives.

* IDH (mutant, wildtype): shown as the T2-FLAIR mismatch;
* the WHO grade (2, 3, 4): grade 3 shown without a necrotic centre.
"""

import csv
import json
from dataclasses import dataclass

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from gliograde.assess.explain import ExplainOptions
from gliograde.assess.testset import TestCohort
from gliograde.core.errors import DataError, UsageError
from gliograde.io.synth import MISMATCH, synth_cohort
from gliograde.run.calibration import Mode
from helpers.data import SMALL_SHAPE, label_column, volume
from helpers.runs import trained_run

pytestmark = pytest.mark.slow  # trains a run per target


@dataclass(frozen=True)
class Label:
    """A synthetic label: ``synth``'s flag, its CSV column, and its classes in order."""

    flag: str
    column: str
    classes: tuple[str, ...]

    @property
    def positive(self) -> str:
        """The class whose probability is shown: class 1 of two."""
        return self.classes[1]


IDH = Label("idh", "IDH", ("mutant", "wildtype"))
WHO = Label("who", "WHO_grade", ("2", "3", "4"))


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory):
    """synth_small's subjects (same seed and shape), with each label."""
    out = {}
    for label in (IDH, WHO):
        folder = tmp_path_factory.mktemp(label.flag) / "cohort"
        synth_cohort(folder, 10, 0.4, 3, SMALL_SHAPE, quiet=True, **{label.flag: True})
        out[label.flag] = folder
    return out


@pytest.fixture(scope="module", params=[IDH, WHO], ids=["idh", "who"])
def case(request, cohorts, tmp_path_factory):
    """(label, cohort, store manifest, run folder, out-of-fold metrics) of a run trained on
    the label (:func:`helpers.runs.trained_run`)."""
    label = request.param
    cohort = cohorts[label.flag]
    manifest, run, metrics = trained_run(cohort, tmp_path_factory.mktemp("run"), label.column)
    return label, cohort, manifest, run, metrics


def truth(label: Label, cohort) -> dict[str, str]:
    return label_column(cohort, label.column)


def out_of_fold(label: Label, run):
    """Rows, y and the calibrated ``[n, K]`` probabilities of predictions_patients.csv (for
    two classes its one column, P(class 1), spread over both)."""
    with open(run / "predictions_patients.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    y = np.array([int(r["y"]) for r in rows])
    if len(label.classes) == 2:
        p1 = np.array([float(r[f"p_{label.positive}"]) for r in rows])
        return rows, y, np.stack([1 - p1, p1], axis=1)
    return rows, y, np.array([[float(r[f"p_{c}"]) for c in label.classes] for r in rows])


def read_rows(path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def write_rows(path, rows) -> None:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)


def test_synth_shows_idh_as_the_t2_flair_mismatch(cohorts, synth_small):
    cohort = cohorts["idh"]
    found = truth(IDH, cohort)
    assert sorted(set(found.values())) == list(IDH.classes)
    for subject, status in found.items():
        seg = volume(cohort, subject, "seg")
        t2, flair = (volume(cohort, subject, r) for r in ("t2", "flair"))
        assert np.array_equal(t2, volume(synth_small, subject, "t2"))  # T2 never changes
        plain = volume(synth_small, subject, "flair")
        if status == "wildtype":
            assert np.array_equal(flair, plain)  # byte for byte the cohort without --idh
        else:
            core = seg == 1
            assert core.any() and np.array_equal(flair[~core], plain[~core])
            ratio = flair[core].sum() / plain[core].sum()
            assert ratio == pytest.approx(MISMATCH, abs=0.01)


def test_synth_shows_grade_3_as_a_core_that_enhances(cohorts, synth_small):
    cohort = cohorts["who"]
    found = truth(WHO, cohort)
    assert sorted(set(found.values())) == list(WHO.classes)
    for subject, grade in found.items():
        t1ce, plain = volume(cohort, subject, "t1ce"), volume(synth_small, subject, "t1ce")
        for role in ("flair", "t1", "t2"):  # only T1ce ever changes
            assert np.array_equal(volume(cohort, subject, role), volume(synth_small, subject, role))
        if grade != "3":
            assert np.array_equal(t1ce, plain)  # byte for byte the cohort without --who
            continue
        seg = volume(cohort, subject, "seg")
        core, rim = seg == 1, seg == 4
        assert np.array_equal(t1ce[~core], plain[~core])
        assert t1ce[core].mean() == pytest.approx(t1ce[rim].mean(), rel=0.02)
        assert t1ce[core].mean() > 1.5 * plain[core].mean()  # no longer dark: no necrosis


def test_prepare_learns_the_column_with_its_classes(case):
    from gliograde.run import Run
    from gliograde.store.read import SliceStore

    label, cohort, manifest, run, _ = case
    assert manifest.target.to_dict() == {"name": label.column, "classes": list(label.classes)}
    assert manifest.labels == truth(label, cohort) and manifest.to_dict()["grades"] == {}
    store = SliceStore(Run.open(run).store_path)
    for subject, value in truth(label, cohort).items():
        rows = store.index.subject == subject
        assert set(store.index.label[rows].tolist()) == {label.classes.index(value)}


def test_evaluation_figures_are_those_a_hand_computation_gives(case):
    """AUC (for three classes: the mean of one-vs-rest AUCs), confusion and balanced accuracy
    of the answers, and the top-class ECE, recomputed from the saved probabilities."""
    label, cohort, _, run, metrics = case
    assert metrics["target"] == {"name": label.column, "classes": list(label.classes)}
    rows, y, p = out_of_fold(label, run)
    assert not any(name.startswith("p_hgg") for name in rows[0])  # named by the class
    assert y.tolist() == [label.classes.index(truth(label, cohort)[r["subject"]]) for r in rows]
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    m, k = metrics["patient"], len(label.classes)
    if k == 2:
        assert m["auc"] == pytest.approx(roc_auc_score(y, p[:, 1]))
    else:
        per_class = [roc_auc_score(y == c, p[:, c]) for c in range(k)]
        assert m["auc_per_class"] == pytest.approx(per_class, abs=1e-5)
        assert m["auc"] == pytest.approx(np.mean(per_class), abs=1e-5)
    hand = np.zeros((k, k), dtype=int)
    for yi, pi in zip(y, p):
        hand[yi, int(np.argmax(pi))] += 1
    assert m["confusion"] == hand.tolist()
    assert [r["pred"] for r in rows] == [label.classes[int(np.argmax(pi))] for pi in p]
    recall = [hand[c, c] / hand[c].sum() for c in range(k)]
    assert m["balanced_accuracy"] == pytest.approx(np.mean(recall))
    if k > 2:
        calibration = json.loads((run / "calibration.json").read_text())
        assert calibration["seg"]["bias"] == 0.0  # one temperature, no bias, for K classes
        confidence, correct = p.max(axis=1), (p.argmax(axis=1) == y)
        ece = top_class_ece(confidence, correct)
        assert m["calibration"]["ece_after"] == pytest.approx(ece, abs=1e-5)
    for name in ("roc.png", "confusion.png", "reliability.png", "MODEL_CARD.md"):
        assert (run / name).is_file()


def top_class_ece(confidence, correct, bins=10):
    total = 0.0
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    for b in range(bins):
        m = which == b
        if m.any():
            total += m.mean() * abs(correct[m].mean() - confidence[m].mean())
    return total


def test_the_slice_figures_are_those_of_the_slice_table(case):
    label, _, _, run, metrics = case
    with open(run / "predictions_slices.csv", newline="") as f:
        slices = list(csv.DictReader(f))
    assert "p_hgg" not in slices[0] and all(f"p_{c}" in slices[0] for c in label.classes[1:])
    tumour = [r for r in slices if int(r["tumor_pixels"]) >= 20]
    y = np.array([int(r["y"]) for r in tumour])
    if len(label.classes) == 2:
        p = np.array([float(r[f"p_{label.positive}"]) for r in tumour])
        assert metrics["slice"]["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-5)
    else:
        p = np.array([[float(r[f"p_{c}"]) for c in label.classes] for r in tumour])
        present = [c for c in range(len(label.classes)) if 0 < (y == c).sum() < len(y)]
        macro = np.mean([roc_auc_score(y == c, p[:, c]) for c in present])
        assert metrics["slice"]["auc"] == pytest.approx(macro, abs=1e-5)


def test_the_model_card_and_the_table_speak_of_the_target(case):
    from gliograde.assess.evaluate import evaluate_run, format_table

    label, _, _, run, metrics = case
    card = (run / "MODEL_CARD.md").read_text()
    assert "HGG" not in card.split("## Training data")[1]
    again = evaluate_run(run)  # from the saved evidence alone
    assert again.modes[Mode.SEG].figure("auc") == pytest.approx(metrics["patient"]["auc"], abs=1e-6)
    assert again.modes[Mode.SEG].discrimination.confusion == metrics["patient"]["confusion"]
    text = format_table(again)
    if len(label.classes) == 2:
        assert f"the column `{label.column}` of the label CSV (mutant, wildtype)" in card
        assert "P(wildtype)" in card and "positive class wildtype" in text
    else:
        assert "one-vs-rest AUC per class: 2 " in card and "most probable class" in card
        assert "one-vs-rest AUC: 2 " in text and "sensitivity" not in text


def test_predict_gives_each_patient_its_out_of_fold_answer(case):
    """predict --fold K on a held-out patient: the uncalibrated probabilities evaluation saved
    for it with that fold's model (one rule), every class's probability, the answer the most
    probable; the table and CSV are named by the target's classes."""
    from gliograde.predict import PredictOptions, predict_subjects
    from gliograde.predict.formats import format_predictions, predictions_csv

    label, cohort, _, run, _ = case
    rows, _, _ = out_of_fold(label, run)
    first = rows[0]
    options = PredictOptions(fold=int(first["fold"]), device="cpu")
    (prediction,) = predict_subjects([cohort / first["subject"]], run, options)
    answer = prediction.to_dict()
    assert "grade" not in answer and "p_hgg" not in answer
    assert answer["target"] == label.column and list(answer["probabilities"]) == list(label.classes)
    got = np.array([answer["probabilities"][c] for c in label.classes])
    assert got.sum() == pytest.approx(1.0, abs=1e-5)
    assert answer["prediction"] == label.classes[int(np.argmax(got))]
    unc = np.array([answer["probabilities_uncalibrated"][c] for c in label.classes])
    if len(label.classes) == 2:
        saved = float(first[f"p_{label.positive}_uncalibrated"])
        assert unc[1] == pytest.approx(saved, abs=1e-4)
    else:
        saved = np.array([float(first[f"p_{c}_uncalibrated"]) for c in label.classes])
        assert unc == pytest.approx(saved, abs=1e-4)
    columns = ",".join(f"p_{c}" for c in label.classes)
    assert predictions_csv([prediction]).startswith(f"subject,target,prediction,{columns},")
    header = format_predictions([prediction]).splitlines()[0]
    assert label.column in header
    assert ("P(wildtype)" if len(label.classes) == 2 else "P(answer)") in header


def test_explain_report_and_metadata_speak_of_the_target(case, tmp_path):
    from gliograde.assess.explain import explain_subjects
    from gliograde.assess.report import write_report
    from gliograde.bundle import metadata
    from gliograde.run import Run

    label, cohort, _, run, _ = case
    subject = sorted(p for p in cohort.iterdir() if p.is_dir())[0]
    summary = explain_subjects(run, [subject], ExplainOptions(tmp_path / "explain", per_patient=1))
    answer = summary["answers"][subject.name]
    shown = label.positive if len(label.classes) == 2 else answer["answer"]
    assert answer["answer"] in label.classes and answer["of"] == shown
    assert summary["panels"][subject.name]  # a Grad-CAM panel of the answered class
    page = write_report(run, tmp_path / "report.html").read_text()
    assert f"target: {label.column}" in page
    if len(label.classes) == 2:
        assert "sensitivity (wildtype recall)" in page
    else:
        assert "macro, one vs rest" in page and "P(2)" in page
    outputs = metadata(Run.open(run))["network_data_format"]["outputs"]["pred"]
    assert outputs["channel_def"] == {str(i): c for i, c in enumerate(label.classes)}


def test_the_bundle_and_onnx_match_predict(case, tmp_path):
    """The MONAI bundle: its classes as outputs, no subject's label in its config, and
    `monai.bundle run` giving predict's figures (p_CLASS columns) within 1e-4; ONNX the same
    logits as PyTorch."""
    from gliograde.export import export_run
    from gliograde.predict import PredictOptions, predict_subjects
    from gliograde.predict.formats import predictions_csv
    from helpers.bundle import read_rows as read_csv_rows
    from helpers.bundle import run_bundle

    label, cohort, _, run, _ = case
    k = len(label.classes)
    bundle = tmp_path / "bundle"
    assert export_run(run, "monai-bundle", bundle) == []
    shared = (bundle / "models" / "run" / "config.json").read_text()
    assert '"labels"' not in shared and "Synth_0001" not in shared
    counts = json.loads(shared)["store_manifest"]["class_counts"]
    values = list(truth(label, cohort).values())
    assert counts == {c: values.count(c) for c in label.classes}
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == k
    network = json.loads((bundle / "configs" / "inference.json").read_text())["network_def"]
    assert network["num_classes"] == k  # what MONAI's config API builds from it
    result = run_bundle(bundle, cohort, tmp_path / "out")
    assert result.returncode == 0, result.stderr[-2000:]
    got = read_csv_rows((tmp_path / "out" / "predictions.csv").read_text())
    predictions = predict_subjects([cohort], run, PredictOptions(device="cpu"))
    want = read_csv_rows(predictions_csv(predictions))
    assert sorted(got) == sorted(want) and len(want) == 10
    for subject, row in want.items():
        assert got[subject]["prediction"] == row["prediction"] in label.classes
        for c in label.classes:
            assert float(got[subject][f"p_{c}"]) == pytest.approx(float(row[f"p_{c}"]), abs=1e-4)
    done = export_run(run, "onnx", tmp_path / "onnx")  # one per fold, parity measured
    assert len(done) == 2 and all(e.max_abs_diff < 1e-4 for e in done)
    record = json.loads((tmp_path / "onnx" / "export.json").read_text())
    assert record["outputs"]["grade_logits"] == f"[N, {k}]: {', '.join(label.classes)}"


def test_subjects_without_a_value_are_left_out_with_a_note(cohorts, tmp_path):
    from gliograde.io.layouts import discover

    rows = read_rows(cohorts["idh"] / "name_mapping.csv")
    rows[1][rows[0].index("IDH")] = ""  # the first subject's IDH unknown
    labels = tmp_path / "labels.csv"
    write_rows(labels, rows)
    cohort = discover(cohorts["idh"], labels, target="idh")  # the column's name in any case
    assert rows[1][5] not in [s.subject_id for s in cohort.subjects]
    assert len(cohort.subjects) == 9 and cohort.target.classes == IDH.classes
    assert any("1 subjects have no idh value" in n for n in cohort.notes)


def test_the_classes_can_be_ordered_and_number_two_to_ten(cohorts, tmp_path):
    from gliograde.io.layouts import discover
    from gliograde.io.target import target_of_values
    from gliograde.preprocess.slices import PrepareConfig

    ordered = discover(cohorts["idh"], target="IDH", classes=["wildtype", "mutant"])
    assert ordered.target.positive == "mutant"
    rows = read_rows(cohorts["idh"] / "name_mapping.csv")
    column = rows[0].index("IDH")
    for i, value in ((1, "equivocal"), (2, "NA"), (3, "[Not Available]")):
        rows[i][column] = value
    labels = tmp_path / "three.csv"
    write_rows(labels, rows)
    cohort = discover(cohorts["idh"], labels, target="IDH")
    assert cohort.target.classes == ("equivocal", "mutant", "wildtype")  # a third class
    assert len(cohort.subjects) == 8  # NA and [Not Available] say "no value", not a class
    assert any("2 subjects have no IDH value" in n for n in cohort.notes)
    ages = [str(a) for a in range(40, 51)]  # a measurement, not a label
    with pytest.raises(DataError, match=r"11 classes .* targets of 2 to 10"):
        target_of_values("age", ages)
    with pytest.raises(UsageError, match="--classes goes with --target"):
        PrepareConfig(classes=["a", "b"])
    assert PrepareConfig(target="Grade").target is None  # the grade is the default target


def test_classes_order_the_store_and_must_all_be_there(cohorts, tmp_path):
    from gliograde.io.layouts import discover
    from gliograde.io.target import GRADE, Target
    from gliograde.preprocess.slices import PrepareConfig
    from gliograde.store.read import SliceStore
    from gliograde.store.write import prepare

    config = PrepareConfig("brain", 20, 32, 2, target="IDH", classes=["wildtype", "mutant"])
    prepare(cohorts["idh"], tmp_path / "store", config, quiet=True)
    store = SliceStore(tmp_path / "store")
    assert store.target == Target("IDH", ("wildtype", "mutant"))
    for subject, status in truth(IDH, cohorts["idh"]).items():
        rows = store.index.subject == subject
        assert set(store.index.label[rows].tolist()) == {["wildtype", "mutant"].index(status)}
    with pytest.raises(DataError, match="--classes mutant,wildtyp: the column IDH has"):
        discover(cohorts["idh"], target="IDH", classes=["mutant", "wildtyp"])
    assert Target.of_dict(None) == GRADE  # files written before targets


def test_a_test_cohort_is_graded_for_the_runs_target(case, tmp_path, capsys):
    """evaluate --test on a non-grade run: its classes, its figures, and the subjects without a
    value said, not silently dropped; a grade run's calibration is refused for it."""
    from gliograde.assess.evaluate import evaluate_test
    from gliograde.core.errors import GliogradeError
    from gliograde.predict import PredictOptions, predict_subjects

    label, cohort, _, run, _ = case
    rows = read_rows(cohort / "name_mapping.csv")
    rows[1][rows[0].index(label.column)] = ""
    write_rows(tmp_path / "labels.csv", rows)
    metrics = evaluate_test(run, TestCohort(cohort, tmp_path / "labels.csv"), tmp_path / "test")
    metrics = metrics.to_dict()
    assert metrics["target"] == {"name": label.column, "classes": list(label.classes)}
    assert metrics["n_patients"] == 9
    assert f"1 subjects have no {label.column} value" in capsys.readouterr().err
    grade_calibration = tmp_path / "grade.json"
    grade_calibration.write_text(json.dumps({"seg": {"temperature": 1.0, "bias": 0.0}}))
    with pytest.raises(GliogradeError, match="fitted for the target grade"):
        predict_subjects([cohort], run, PredictOptions(calibration=grade_calibration))
