"""The bench's own run folder must be one that predict accepts (timing a refusal would be
worthless). Nothing here is timed: benchmarks are a script, ``gliograde bench``."""

import shutil

import pytest


def test_the_timing_run_is_a_complete_run(tiny_store, tmp_path):
    from gliograde.bench.pipeline import timing_run
    from gliograde.infer.models import load_models
    from gliograde.run import Run

    store = tiny_store
    run = Run.open(timing_run(store, tmp_path / "timing-run", folds=5))
    models = load_models(run.weights())
    assert run.folds() == [0, 1, 2, 3, 4]  # the 5-fold ensemble users run
    first = [m.tumor_head.weight for m in models]
    assert all(not (first[0] == w).all() for w in first[1:])  # five different models
    assert run.calibration().rule("seg").threshold is None


@pytest.mark.skipif(shutil.which("fincore") is None, reason="needs util-linux's fincore")
def test_page_cache_is_counted_and_evicted(tmp_path):
    """The memory a file reader needs is seen (fincore) and can be dropped to time it cold."""
    import os

    from gliograde.bench.pagecache import evict, resident_bytes

    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(8 * 2**20))
    path.read_bytes()
    assert resident_bytes([path]) == 8 * 2**20
    evict([path])
    assert resident_bytes([path]) < 2**20  # on a disk-backed file system (not tmpfs)
    path.read_bytes()
    assert resident_bytes([path]) == 8 * 2**20


def fake_results():
    """Bench results by hand: every figure the verdicts read."""

    def loader(rate, memory):
        return {"slices_per_s": rate, "memory_mb": memory}

    return {
        "loaders": {
            "article": loader(10, 300),
            "monai_cache": loader(4000, 900),  # fastest MONAI
            "monai_cache_fp16": loader(3000, 500),  # leanest MONAI
            "monai_persistent": loader(800, 400),
            "monai_persistent_fp16": loader(1000, 300),  # faster MONAI on disk
            "store": loader(2000, 600),
            "store_resident": loader(8000, 450),
        },
        "memory": {"200": {"peak_anon_mb": 105}, "20": {"peak_anon_mb": 100}},
        "training": {
            "slices_per_s": {
                "alone_fp32": 30,
                "alone_bf16": 60,
                "end_to_end_fp32": 27,
                "end_to_end_bf16": 54,
                "end_to_end_bf16_resident": 57,
            },
            "auto_precision": "bf16",
            "flops": {"train_flop_per_slice": 10e9},
            "peak": {"peak": {"fp32": {"flop_per_s": 400e9}, "bf16": {"flop_per_s": 1200e9}}},
        },
        "prepare": {"1": {"ratio": 2.0}, "2": {"ratio": 1.2}},
        "predict": {"seg": {"wall_s": 7.0, "ratio": 1.4}, "noseg": {"wall_s": 9.0, "ratio": 1.8}},
        "raw_scan": {"wall_s": 95.0},
        "backbones": {
            "resnet18": {"peak_rss_mb": 9000.0, "grid": 0},  # 2D: not judged by this target
            "resnet10-3d": {"peak_rss_mb": 1500.0, "grid": 96},
            "densenet121-3d": {"peak_rss_mb": 2700.0, "grid": 96},
        },
    }


def test_verdicts_give_monai_its_best_setting_for_each_comparison():
    from gliograde.bench.report import verdicts

    v = verdicts(fake_results())
    assert v["store_vs_article"] == {"value": 200, "target": 100, "met": True}
    assert v["store_vs_monai_cache"]["value"] == 0.5  # against the faster cache (4000)
    assert v["store_mem_vs_monai_cache"]["value"] == 1.2  # against the leaner one (500 MB)
    assert v["store_vs_monai_persistent"]["value"] == 2.0  # against the faster one (1000)
    assert v["store_resident_vs_monai_cache"] == {"value": 2.0, "target": 1.5, "met": True}
    assert v["store_resident_mem_vs_monai_cache"]["value"] == 0.9  # 450 MB against 500 MB
    # train's own precision (bf16 here) on both sides; FLOP/s against bf16's peak
    assert v["train_vs_model"]["value"] == 0.9 and v["train_vs_model"]["met"]
    assert v["train_bf16_vs_fp32"]["value"] == 2.0
    assert v["train_vs_peak"] == {"value": 54 * 10e9 / 1200e9, "target": 0.5, "met": False}
    assert v["prepare_vs_floor"] == {"value": 2.0, "target": 2.5, "met": True}  # 1 worker
    assert v["anon_growth"]["value"] == 0.05
    assert v["predict_vs_forward_seg"]["met"] and not v["predict_vs_forward_noseg"]["met"]
    assert v["predict_ensemble_seg_s"] == {"value": 7.0, "target": None, "met": None}
    assert v["dicom_to_grade_s"] == {"value": 95.0, "target": 90.0, "met": False}


