"""prepare → train (tiny) → evaluate → predict, end to end on small SYNTHETIC data."""

import json

import nibabel as nib
import numpy as np
import pytest

from gliograde.assess.evaluate import evaluate_run
from gliograde.assess.explain import ExplainOptions
from gliograde.core.errors import UsageError
from gliograde.infer.models import precision_name
from gliograde.predict import PredictOptions, predict_subjects
from gliograde.store.read import SliceStore
from helpers.cli import invoke
from helpers.corpus import IMAGE_CORRUPTIONS, corrupt_empty_seg, first_subject
from helpers.runs import copy_run

pytestmark = pytest.mark.slow  # trains and predicts end to end, every export format


def test_training_writes_every_file(tiny_run):
    store, run, _ = tiny_run
    for name in (
        "config.json",
        "metrics.json",
        "predictions_slices.csv",
        "predictions_patients.csv",
        "roc.png",
        "confusion.png",
    ):
        assert (run / name).is_file(), name
    for k in (0, 1):
        assert (run / f"fold_{k}" / "model.safetensors").is_file()
        assert (run / f"fold_{k}" / "checkpoints" / "last.ckpt").is_file()
        assert (run / f"fold_{k}" / "logs" / "metrics.csv").is_file()
    saved = json.loads((run / "metrics.json").read_text())
    for key in ("auc", "balanced_accuracy", "sensitivity", "specificity", "f1"):
        assert key in saved["patient"]
    assert "auc" in saved["slice"]
    assert saved["n_patients"] == 10  # every subject validated exactly once
    n_rows = len((run / "predictions_slices.csv").read_text().splitlines()) - 1
    assert n_rows == SliceStore(store).manifest.n_slices
    config = json.loads((run / "config.json").read_text())
    assert config["epochs"] == 2 and "torch" in config["versions"]


def test_evaluate_recomputes_the_same_metrics(tiny_run, tmp_path):
    _, run, metrics = tiny_run
    again = evaluate_run(copy_run(run, tmp_path / "run")).to_dict()  # it writes into the run
    assert again["patient"]["auc"] == metrics["patient"]["auc"]
    assert again["slice"] == metrics["slice"]


def test_predict_with_and_without_seg(tiny_run, synth_small):
    _, run, _ = tiny_run
    folders = [synth_small / "Synth_0001", synth_small / "Synth_0002"]
    with_seg = [p.to_dict() for p in predict_subjects(folders, run)]
    no_seg = [p.to_dict() for p in predict_subjects(folders, run, PredictOptions(ignore_seg=True))]
    for a, b in zip(with_seg, no_seg):
        assert "error" not in a and "error" not in b
        assert a["used_seg"] and not b["used_seg"]
        assert 0 <= a["p_hgg"] <= 1 and 0 <= b["p_hgg"] <= 1
        assert a["grade"] == ("HGG" if a["p_hgg"] >= 0.5 else "LGG")
        assert b["n_slices"] > a["n_slices"]  # every brain slice vs the tumour slices
        assert a["precision"] == b["precision"] == precision_name("cpu")  # told to the user


def test_a_bad_precision_setting_stops_predict_before_any_work(tiny_run, synth_small, monkeypatch):
    with pytest.raises(UsageError, match="--precision fp16: choose auto, fp32 or bf16"):
        predict_subjects(
            [synth_small / "Synth_0001"], tiny_run[1], PredictOptions(precision="fp16")
        )
    monkeypatch.setenv("GLIOGRADE_PRECISION", "fp16")  # read by the command line, once
    result = invoke("predict", tiny_run[1], synth_small / "Synth_0001", "--device", "cpu")
    assert result.exit_code == 2 and result.stdout == ""
    assert (
        result.stderr.strip()
        == "gliograde: error: GLIOGRADE_PRECISION=fp16: choose auto, fp32 or bf16"
    )
    monkeypatch.setenv("GLIOGRADE_PRECISION", "fp32")
    result = invoke("predict", tiny_run[1], synth_small / "Synth_0001", "--json", "--device", "cpu")
    assert result.exit_code == 0 and json.loads(result.stdout)[0]["precision"] == "fp32"
    result = invoke(
        "predict", tiny_run[1], synth_small / "Synth_0001", "--json", "--precision", "bf16"
    )
    assert json.loads(result.stdout)[0]["precision"] == "bf16"  # the option before the variable


