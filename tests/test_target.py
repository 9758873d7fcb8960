"""A target other than the grade, end to end: a SYNTHETIC cohort with a second label (IDH,
shown as the T2-FLAIR mismatch), prepared with ``--target IDH``, trained, evaluated, graded,
explained, reported and exported; every output speaks of IDH's classes, and the figures are
those a hand computation gives."""

import csv
import json

import numpy as np
import pytest

from gliograde.assess.explain import ExplainOptions
from gliograde.assess.testset import TestCohort
from gliograde.core.errors import DataError, UsageError
from gliograde.io.synth import MISMATCH, synth_cohort
from helpers.data import SMALL_SHAPE, label_column, volume
from helpers.runs import trained_run

CLASSES = ["mutant", "wildtype"]


@pytest.fixture(scope="module")
def idh_cohort(tmp_path_factory):
    """synth_small's subjects (same seed and shape), with IDH statuses."""
    out = tmp_path_factory.mktemp("idh") / "cohort"
    synth_cohort(
        out, subjects=10, lgg_fraction=0.4, seed=3, shape=SMALL_SHAPE, quiet=True, idh=True
    )
    return out


@pytest.fixture(scope="module")
def idh_run(idh_cohort, tmp_path_factory):
    """A store of the IDH target and a run trained on it (:func:`runs.target_run`)."""
    return trained_run(idh_cohort, tmp_path_factory.mktemp("idh-run"), "IDH")


def statuses(cohort) -> dict[str, str]:
    return label_column(cohort, "IDH")


def read_rows(path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def write_rows(path, rows) -> None:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)


def test_synth_shows_idh_as_the_t2_flair_mismatch(idh_cohort, synth_small):
    found = statuses(idh_cohort)
    assert sorted(set(found.values())) == CLASSES
    for subject, status in found.items():
        seg = volume(idh_cohort, subject, "seg")
        t2, flair = (volume(idh_cohort, subject, r) for r in ("t2", "flair"))
        assert np.array_equal(t2, volume(synth_small, subject, "t2"))  # T2 never changes
        plain = volume(synth_small, subject, "flair")
        if status == "wildtype":
            assert np.array_equal(flair, plain)  # byte for byte the cohort without --idh
        else:
            core = seg == 1
            assert core.any() and np.array_equal(flair[~core], plain[~core])
            ratio = flair[core].sum() / plain[core].sum()
            assert ratio == pytest.approx(MISMATCH, abs=0.01)


def test_prepare_learns_the_column_with_its_two_classes(idh_run, idh_cohort):
    from gliograde.store.read import SliceStore

    manifest, run, _ = idh_run
    assert manifest.target.to_dict() == {"name": "IDH", "classes": CLASSES}
    assert manifest.labels == statuses(idh_cohort) and manifest.to_dict()["grades"] == {}
    store = SliceStore(json.loads((run / "config.json").read_text())["store"])
    for subject, status in statuses(idh_cohort).items():
        rows = store.index.subject == subject
        assert set(store.index.label[rows].tolist()) == {CLASSES.index(status)}


def test_subjects_without_a_value_are_left_out_with_a_note(idh_cohort, tmp_path):
    from gliograde.io.layouts import discover

    rows = read_rows(idh_cohort / "name_mapping.csv")
    rows[1][-1] = ""  # the first subject's IDH unknown
    labels = tmp_path / "labels.csv"
    write_rows(labels, rows)
    cohort = discover(idh_cohort, labels, target="idh")  # the column's name in any case
    assert rows[1][5] not in [s.subject_id for s in cohort.subjects]
    assert len(cohort.subjects) == 9 and cohort.target.classes == tuple(CLASSES)
    assert any("1 subjects have no idh value" in n for n in cohort.notes)


def test_the_classes_can_be_ordered_and_number_two_to_ten(idh_cohort, tmp_path):
    from gliograde.io.layouts import discover
    from gliograde.preprocess.slices import PrepareConfig

    ordered = discover(idh_cohort, target="IDH", classes=["wildtype", "mutant"])
    assert ordered.target.positive == "mutant"
    rows = read_rows(idh_cohort / "name_mapping.csv")
    rows[1][-1], rows[2][-1], rows[3][-1] = "equivocal", "NA", "[Not Available]"
    labels = tmp_path / "three.csv"
    write_rows(labels, rows)
    cohort = discover(idh_cohort, labels, target="IDH")
    assert cohort.target.classes == ("equivocal", "mutant", "wildtype")  # a third class
    assert len(cohort.subjects) == 8  # NA and [Not Available] say "no value", not a class
    assert any("2 subjects have no IDH value" in n for n in cohort.notes)
    from gliograde.io.target import target_of_values

    ages = [str(a) for a in range(40, 51)]  # a measurement, not a label
    with pytest.raises(DataError, match=r"11 classes .* targets of 2 to 10"):
        target_of_values("age", ages)
    with pytest.raises(UsageError, match="--classes goes with --target"):
        PrepareConfig(classes=["a", "b"])
    assert PrepareConfig(target="Grade").target is None  # the grade is the default target