def test_train_vs_peak_uses_fp32_where_auto_is_fp32():
    from gliograde.bench.report import verdicts

    results = fake_results()
    results["training"]["auto_precision"] = "fp32"
    v = verdicts(results)
    assert v["train_vs_peak"]["value"] == 27 * 10e9 / 400e9
    assert v["train_vs_model"]["value"] == 27 / 30


def test_memory_that_could_not_be_counted_is_not_met():
    from gliograde.bench.report import verdicts

    results = fake_results()
    results["loaders"]["store"]["memory_mb"] = None  # no fincore: the page cache is unknown
    v = verdicts(results)["store_mem_vs_monai_cache"]
    assert v["value"] is None and v["met"] is False


@pytest.mark.slow  # every reader the bench compares, each with its cache
def test_each_loader_serves_the_store_slices(tiny_store, synth_small, tmp_path):
    """Every reader the bench compares runs on the same slices (a smoke test of the bench's
    readers; nothing is timed here)."""
    from gliograde.bench.loaders import LOADER_KINDS, measure_loader

    store = tiny_store
    for kind in LOADER_KINDS:
        cache = tmp_path / kind
        r = measure_loader(kind, str(synth_small), str(store), str(cache), 8, 16)
        assert r["slices"] == 16 and r["slices_per_s"] > 0, kind
        assert r["memory_mb"] is not None and r["memory_mb"] >= r["page_cache_mb"] >= 0
        if kind.startswith("monai_persistent"):
            assert r["file_mb"] > 0 and len(list(cache.rglob("*.pt"))) > 0


@pytest.mark.slow  # writes and reads a full-size DICOM head
def test_the_raw_scan_bench_grades_a_dicom_export_of_a_head(tmp_path):
    """The bench's raw head is a DICOM export of four identifiable series in their own grids,
    with a skull around the brain (what preprocess and its skull stripping are timed on)."""
    import nibabel as nib
    import numpy as np

    from gliograde.bench.scans import raw_export
    from gliograde.scans.inputs import raw_subjects

    export = raw_export(tmp_path)
    (subject,), errors, notes = raw_subjects([export])
    assert errors == {} and notes == []
    assert {s.number for s in subject.series.values()} == {2, 3, 4, 5}
    spacings = {
        role: np.round(np.sqrt((nib_affine(tmp_path, role)[:3, :3] ** 2).sum(0)), 2).tolist()
        for role in subject.series
    }
    assert spacings["flair"] == [0.9, 0.9, 4.0] and spacings["t1ce"] == [1.0, 1.0, 2.0]
    t1 = nib.load(tmp_path / "head" / "SYNTHETIC_head_t1.nii.gz")
    assert (np.asanyarray(t1.dataobj) > 0).sum() / 1000 > 2500  # mL: a head, not a brain


def nib_affine(root, role):
    import nibabel as nib

    return nib.load(root / "raw-nifti" / f"raw_{role}.nii.gz").affine


def test_bench_gpu_without_a_gpu_points_to_smoke_mode(monkeypatch):
    from gliograde.cli import tools
    from helpers.cli import invoke

    monkeypatch.setattr(tools, "gpu_present", lambda: False)
    result = invoke("bench", "--gpu")
    assert result.exit_code != 0 and "PyTorch sees no GPU here; add --smoke" in result.output


def test_the_3d_memory_verdict_reads_the_3d_networks_peak_alone():
    from gliograde.bench.report import verdicts

    results = fake_results()
    v = verdicts(results)["train_3d_peak_mb"]
    assert v == {"value": 2700.0, "target": 4096.0, "met": True}
    results["backbones"]["densenet121-3d"]["peak_rss_mb"] = 4400.0
    assert verdicts(results)["train_3d_peak_mb"]["met"] is False
    del results["backbones"]
    assert verdicts(results)["train_3d_peak_mb"]["met"] is False  # not measured: not met