def test_predict_json_on_the_real_sample(tiny_run, sample_dir):
    """Real BraTS patients are not what a run on 64×64×40 phantoms saw: refused, or with
    --force graded, flagged and told why."""
    _, run, _ = tiny_run
    subjects = sorted(p for p in sample_dir.iterdir() if p.is_dir())
    refused = invoke("predict", run, *subjects, "--json")
    assert refused.exit_code == 1
    assert all(
        a["error"].startswith("out of distribution: grid 240×240×155, trained on 64×64×40")
        for a in json.loads(refused.stdout)
    )
    result = invoke("predict", run, *subjects, "--json", "--force")
    assert result.exit_code == 0, result.stderr
    answers = json.loads(result.stdout)  # stdout holds the JSON and nothing else
    assert [a["subject"] for a in answers] == [p.name for p in subjects]
    for a in answers:
        assert a["grade"] in ("HGG", "LGG") and 0.0 <= a["p_hgg"] <= 1.0 and a["n_slices"] > 0
        assert a["flag"] == "uncertain" and a["out_of_distribution"]
    assert np.isfinite([a["p_hgg"] for a in answers]).all()


def test_calibration_and_uncertainty_are_saved(tiny_run):
    _, run, metrics = tiny_run
    cal = json.loads((run / "calibration.json").read_text())
    for path, key in (("seg", "patient"), ("noseg", "patient_noseg")):
        assert cal[path]["temperature"] == metrics[key]["calibration"]["temperature"] > 0
        u = metrics[key]["uncertainty"]
        assert u["n_flagged"] + u["n_confident"] == 10
        assert "threshold" in cal[path]
    assert (run / "reliability.png").is_file()
    header = (run / "predictions_patients.csv").read_text().splitlines()[0].split(",")
    for name in (
        "subject",
        "fold",
        "y",
        "p_hgg_uncalibrated",
        "p_hgg",
        "p_hgg_noseg_uncalibrated",
        "p_hgg_noseg",
        "uncertainty",
        "flag",
        "pred",
    ):
        assert name in header


def test_explain_and_report(tiny_run, tmp_path):
    from gliograde.assess.explain import explain_store
    from gliograde.assess.report import write_report

    store, shared, _ = tiny_run
    run = copy_run(shared, tmp_path / "run")  # explain and the report write into the run
    summary = explain_store(run, store, ExplainOptions(per_patient=1))
    assert summary["layer"] == "layer1"  # 32-pixel slices: layer4's map would be 1×1
    rows = (run / "explain" / "attention.csv").read_text().splitlines()
    assert rows[0] == "subject,z,fold,share_tumor,share_brain,hit,chance"
    assert len(rows) - 1 == summary["n_slices"] > 0
    assert 0.0 <= summary["mean_share_tumor"] <= 1.0
    assert len(list((run / "explain").glob("*.png"))) == 10  # one panel per patient
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["attention"]["n_patients"] == 10
    page = write_report(run).read_text()
    assert "SYNTHETIC DATA" in page
    assert page.count("data:image/png;base64,") >= 3 + 10  # ROC, confusion, reliability, panels
    assert "http://" not in page and "https://" not in page  # opens offline


def test_predict_reports_calibrated_probability_and_uncertainty(tiny_run, synth_small):
    from gliograde.model.probability import calibrate

    _, run, _ = tiny_run
    cal = json.loads((run / "calibration.json").read_text())
    (p,) = predict_subjects([synth_small / "Synth_0003"], run)
    d = p.to_dict()
    t, b = cal["seg"]["temperature"], cal["seg"]["bias"]
    p1 = d["p_hgg_uncalibrated"]
    expected = calibrate([1 - p1, p1], t, b)[1]  # sigmoid(logit(p1) / t + b)
    assert d["p_hgg"] == pytest.approx(float(expected), abs=1e-5)
    assert d["flag"] in ("uncertain", "confident") and d["uncertainty"] >= 0
    assert d["uncertainty_parts"]["folds"] >= 0  # two fold models disagree a little or not


