"""Each backbone through the whole pipeline, on the tests' SYNTHETIC store: trained and
evaluated as ``train`` does, then predicted (with and without the segmentation), explained,
exported to ONNX, bundled, and compared with the ResNet18 run of the same store and folds.
(The node grades with each backbone in tests/serve/test_worker.py.)"""

from __future__ import annotations

import csv
import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from gliograde.predict import PredictOptions, predict_subjects

pytestmark = pytest.mark.slow  # trains two runs

OTHERS = ("densenet121", "resnet18-2.5d", "resnet10-3d", "densenet121-3d")
GRID = 32  # the 3D runs' volumes: the smallest grid, as the store's slices are 32×32


@pytest.fixture(scope="module")
def runs(tiny_run, tmp_path_factory) -> dict:
    """The tests' ResNet18 run and one run per other backbone, trained as it was (same store,
    seed, epochs and selection)."""
    from gliograde.experiment import train_and_evaluate
    from gliograde.store.read import SliceStore
    from gliograde.store.volumes import write_volumes
    from helpers.runs import train_config

    store, resnet, _ = tiny_run
    root = tmp_path_factory.mktemp("backbones")
    volumes_store = root / "store"  # the store and its volumes: tiny_store is not modified
    shutil.copytree(store, volumes_store)
    write_volumes(SliceStore(volumes_store), GRID)
    out = {"resnet18": resnet}
    for name in OTHERS:
        if name.endswith("-3d"):  # 8 training volumes a fold: 2 epochs of 3 batches of 4
            options = {"store": volumes_store, "grid": GRID, "epochs": 2, "batch_size": 4}
            options["epoch_slices"] = 12
        else:
            options = {"store": store, "epochs": 2, "epoch_slices": 64}
        config = train_config(options.pop("store"), root / name, backbone=name, **options)
        train_and_evaluate(config)
        out[name] = root / name
    return out


