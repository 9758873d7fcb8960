"""MODEL_CARD.md: written for every run, its figures those of metrics.json."""

import json

import pytest

from gliograde import GRADES
from gliograde.assess.modelcard import write_model_card
from gliograde.assess.record import figure_label, figure_names
from gliograde.run import Run
from helpers.runs import copy_run

HEADINGS = (
    "## Model details",
    "## Intended use",
    "## Training data",
    "## Preprocessing",
    "## Evaluation protocol",
    "## Metrics: Cross-validation (out of fold)",
    "## Known limits",
    "## Versions",
)


def interval(m: dict, key: str) -> str:
    low, high = m["ci95"][key]
    return f"{m[key]:.3f} (95 % CI {low:.3f}–{high:.3f})"


@pytest.mark.slow  # what train wrote
def test_train_writes_a_card_that_quotes_metrics_json(tiny_run):
    _, run, _ = tiny_run
    card = (run / "MODEL_CARD.md").read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    for heading in HEADINGS:
        assert heading in card
    assert "SYNTHETIC" in card and "Not for diagnosis" in card
    assert "The positive class is HGG" in card
    assert "## Factors" in card and "## Ethical considerations" in card
    assert "Synth_0001" not in card and "/tmp" not in card  # no patient, no local path
    folds = metrics["patient"]["calibration"]["folds_calibrated"]
    ece = metrics["patient"]["calibration"]["ece_after"]
    count = "no fold" if folds == 0 else f"{folds} fold"
    assert f"applied in {count}" in card and f"ECE {ece:.3f}" in card
    for key in figure_names(GRADES):  # the figures the report and evaluate show, F1 included
        line = f"- {figure_label(key, GRADES)}: {interval(metrics['patient'], key)}"
        assert line in card
    assert f"Patients: {metrics['n_patients']}." in card
    inference = metrics["inference"]  # what the figures were computed with
    assert inference["precision"] in ("bf16", "fp32") and inference["device"] == "cpu"
    assert f"Computed with {inference['precision']} inference on cpu" in card
    trained = Run.open(run).train_config.precision  # what train resolved auto to, recorded
    assert trained in ("fp32", "bf16")
    assert {"fp32": ", float32.", "bf16": ", bfloat16 autocast."}[trained] in card
    grades = list(Run.open(run).manifest.labels.values())
    counts = f"LGG: {grades.count('LGG')}, HGG: {grades.count('HGG')}"  # in class order
    assert f"{len(grades)} subjects ({counts})" in card


@pytest.mark.slow  # a trained run's metrics.json
def test_the_card_follows_metrics_json(tiny_run, tmp_path):
    run = tmp_path / "run"
    copy_run(tiny_run[1], run)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["patient"]["auc"], metrics["patient"]["ci95"]["auc"] = 0.123, [0.1, 0.2]
    (run / "metrics.json").write_text(json.dumps(metrics))
    card = write_model_card(Run.open(run)).read_text()
    assert "- ROC AUC: 0.123 (95 % CI 0.100–0.200)" in card


@pytest.mark.slow  # unlinks a trained run's metrics.json
def test_a_run_without_held_out_patients_says_so(tiny_run, tmp_path):
    run = tmp_path / "run"
    copy_run(tiny_run[1], run)
    (run / "metrics.json").unlink()
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(config | {"full": True}))
    card = write_model_card(Run.open(run)).read_text()
    assert "None: no patient was held out of training." in card
    assert "None: every subject trained the model (`--full`)." in card
    assert "not calibrated and never flagged" in card  # what predict does with such a run
    assert "auc:" not in card and "calibrated and flagged by the rule" not in card


@pytest.mark.slow  # a trained run's report
def test_the_report_links_to_the_card(tiny_run, tmp_path):
    from gliograde.assess.report import write_report

    run = tmp_path / "run"
    copy_run(tiny_run[1], run)
    assert "href='MODEL_CARD.md'" in write_report(run).read_text()
    (run / "MODEL_CARD.md").unlink()
    assert "MODEL_CARD.md" not in write_report(run).read_text()