def test_explain_new_patient_folders(tiny_run, synth_small, tmp_path):
    from gliograde.assess.explain import explain_subjects

    _, run, _ = tiny_run
    summary = explain_subjects(
        run, [synth_small / "Synth_0004"], ExplainOptions(tmp_path, per_patient=2)
    )
    assert summary["layer"] == "layer1"
    assert len(summary["panels"]["Synth_0004"]) == 2
    assert all((tmp_path / name).is_file() for name in summary["panels"]["Synth_0004"])
    # the seg is there: attention measured on up to 8 tumour slices, as for the store's patients
    rows = (tmp_path / "attention.csv").read_text().splitlines()[1:]
    assert 2 <= summary["n_slices"] == len(rows) <= 8
    assert summary["answers"]["Synth_0004"]["answer"] in ("HGG", "LGG") and not summary["errors"]
    # the map as a volume on the subject's own FLAIR, and each slice the model saw
    flair = nib.load(synth_small / "Synth_0004" / "Synth_0004_flair.nii.gz")
    cam = nib.load(tmp_path / "Synth_0004" / "gradcam.nii.gz")
    assert cam.shape == flair.shape and np.array_equal(cam.affine, flair.affine)
    assert (
        cam.get_data_dtype() == np.float32
        and 0 <= cam.get_fdata().min() < cam.get_fdata().max() <= 1
    )
    table = (tmp_path / "Synth_0004" / "slices.csv").read_text().splitlines()
    mapped = np.count_nonzero(cam.get_fdata().any(axis=(0, 1)))  # axial slices with a map
    assert table[0] == "z,class,p_class,p_tumor" and len(table) - 1 >= mapped > 0
    assert {row.split(",")[1] for row in table[1:]} == {"HGG"}  # P(HGG) whatever the answer


@pytest.mark.parametrize(
    "corrupt", IMAGE_CORRUPTIONS + [corrupt_empty_seg], ids=lambda f: f.__name__[8:]
)
def test_predict_names_a_bad_subject_and_answers_the_good_one(tiny_run, cohort_copy, corrupt):
    _, run, _ = tiny_run
    bad = first_subject(cohort_copy)
    expected = corrupt(bad)
    good = cohort_copy / "Synth_0005"
    answers = [p.to_dict() for p in predict_subjects([bad, good], run)]
    assert answers[0]["subject"] == bad.name and expected in answers[0]["error"]
    assert "error" not in answers[1] and 0.0 <= answers[1]["p_hgg"] <= 1.0