def rows_of(run) -> list[dict]:
    with open(run / "predictions_patients.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("name", OTHERS)
def test_each_run_records_its_backbone_and_its_cost(runs, name):
    config = json.loads((runs[name] / "config.json").read_text())
    assert config["backbone"] == name and config["context"] == (1 if "2.5d" in name else 0)
    assert config["grid"] == (GRID if name.endswith("-3d") else 0)
    card = (runs[name] / "MODEL_CARD.md").read_text()
    if name.endswith("-3d"):
        assert f"on the brain as one volume of {GRID}³ voxels" in card and "no tumour head" in card
        assert config["tumor_loss_weight"] == 0.0 and config["precision"] == "fp32"
    for k in (0, 1):
        cost = json.loads((runs[name] / f"fold_{k}" / "cost.json").read_text())
        assert cost["seconds"] > 0 and cost["peak_rss_mib"] > 100 and cost["device"] == "cpu"
        assert cost["grading_seconds_per_patient"] > 0  # added by the evaluation
    assert len(rows_of(runs[name])) == 10


@pytest.mark.parametrize("name", OTHERS)
def test_evaluation_is_predicts_path_with_and_without_seg(runs, synth_small, name):
    """Fold K's model, through predict, gives each of its held-out patients the uncalibrated
    probability the run's CSV holds: the store's slices and their neighbours are predict's."""
    for row in rows_of(runs[name])[::3]:
        folder, fold = synth_small / row["subject"], int(row["fold"])
        (seg,) = predict_subjects([folder], runs[name], PredictOptions(fold=fold))
        (noseg,) = predict_subjects(
            [folder], runs[name], PredictOptions(ignore_seg=True, fold=fold)
        )
        got = seg.to_dict()["p_hgg_uncalibrated"], noseg.to_dict()["p_hgg_uncalibrated"]
        want = float(row["p_hgg_uncalibrated"]), float(row["p_hgg_noseg_uncalibrated"])
        assert got == pytest.approx(want, abs=1e-4), row["subject"]
        if name.endswith("-3d"):  # one answer for the volume: the segmentation is not read
            assert got[0] == got[1] and seg.to_dict()["used_seg"] is False


@pytest.mark.parametrize("name", OTHERS)
def test_explain_writes_the_map_on_the_subjects_grid(runs, synth_small, name, tmp_path):
    from gliograde.assess.explain import ExplainOptions, explain_subjects

    summary = explain_subjects(runs[name], [synth_small / "Synth_0004"], ExplainOptions(tmp_path))
    assert summary["layer"] == "layer1" and not summary["errors"]
    flair = nib.load(synth_small / "Synth_0004" / "Synth_0004_flair.nii.gz")
    cam = nib.load(tmp_path / "Synth_0004" / "gradcam.nii.gz").get_fdata()
    assert cam.shape == flair.shape and 0 <= cam.min() < cam.max() <= 1


def test_onnx_answers_as_pytorch(runs, tmp_path):
    """Each backbone's ONNX file answers as PyTorch (``export_run`` refuses one that does not):
    the 2.5D run's whole export, and one DenseNet fold (half a minute a fold to export)."""
    import torch

    from gliograde.export import PARITY_TOLERANCE, export_one, export_run

    done = export_run(runs["resnet18-2.5d"], "onnx", tmp_path)
    assert len(done) == 2 and all(e.max_abs_diff <= PARITY_TOLERANCE for e in done)
    record = json.loads((tmp_path / "export.json").read_text())["input"]
    assert record["shape"][1] == len(record["channels"]) == 12
    example, check = torch.randn(2, 4, 32, 32), torch.randn(3, 4, 32, 32)
    weights = runs["densenet121"] / "fold_0" / "model.safetensors"
    (tmp_path / "dense").mkdir()
    dense = export_one(weights, "onnx", tmp_path / "dense", example, check, "cpu")
    assert dense.file == "fold_0.onnx" and dense.max_abs_diff <= PARITY_TOLERANCE
    done3d = export_run(runs["resnet10-3d"], "onnx", tmp_path / "r3d")
    assert len(done3d) == 2 and all(e.max_abs_diff <= PARITY_TOLERANCE for e in done3d)
    record = json.loads((tmp_path / "r3d" / "export.json").read_text())["input"]
    assert record["name"] == "volumes" and record["shape"] == ["N", 4, GRID, GRID, GRID]
    assert record["preprocessing"]["volume"]["grid"] == GRID  # how to make the volume
    volumes = torch.randn(2, 4, GRID, GRID, GRID), torch.randn(3, 4, GRID, GRID, GRID)
    weights = runs["densenet121-3d"] / "fold_1" / "model.safetensors"
    (tmp_path / "d3d").mkdir()
    dense3d = export_one(weights, "onnx", tmp_path / "d3d", *volumes, "cpu")
    assert dense3d.max_abs_diff <= PARITY_TOLERANCE


@pytest.mark.parametrize("name", OTHERS)
def test_the_bundle_names_the_backbone(runs, name, tmp_path):
    from monai.bundle import ConfigParser

    from gliograde.bundle import write_bundle
    from gliograde.model.network import GradeNet

    write_bundle(runs[name], tmp_path / "bundle")
    config = json.loads((tmp_path / "bundle" / "configs" / "inference.json").read_text())
    net = ConfigParser({"network_def": config["network_def"]}).get_parsed_content("network_def")
    assert isinstance(net, GradeNet) and net.spec.name == name


def test_the_runs_share_folds_and_selection_and_compare_pairs_them(runs, tmp_path):
    from gliograde.assess.compare import compare_runs
    from gliograde.assess.compare_view import comparison_table

    for run in runs.values():
        assert (run / "splits.json").read_text() == (runs["resnet18"] / "splits.json").read_text()
        for k in (0, 1):
            split = json.loads((run / f"fold_{k}" / "split.json").read_text())
            first = json.loads((runs["resnet18"] / f"fold_{k}" / "split.json").read_text())
            assert split == first and split["select"]  # the same inner selection split
    c = compare_runs(list(runs.values()), n_boot=300)
    assert [r.backbone for r in c.runs] == ["resnet18", *OTHERS]
    assert len(c.pairs) == 10 and c.n_patients == 10  # 5 runs: 10 pairs
    for pair in c.pairs:
        a, b = (next(r for r in c.runs if r.name == n) for n in (pair.a, pair.b))
        assert pair.bootstrap.difference == pytest.approx(a.auc - b.auc)
        assert 0 <= pair.delong.p_value <= 1
    table = comparison_table(c)
    assert table.count("DeLong se") == 10 and "resnet18-2.5d" in table and "resnet10-3d" in table
    assert all(r.training_seconds and r.peak_memory_mib for r in c.runs[1:])
    assert np.isfinite([r.seconds_per_patient for r in c.runs[1:]]).all()