def test_evaluation_figures_are_those_of_the_idh_labels(idh_run, idh_cohort):
    """metrics.json names the target; its AUC and confusion are those of the patients' IDH
    labels against the out-of-fold probabilities the CSV holds."""
    from gliograde.assess.metrics import roc_auc

    _, run, metrics = idh_run
    assert metrics["target"] == {"name": "IDH", "classes": CLASSES}
    with open(run / "predictions_patients.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    truth = statuses(idh_cohort)
    y = np.array([int(r["y"]) for r in rows])
    assert y.tolist() == [CLASSES.index(truth[r["subject"]]) for r in rows]
    assert not any(name.startswith("p_hgg") for name in rows[0])  # named by the class
    p = np.array([float(r["p_wildtype"]) for r in rows])
    assert metrics["patient"]["auc"] == pytest.approx(roc_auc(y, p))
    assert [r["pred"] for r in rows] == [CLASSES[int(pi >= 0.5)] for pi in p]
    with open(run / "predictions_slices.csv", newline="") as f:
        slices = list(csv.DictReader(f))
    assert "p_wildtype" in slices[0] and "p_hgg" not in slices[0]
    tumour = [r for r in slices if int(r["tumor_pixels"]) >= 20]
    y_s = np.array([int(r["y"]) for r in tumour])
    p_s = np.array([float(r["p_wildtype"]) for r in tumour])
    assert metrics["slice"]["auc"] == pytest.approx(roc_auc(y_s, p_s), abs=1e-5)
    hand = np.zeros((2, 2), dtype=int)
    for yi, pi in zip(y, p):
        hand[yi, int(pi >= 0.5)] += 1
    assert metrics["patient"]["confusion"] == hand.tolist()
    card = (run / "MODEL_CARD.md").read_text()
    assert "the column `IDH` of the label CSV (mutant, wildtype)" in card
    assert "P(wildtype)" in card and "HGG" not in card.split("## Training data")[1]


def test_predict_answers_with_the_target_and_both_probabilities(idh_run, idh_cohort):
    from gliograde.predict import predict_subjects
    from gliograde.predict.formats import format_predictions, predictions_csv

    _, run, _ = idh_run
    subject = sorted(p for p in idh_cohort.iterdir() if p.is_dir())[0]
    (prediction,) = predict_subjects([subject], run)
    answer = prediction.to_dict()
    assert "grade" not in answer and "p_hgg" not in answer
    assert answer["target"] == "IDH" and set(answer["probabilities"]) == set(CLASSES)
    assert sum(answer["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    best = max(answer["probabilities"], key=answer["probabilities"].get)
    assert answer["prediction"] == best
    table = predictions_csv([prediction]).splitlines()
    assert table[0].startswith("subject,target,prediction,p_mutant,p_wildtype,uncertainty")
    assert "IDH" in format_predictions([prediction]).splitlines()[0]
    assert "P(wildtype)" in format_predictions([prediction]).splitlines()[0]


def test_explain_report_and_bundle_speak_of_the_target(idh_run, idh_cohort, tmp_path):
    from gliograde.assess.explain import explain_subjects
    from gliograde.assess.report import write_report
    from gliograde.bundle import metadata
    from gliograde.run import Run

    _, run, _ = idh_run
    subject = sorted(p for p in idh_cohort.iterdir() if p.is_dir())[0]
    summary = explain_subjects(run, [subject], ExplainOptions(tmp_path / "explain", per_patient=1))
    answer = summary["answers"][subject.name]
    assert answer["answer"] in CLASSES and answer["of"] == "wildtype"
    page = write_report(run, tmp_path / "report.html").read_text()
    assert "sensitivity (wildtype recall)" in page and "target: IDH" in page
    outputs = metadata(Run.open(run))["network_data_format"]["outputs"]["pred"]
    assert outputs["channel_def"] == {"0": "mutant", "1": "wildtype"}


def test_the_bundle_of_the_idh_run_runs_and_matches_predict(idh_run, idh_cohort, tmp_path):
    """The MONAI bundle of a non-grade run: its classes as outputs, no subject's label in its
    config, and `monai.bundle run` giving predict's figures (p_CLASS columns) within 1e-4."""
    from gliograde.bundle import write_bundle
    from gliograde.predict import PredictOptions, predict_subjects
    from gliograde.predict.formats import predictions_csv
    from helpers.bundle import read_rows, run_bundle

    _, run, _ = idh_run
    bundle = write_bundle(run, tmp_path / "bundle")
    shared = (bundle / "models" / "run" / "config.json").read_text()
    assert '"labels"' not in shared and "Synth_0001" not in shared
    counts = json.loads(shared)["store_manifest"]["class_counts"]
    assert counts == {c: list(statuses(idh_cohort).values()).count(c) for c in CLASSES}
    result = run_bundle(bundle, idh_cohort, tmp_path / "out")
    assert result.returncode == 0, result.stderr[-2000:]
    got = read_rows((tmp_path / "out" / "predictions.csv").read_text())
    want = read_rows(
        predictions_csv(predict_subjects([idh_cohort], run, PredictOptions(device="cpu")))
    )
    assert sorted(got) == sorted(want) and len(want) == 10
    for subject, row in want.items():
        assert got[subject]["prediction"] == row["prediction"] in CLASSES
        for c in CLASSES:
            assert float(got[subject][f"p_{c}"]) == pytest.approx(float(row[f"p_{c}"]), abs=1e-4)


def test_classes_order_the_store_and_must_all_be_there(idh_cohort, tmp_path):
    from gliograde.io.layouts import discover
    from gliograde.io.target import GRADE, Target
    from gliograde.preprocess.slices import PrepareConfig
    from gliograde.store.read import SliceStore
    from gliograde.store.write import prepare

    config = PrepareConfig("brain", 20, 32, 2, target="IDH", classes=["wildtype", "mutant"])
    prepare(idh_cohort, tmp_path / "store", config, quiet=True)
    store = SliceStore(tmp_path / "store")
    assert store.target == Target("IDH", ("wildtype", "mutant"))
    for subject, status in statuses(idh_cohort).items():
        rows = store.index.subject == subject
        assert set(store.index.label[rows].tolist()) == {["wildtype", "mutant"].index(status)}
    with pytest.raises(DataError, match="--classes mutant,wildtyp: the column IDH has"):
        discover(idh_cohort, target="IDH", classes=["mutant", "wildtyp"])
    assert Target.of_dict(None) == GRADE  # files written before targets


def test_a_test_cohort_is_graded_for_the_runs_target(idh_run, idh_cohort, tmp_path, capsys):
    """evaluate --test on a non-grade run: its classes, its figures, and the subjects without a
    value said, not silently dropped; a grade run's calibration is refused for it."""
    from gliograde.assess.evaluate import evaluate_test
    from gliograde.core.errors import GliogradeError
    from gliograde.predict import PredictOptions, predict_subjects

    _, run, _ = idh_run
    rows = read_rows(idh_cohort / "name_mapping.csv")
    rows[1][-1] = ""
    write_rows(tmp_path / "labels.csv", rows)
    metrics = evaluate_test(run, TestCohort(idh_cohort, tmp_path / "labels.csv"), tmp_path / "test")
    assert metrics["target"] == {"name": "IDH", "classes": CLASSES}
    assert metrics["n_patients"] == 9
    assert "1 subjects have no IDH value" in capsys.readouterr().err
    grade_calibration = tmp_path / "grade.json"
    grade_calibration.write_text(json.dumps({"seg": {"temperature": 1.0, "bias": 0.0}}))
    with pytest.raises(GliogradeError, match="fitted for the target grade"):
        predict_subjects([idh_cohort], run, PredictOptions(calibration=grade_calibration))


def test_the_sr_of_another_target_holds_its_class_and_probabilities():
    from gliograde.scans.sr import sr_finding

    answer = {"target": "flag", "prediction": "b", "probabilities": {"a": 0.3, "b": 0.7},
              "uncertainty": 0.2, "flag": "confident"}  # fmt: skip
    finding = sr_finding(answer)
    names = [name for name, _ in finding.evaluations] + [n for n, _ in finding.measurements]
    assert len({code for code, _ in names}) == len(names)  # a target named flag: no clash
    assert finding.evaluations[0] == (("TARGET", "Predicted flag"), ("CLASS1", "b"))
    assert dict(finding.measurements)[("P_CLASS1", "Probability of flag b")] == 0.7