def test_predict_with_one_fold_gives_each_out_of_fold_answer(tiny_run, synth_small):
    """Evaluation measures predict's own path: fold K's model on each of its held-out patients
    gives, through predict, the uncalibrated P(HGG) in the run's CSV (with and without seg)."""
    import csv

    _, run, _ = tiny_run
    with open(run / "predictions_patients.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10
    for row in rows:
        folder, fold = synth_small / row["subject"], int(row["fold"])
        (seg,) = predict_subjects([folder], run, PredictOptions(fold=fold))
        (noseg,) = predict_subjects([folder], run, PredictOptions(ignore_seg=True, fold=fold))
        got = seg.to_dict()["p_hgg_uncalibrated"], noseg.to_dict()["p_hgg_uncalibrated"]
        want = float(row["p_hgg_uncalibrated"]), float(row["p_hgg_noseg_uncalibrated"])
        assert got == pytest.approx(want, abs=1e-4), row["subject"]
        assert seg.to_dict()["uncertainty_parts"]["folds"] == 0.0  # one model


def test_predict_cli_takes_run_first_or_as_model_and_writes_csv(tiny_run, synth_small, tmp_path):
    _, run, _ = tiny_run
    subject = synth_small / "Synth_0002"
    outputs = []
    for args in (
        [str(run), str(subject)],
        [str(subject), "--model", str(run)],
    ):
        options = ["--fold", "1", "--json", "--device", "cpu", "--csv", tmp_path / "out.csv"]
        result = invoke("predict", *args, *options)
        assert result.exit_code == 0, result.stderr
        outputs.append(json.loads(result.stdout))
    assert outputs[0] == outputs[1]
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines[0].startswith("subject,grade,p_hgg,") and lines[1].startswith("Synth_0002,")


def test_predict_reads_a_cohort_folder_and_a_csv_manifest(tiny_run, synth_small, tmp_path):
    from helpers.data import write_manifest

    _, run, _ = tiny_run
    by_folder = [p.to_dict() for p in predict_subjects([synth_small], run)]
    everyone = sorted(p.name for p in synth_small.iterdir() if p.is_dir())
    assert [a["subject"] for a in by_folder] == everyone and len(everyone) == 10
    manifest = write_manifest(synth_small.parent / "m.csv", synth_small, everyone[2:4])
    by_csv = [p.to_dict() for p in predict_subjects([manifest], run)]
    assert [a["subject"] for a in by_csv] == everyone[2:4]
    for a in by_csv:
        (same,) = [b for b in by_folder if b["subject"] == a["subject"]]
        assert a["p_hgg"] == same["p_hgg"]


def test_a_run_that_never_saw_a_slice_without_tumor_refuses_to_grade_without_seg(
    tiny_run, synth_small, tmp_path
):
    import shutil

    _, run, _ = tiny_run
    tumor_run = tmp_path / "tumor-run"
    shutil.copytree(run, tumor_run, ignore=shutil.ignore_patterns("checkpoints", "explain"))
    config = json.loads((tumor_run / "config.json").read_text())
    config["store_manifest"]["options"]["slices"] = "tumor"
    (tumor_run / "config.json").write_text(json.dumps(config))
    folder = synth_small / "Synth_0002"
    (answer,) = predict_subjects([folder], tumor_run, PredictOptions(ignore_seg=True))
    assert "cannot grade without a segmentation" in answer.error
    (with_seg,) = predict_subjects([folder], tumor_run)
    assert with_seg.error is None


def test_explain_answers_every_subject_with_predicts_calibrated_probability(
    tiny_run, cohort_copy, tmp_path
):
    from gliograde.assess.explain import explain_subjects
    from helpers.corpus import corrupt_truncated_gz

    _, run, _ = tiny_run
    bad, good = cohort_copy / "Synth_0003", cohort_copy / "Synth_0005"
    corrupt_truncated_gz(bad)
    summary = explain_subjects(
        run, [bad, good, tmp_path / "missing"], ExplainOptions(tmp_path / "x")
    )
    assert set(summary["errors"]) == {"Synth_0003", "missing"}
    assert "truncated" in summary["errors"]["Synth_0003"]
    (answer,) = predict_subjects([good], run)
    assert summary["answers"]["Synth_0005"]["p"] == pytest.approx(answer.to_dict()["p_hgg"])


def test_report_without_config_is_one_clear_line(tiny_run, tmp_path):
    import shutil

    from gliograde.assess.report import write_report
    from gliograde.core.errors import GliogradeError

    _, run, _ = tiny_run
    shutil.copy(run / "metrics.json", tmp_path / "metrics.json")
    with pytest.raises(GliogradeError, match=r"no config\.json"):
        write_report(tmp_path)


def test_a_tiny_tumor_is_graded_with_a_note(tiny_run, cohort_copy):
    """A segmentation with no slice of min_tumor_pixels: every slice weighs the same, and the
    answer says so."""
    from helpers.corpus import rewrite

    subject = cohort_copy / "Synth_0003"

    def tiny(v):
        out = np.zeros(v.shape, np.uint8)
        out[30:32, 30:32, 20] = 1  # 4 pixels, below the run's 20
        return out

    rewrite(subject, "seg", tiny)
    answer = predict_subjects([subject], tiny_run[1])[0].to_dict()
    assert answer["used_seg"] and "no slice has 20 tumour pixels" in answer["note"]
    normal = predict_subjects([cohort_copy / "Synth_0004"], tiny_run[1])[0].to_dict()
    assert "note" not in normal


def test_predict_report_with_explain_links_each_patients_viewer(tiny_run, synth_small, tmp_path):
    """`predict RUN A B --report p.html --explain`: each answer names its viewer (in
    p_explain/), the page links it, and the time spent is said."""
    _, run, _ = tiny_run
    subjects = [synth_small / "Synth_0001", synth_small / "Synth_0005"]
    page = tmp_path / "new" / "p.html"  # its folder is made
    result = invoke("predict", run, *subjects, "--json", "--report", page, "--explain")
    assert result.exit_code == 0, result.stderr
    answers = json.loads(result.stdout)
    page = page.read_text()
    for answer in answers:
        viewer = tmp_path / "new" / "p_explain" / answer["subject"] / "viewer.html"
        assert answer["viewer"] == str(viewer.resolve()) and viewer.is_file()
        assert answer["explain_seconds"] > 0
        assert f"href='p_explain/{answer['subject']}/viewer.html'" in page
    assert "viewers in" in result.stderr and "s of this run" in result.stderr
    assert invoke("predict", run, subjects[0], "--explain").exit_code == 2  # needs --report


def test_explain_without_viewers_writes_the_panels_alone(tiny_run, synth_small, tmp_path):
    _, run, _ = tiny_run
    result = invoke("explain", run, synth_small / "Synth_0004", "--out", tmp_path, "--no-viewer")
    assert result.exit_code == 0, result.stderr
    assert list(tmp_path.glob("Synth_0004_z*.png"))  # the panels
    assert not (tmp_path / "Synth_0004").exists() and not (tmp_path / "niivue.umd.js").exists()
    assert "viewers:" not in result.stdout
    result = invoke("explain", run, synth_small / "Synth_0004", "--out", tmp_path / "v")
    assert f"viewers: 1, e.g. {tmp_path / 'v' / 'Synth_0004' / 'viewer.html'}" in result.stdout
