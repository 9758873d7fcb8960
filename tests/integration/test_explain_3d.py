"""Grad-CAM as a volume on a run that learned: where its mass lies, the viewers ``explain``
writes for the run's held-out patients, and the report's links to them."""

from __future__ import annotations

import csv
import re

import nibabel as nib
import numpy as np
import pytest

from gliograde.assess.explain import ExplainOptions
from helpers.browser import open_viewer
from helpers.runs import train_config

pytestmark = pytest.mark.slow  # trains a run; opens its viewers in Chromium


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """16 SYNTHETIC subjects (96×96×48), 48-pixel slices, 2 folds, 4 epochs of 256 slices:
    about 15 s on 2 cores, and the folds grade their held-out patients well above chance
    (out-of-fold AUC 0.87 when written), then explained with viewers."""
    from gliograde.assess.explain import explain_store
    from gliograde.experiment import train_and_evaluate
    from gliograde.io.synth import synth_cohort
    from gliograde.preprocess.slices import PrepareConfig
    from gliograde.store.write import prepare

    root = tmp_path_factory.mktemp("learned")
    synth_cohort(root / "cohort", 16, lgg_fraction=0.4, seed=3, shape=(96, 96, 48), quiet=True)
    prepare(root / "cohort", root / "store", PrepareConfig("brain", 20, 48, 2), quiet=True)
    config = train_config(
        root / "store", root / "run", epochs=4, epoch_slices=256, lr=3e-3, batch_size=32,
        select="last",
    )  # fmt: skip
    metrics = train_and_evaluate(config).to_dict()
    summary = explain_store(root / "run", root / "store", ExplainOptions(per_patient=1))
    return root, metrics, summary


def test_the_maps_mass_lies_in_the_tumour_above_chance(learned):
    """Over the run's held-out patients, the share of each volume's mass inside the tumour
    exceeds the tumour's share of the brain (where a map spread evenly would put it)."""
    root, metrics, summary = learned
    assert metrics["patient"]["auc"] > 0.7  # the run learned something to explain
    shares, chances = [], []
    for subject in summary["viewers"]:
        image = nib.load(root / "run" / "explain" / subject / "gradcam.nii.gz")
        folder = root / "cohort" / subject
        flair = nib.load(folder / f"{subject}_flair.nii.gz")
        assert image.shape == flair.shape and np.array_equal(image.affine, flair.affine)
        cam = image.get_fdata()
        tumour = nib.load(folder / f"{subject}_seg.nii.gz").get_fdata() > 0
        brain = nib.load(folder / f"{subject}_flair.nii.gz").get_fdata() != 0
        shares.append(cam[tumour].sum() / cam.sum())
        chances.append(tumour.sum() / brain.sum())
    shares, chances = np.array(shares), np.array(chances)
    assert len(shares) == 16
    assert shares.mean() > 1.3 * chances.mean()  # measured 0.093 against 0.057
    assert (shares > chances).mean() > 0.6  # measured 12 of 16 patients


def test_the_report_links_each_patients_viewer(learned):
    from gliograde.assess.report import write_report

    root, _, summary = learned
    page = write_report(root / "run").read_text()
    links = re.findall(r"href='(explain/[^']+/viewer\.html)'", page)
    assert sorted(links) == sorted(f"explain/{s}/viewer.html" for s in summary["viewers"])
    assert all((root / "run" / link).is_file() for link in links) and len(links) == 16
    assert (root / "run" / "explain" / "niivue.umd.js").is_file()
    assert len(list((root / "run" / "explain").rglob("niivue.umd.js"))) == 1  # once per folder


def reported_answers(run) -> dict[str, dict]:
    with open(run / "predictions_patients.csv", newline="") as f:
        return {row["subject"]: row for row in csv.DictReader(f)}


@pytest.mark.parametrize("answer", ["LGG", "HGG"])
def test_a_viewer_of_the_run_opens_in_chromium_with_the_reported_answer(
    learned, browser_page, answer
):
    """A held-out patient answered ``answer``: the page opens without a console error, draws,
    and says the reported, calibrated P(HGG) and flag; its strip is P(HGG) too."""
    root, _, summary = learned
    rows = reported_answers(root / "run")
    subject = next(s for s in summary["viewers"] if rows[s]["pred"] == answer)
    opened = open_viewer(browser_page, root / "run" / "explain" / summary["viewers"][subject])
    assert opened.errors == [] and opened.run("ggViewer.error") is None
    assert opened.canvas().astype(float).std() > 10
    header = opened.page.inner_text("header")
    assert subject in header and "Held out" in header and "SYNTHETIC" in header
    p = float(rows[subject]["p_hgg"])
    assert f"answer {answer} · P(HGG) {p:.3f} (calibrated)" in header
    assert ("UNCERTAIN" in header) == (rows[subject]["flag"] == "uncertain")
    assert opened.page.inner_text("#gg-slice").startswith(("slice z", "this slice"))
    assert "P(HGG)" in opened.page.inner_text(".legend")
