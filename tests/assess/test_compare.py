"""``gliograde compare`` on runs whose out-of-fold answers are known: the golden SYNTHETIC grade
run (tests/golden/grade/run) and a copy whose patient evidence is replaced, evaluated again."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gliograde.assess.compare import compare_runs
from gliograde.assess.compare_view import comparison_table, plot_comparison
from gliograde.assess.paired import delong_test
from gliograde.core.errors import GliogradeError, UsageError
from gliograde.model.probability import roc_auc

GOLDEN = Path(__file__).parents[1] / "golden" / "grade" / "run"


def run_copy(dst: Path) -> Path:
    """The golden run with the fold splits ``train`` writes (train, select, val per fold)."""
    run = Path(shutil.copytree(GOLDEN, dst))
    for k, fold in enumerate(json.loads((run / "splits.json").read_text())):
        (run / f"fold_{k}").mkdir()
        split = {"train": fold["train"][1:], "select": fold["train"][:1], "val": fold["val"]}
        (run / f"fold_{k}" / "split.json").write_text(json.dumps(split))
    return run


def with_scores(run: Path, scores: dict[str, float]) -> Path:
    """``run`` with each patient's uncalibrated P(HGG) replaced, then evaluated again."""
    from gliograde.assess.evaluate import evaluate_run

    path = run / "predictions_patients.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for column in ("p_hgg_uncalibrated", "p_hgg_noseg_uncalibrated"):
            row[column] = f"{scores[row['subject']]:.6f}"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    evaluate_run(run)
    return run


def calibrated(run: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    with open(run / "predictions_patients.csv", newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: r["subject"])
    y = np.array([int(r["y"]) for r in rows])
    return [r["subject"] for r in rows], y, np.array([float(r["p_hgg"]) for r in rows])


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("compare")
    a = run_copy(root / "a")
    subjects, y, _ = calibrated(a)
    rng = np.random.default_rng(4)
    noisy = {s: float(np.clip(0.5 + (c - 0.5) * 0.2 + rng.normal(0, 0.2), 0.01, 0.99))
             for s, c in zip(subjects, y)}  # fmt: skip
    return a, with_scores(run_copy(root / "b"), noisy)


def test_each_runs_figures_are_those_of_its_answers(two_runs):
    c = compare_runs(list(two_runs), n_boot=300)
    assert c.n_patients == 10 and c.synthetic and c.mode.value == "seg"
    for run, figures in zip(two_runs, c.runs):
        _, y, p = calibrated(run)
        assert figures.auc == pytest.approx(roc_auc(y == 1, p))
        assert figures.auc_ci95[0] <= figures.auc <= figures.auc_ci95[1]
        metrics = json.loads((run / "metrics.json").read_text())["patient"]
        assert figures.ece == metrics["calibration"]["ece_after"]  # of the probabilities compared
        assert figures.accuracy_confident == metrics["uncertainty"]["accuracy_confident"]
        assert figures.backbone == "resnet18"  # runs from before --backbone
        assert figures.training_seconds is None  # and before cost.json


def test_the_pair_is_the_paired_difference_on_the_same_patients(two_runs):
    c = compare_runs(list(two_runs), n_boot=300)
    (pair,) = c.pairs
    (_, y, pa), (_, _, pb) = calibrated(two_runs[0]), calibrated(two_runs[1])
    auc_a, auc_b = roc_auc(y == 1, pa), roc_auc(y == 1, pb)  # each run's own file, by subject
    assert pair.bootstrap.difference == pytest.approx(auc_a - auc_b)
    assert pair.delong.difference == pytest.approx(auc_a - auc_b)
    assert pair.delong.p_value == pytest.approx(delong_test(y, pa, pb).p_value)
    assert pair.bootstrap.ci95[0] <= pair.bootstrap.difference <= pair.bootstrap.ci95[1]
    assert pair.told_apart == (pair.bootstrap.ci95[0] > 0 or pair.bootstrap.ci95[1] < 0)
    table = comparison_table(c)
    assert "SYNTHETIC cohort, 10 patients" in table
    assert f"a - b: {pair.bootstrap.difference:+.3f}" in table
    assert f"p {pair.delong.p_value:.3g}" in table
    assert ("not told apart" in table) == (not pair.told_apart)


def test_the_figure_is_written(two_runs, tmp_path):
    c = compare_runs(list(two_runs), n_boot=200)
    path = plot_comparison(c, tmp_path / "fig" / "compare.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000


def test_runs_of_other_folds_are_refused(two_runs, tmp_path):
    other = run_copy(tmp_path / "other")
    splits = json.loads((other / "splits.json").read_text())
    splits[0]["val"], splits[1]["val"] = splits[1]["val"], splits[0]["val"]
    (other / "splits.json").write_text(json.dumps(splits))
    with pytest.raises(GliogradeError, match=r"other cross-validation folds \(splits.json\)"):
        compare_runs([two_runs[0], other])


def test_runs_of_another_selection_split_are_refused(two_runs, tmp_path):
    other = run_copy(tmp_path / "other")
    split = json.loads((other / "fold_1" / "split.json").read_text())
    split["train"][0], split["select"][0] = split["select"][0], split["train"][0]
    (other / "fold_1" / "split.json").write_text(json.dumps(split))
    with pytest.raises(GliogradeError, match="another inner selection split in fold 1"):
        compare_runs([two_runs[0], other])


def test_runs_of_another_store_are_refused(two_runs, tmp_path):
    other = run_copy(tmp_path / "other")
    config = json.loads((other / "config.json").read_text())
    labels = config["store_manifest"]["labels"]
    first = sorted(labels)[0]
    labels[first] = "LGG" if labels[first] == "HGG" else "HGG"
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(GliogradeError, match=r"other patients or labels \(another store\)"):
        compare_runs([two_runs[0], other])


def test_runs_of_a_store_prepared_otherwise_are_refused(two_runs, tmp_path):
    other = run_copy(tmp_path / "other")
    config = json.loads((other / "config.json").read_text())
    config["store_manifest"]["options"]["size"] = 64
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(GliogradeError, match="a store prepared with other options"):
        compare_runs([two_runs[0], other])


def test_answers_on_other_patients_are_refused(two_runs, tmp_path):
    other = run_copy(tmp_path / "other")
    lines = (other / "predictions_patients.csv").read_text().splitlines()
    (other / "predictions_patients.csv").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(GliogradeError, match="holds other patients than"):
        compare_runs([two_runs[0], other])


def test_one_run_or_the_same_run_twice_is_a_usage_error(two_runs):
    with pytest.raises(UsageError, match="two runs or more"):
        compare_runs([two_runs[0]])
    with pytest.raises(UsageError, match="given twice"):
        compare_runs([two_runs[0], two_runs[0]])


def test_the_command_prints_json_and_one_line_errors(two_runs, tmp_path, monkeypatch):
    from helpers.cli import invoke

    monkeypatch.chdir(tmp_path)
    plain = invoke("compare", *two_runs, "--boot", 200)
    assert plain.exit_code == 0 and "paired differences" in plain.stdout
    assert not list(tmp_path.iterdir())  # no figure unless asked for

    result = invoke("compare", *two_runs, "--json", "--boot", 200, "--figure", tmp_path / "c.png")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [r["name"] for r in data["runs"]] == ["a", "b"] and len(data["pairs"]) == 1
    assert (tmp_path / "c.png").is_file()
    bad = invoke("compare", two_runs[0], tmp_path)
    assert bad.exit_code == 1
    assert bad.output.strip().count("\n") == 0 and "not a gliograde run" in bad.output
