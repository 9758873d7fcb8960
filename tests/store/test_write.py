import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gliograde import MODALITIES
from gliograde.core.errors import DataError
from gliograde.preprocess.slices import PrepareConfig
from gliograde.store.dataset import SliceDataset
from gliograde.store.read import SliceStore
from gliograde.store.write import prepare
from helpers.corpus import CORRUPTIONS, first_subject
from helpers.data import read_lps, zscore_brain


def expected_slices(folder, min_tumor):
    """What prepare must store, computed here straight from the NIfTI files."""
    sid = folder.name
    raw = np.stack([read_lps(folder / f"{sid}_{m}.nii.gz") for m in MODALITIES])
    seg = read_lps(folder / f"{sid}_seg.nii.gz")
    brain = np.any(raw != 0, axis=0)
    zs = np.flatnonzero((seg > 0).sum(axis=(0, 1)) >= min_tumor)
    images = np.stack([zscore_brain(raw[c], brain) for c in range(4)])
    return zs, images[..., zs].transpose(3, 0, 1, 2), seg[..., zs].transpose(2, 0, 1)


@pytest.fixture(scope="module")
def small_store(synth_small, tmp_path_factory):
    out = tmp_path_factory.mktemp("store") / "store"
    prepare(synth_small, out, PrepareConfig("tumor", min_tumor_pixels=20, folds=3), quiet=True)
    return out


def test_store_matches_source_volumes(synth_small, small_store):
    store = SliceStore(small_store)
    assert store.manifest.n_slices == len(store.index) > 0
    assert store.manifest.channels == ("flair", "t1ce", "t1", "t2")
    assert store.manifest.synthetic is True
    for sid in store.subjects[:3]:
        zs, images, seg = expected_slices(synth_small / sid, 20)
        rows = store.index.subject == sid
        np.testing.assert_array_equal(store.index.z[rows], zs)
        stored = store.read_subject(sid, "images")
        assert stored.dtype == np.float16 and stored.flags.c_contiguous
        np.testing.assert_allclose(stored, images, atol=2e-2, rtol=2e-3)
        np.testing.assert_array_equal(store.read_subject(sid, "seg"), seg)
        np.testing.assert_array_equal(store.index.tumor_4[rows], (seg == 4).sum(axis=(1, 2)))
        assert set(np.unique(seg)) <= {0, 1, 2, 4}


@pytest.mark.slow  # prepares the four real subjects' full volumes
def test_channel_order_on_the_real_sample(sample_dir, tmp_path):
    prepare(sample_dir, tmp_path / "s", PrepareConfig("tumor"), workers=2, quiet=True)
    store = SliceStore(tmp_path / "s")
    assert store.subjects == sorted(store.labels) and len(store.subjects) == 4
    sid = "BraTS20_Training_309"
    zs, images, _ = expected_slices(sample_dir / sid, 100)
    np.testing.assert_array_equal(store.index.z[store.index.subject == sid], zs)
    stored = np.asarray(store.read_subject(sid, "images"), dtype=np.float32)
    for c in range(4):  # each channel equals its own modality, and not the others
        errors = [np.abs(stored[:, c] - images[:, k]).max() for k in range(4)]
        assert int(np.argmin(errors)) == c and errors[c] < 0.02
    labels = store.index.label[store.index.subject == sid]
    assert set(labels.tolist()) == {0}  # LGG


def test_resize(synth_small, tmp_path, small_store):
    prepare(
        synth_small,
        tmp_path / "r",
        PrepareConfig("tumor", min_tumor_pixels=20, size=32),
        quiet=True,
    )
    small = SliceStore(tmp_path / "r")
    native = SliceStore(small_store)
    assert small.manifest.slice_shape == (4, 32, 32)
    np.testing.assert_array_equal(small.index.tumor, native.index.tumor)  # native counts
    sid = small.subjects[0]
    expected = F.interpolate(
        torch.from_numpy(np.asarray(native.read_subject(sid, "images"), dtype=np.float32)),
        size=(32, 32),
        mode="bilinear",
        antialias=True,
        align_corners=False,
    )
    np.testing.assert_allclose(small.read_subject(sid, "images"), expected.numpy(), atol=3e-2)
    assert set(np.unique(small.read_subject(sid, "seg"))) <= {0, 1, 2, 4}


def test_brain_mode_keeps_brain_slices_and_counts_tumor(synth_small, tmp_path):
    prepare(synth_small, tmp_path / "b", PrepareConfig(slices="brain"), quiet=True)
    store = SliceStore(tmp_path / "b")
    sid = store.subjects[0]
    raw = read_lps(synth_small / sid / f"{sid}_flair.nii.gz")
    brain_per_z = (raw != 0).sum(axis=(0, 1))
    rows = store.index.subject == sid
    np.testing.assert_array_equal(
        store.index.z[rows], np.flatnonzero(brain_per_z >= 0.02 * 64 * 64)
    )
    assert (store.index.tumor[rows] == 0).any() and (store.index.tumor[rows] > 0).any()


def test_rerun_skips_complete_subjects_and_repairs_partial_ones(synth_small, tmp_path):
    out = tmp_path / "s"
    config = PrepareConfig(min_tumor_pixels=20)
    prepare(synth_small, out, config, quiet=True)
    first = {p.relative_to(out): p.read_bytes() for p in (out / "subjects").rglob("*.npy")}
    stamp = (out / "subjects" / "Synth_0002" / "images.npy").stat().st_mtime_ns
    # A crash mid-write leaves only a temporary folder: never taken as complete.
    import shutil

    shutil.rmtree(out / "subjects" / "Synth_0001")
    (out / "subjects" / ".tmp-Synth_0001-123").mkdir()
    (out / "subjects" / ".tmp-Synth_0001-123" / "images.npy").write_bytes(b"half")
    prepare(synth_small, out, config, quiet=True)
    again = {p.relative_to(out): p.read_bytes() for p in (out / "subjects").rglob("*.npy")}
    assert again == first
    assert (out / "subjects" / "Synth_0002" / "images.npy").stat().st_mtime_ns == stamp


def test_other_options_on_an_existing_store_are_refused(synth_small, small_store):
    with pytest.raises(Exception, match="prepared with other options"):
        prepare(synth_small, small_store, PrepareConfig("tumor", min_tumor_pixels=50), quiet=True)


def break_subject(cohort, sid="Synth_0004"):
    path = cohort / sid / f"{sid}_t2.nii.gz"
    path.write_bytes(path.read_bytes()[:2000])  # truncated: found only when voxels are read
    (cohort / "Synth_0006" / "Synth_0006_t1ce.nii.gz").unlink()  # found from the layout


def test_bad_subjects_refused_without_skip_bad(cohort_copy, tmp_path):
    break_subject(cohort_copy)
    out = tmp_path / "s"
    with pytest.raises(DataError) as err:
        prepare(cohort_copy, out, PrepareConfig(min_tumor_pixels=20), quiet=True)
    assert "Synth_0006: t1ce: file missing" in str(err.value)
    assert not (out / "manifest.json").exists()
    assert not list((out / "subjects").glob("*")) if (out / "subjects").exists() else True


def test_data_problem_found_late_rolls_back(cohort_copy, tmp_path):
    sid = "Synth_0004"
    path = cohort_copy / sid / f"{sid}_t2.nii.gz"
    path.write_bytes(path.read_bytes()[:2000])
    out = tmp_path / "s"
    with pytest.raises(DataError, match=r"Synth_0004: Synth_0004_t2\.nii\.gz: truncated"):
        prepare(cohort_copy, out, PrepareConfig(min_tumor_pixels=20), workers=2, quiet=True)
    assert not (out / "manifest.json").exists()
    assert list((out / "subjects").iterdir()) == []


def test_skip_bad_writes_the_good_ones(cohort_copy, tmp_path):
    break_subject(cohort_copy)
    manifest = prepare(
        cohort_copy, tmp_path / "s", PrepareConfig(min_tumor_pixels=20), skip_bad=True, quiet=True
    )
    assert sorted(manifest.skipped) == ["Synth_0004", "Synth_0006"]
    assert "truncated" in manifest.skipped["Synth_0004"]
    assert len(manifest.subjects) == 8
    on_disk = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert on_disk["skipped"] == manifest.skipped
    splits = json.loads((tmp_path / "s" / "splits.json").read_text())
    assert {s for f in splits for s in f["val"]} == set(manifest.subjects)


def test_dataset_batches_with_workers(small_store):
    from torch.utils.data import DataLoader

    ds = SliceDataset(small_store)
    loader = DataLoader(ds, batch_size=8, num_workers=2, shuffle=False)
    batch = next(iter(loader))
    assert batch["x"].shape == (8, 4, 64, 64) and batch["x"].dtype == torch.float32
    store = SliceStore(small_store)
    first = store.index.subject[0]
    expected_y = 1 if store.labels[first] == "HGG" else 0
    assert batch["y"][0].item() == expected_y
    assert batch["subject"][0] == first and batch["z"][0].item() == store.index.z[0]
    np.testing.assert_array_equal(
        batch["x"][0].numpy(), store.read_subject(first, "images")[0].astype(np.float32)
    )
    assert sum(len(b["y"]) for b in loader) == len(ds)


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__.removeprefix("corrupt_"))
def test_each_bad_input_through_prepare(cohort_copy, tmp_path, corrupt):
    folder = first_subject(cohort_copy)
    expected = corrupt(folder)
    refused = tmp_path / "refused"
    with pytest.raises(DataError) as err:
        prepare(cohort_copy, refused, PrepareConfig(min_tumor_pixels=20), workers=1, quiet=True)
    assert folder.name in str(err.value) and expected in str(err.value)
    written = list((refused / "subjects").iterdir()) if (refused / "subjects").exists() else []
    assert written == [] and not (refused / "manifest.json").exists()

    manifest = prepare(
        cohort_copy,
        tmp_path / "s",
        PrepareConfig(min_tumor_pixels=20),
        workers=1,
        skip_bad=True,
        quiet=True,
    )
    assert list(manifest.skipped) == [folder.name]
    assert expected in manifest.skipped[folder.name]
    good = sorted(p.name for p in cohort_copy.iterdir() if p.is_dir() and p != folder)
    assert manifest.subjects == good
    assert sorted(p.name for p in (tmp_path / "s" / "subjects").iterdir()) == good


def test_a_store_is_never_split_again(synth_small, small_store):
    before = (small_store / "splits.json").read_bytes()
    for options in ({"folds": 2}, {"seed": 7}):
        config = PrepareConfig("tumor", min_tumor_pixels=20, **{"folds": 3, **options})
        with pytest.raises(Exception, match="already split into folds"):
            prepare(synth_small, small_store, config, quiet=True)
    assert (small_store / "splits.json").read_bytes() == before


def test_a_training_store_needs_every_segmentation(cohort_copy, tmp_path):
    sid = sorted(p.name for p in cohort_copy.iterdir() if p.is_dir())[0]
    (cohort_copy / sid / f"{sid}_seg.nii.gz").unlink()
    with pytest.raises(DataError, match="no segmentation: training needs one"):
        prepare(cohort_copy, tmp_path / "s", PrepareConfig(min_tumor_pixels=20), quiet=True)
    assert not (tmp_path / "s" / "subjects" / sid).exists()


def test_a_cohort_with_mixed_in_plane_shapes_is_refused_at_native_size(cohort_copy, tmp_path):
    import nibabel as nib

    sid = sorted(p.name for p in cohort_copy.iterdir() if p.is_dir())[1]
    for path in (cohort_copy / sid).iterdir():  # this subject's plane becomes 72×64
        img = nib.load(path)
        data = np.pad(np.asanyarray(img.dataobj), ((4, 4), (0, 0), (0, 0)))
        nib.save(nib.Nifti1Image(data, img.affine), path)
    with pytest.raises(DataError, match=rf"{sid}: in-plane shape 72×64 differs from the store's"):
        prepare(cohort_copy, tmp_path / "s", PrepareConfig(min_tumor_pixels=20), quiet=True)
    assert not (tmp_path / "s" / "subjects").exists()
    resized = prepare(cohort_copy, tmp_path / "r", PrepareConfig(size=32), quiet=True)
    assert sid in resized.subjects  # with --size every plane is resized: no mismatch


def test_a_full_disk_leaves_the_store_as_it_was(synth_small, cohort_copy, tmp_path, monkeypatch):
    import errno

    from gliograde.store import write

    store = tmp_path / "s"
    subjects = sorted(p.name for p in cohort_copy.iterdir() if p.is_dir())
    first = cohort_copy.parent / "first"
    first.mkdir()
    for sid in subjects[:4]:  # a store that already holds 4 subjects
        shutil.copytree(cohort_copy / sid, first / sid)
    shutil.copy(cohort_copy / "name_mapping.csv", first)
    prepare(first, store, PrepareConfig(min_tumor_pixels=20, folds=2), quiet=True)
    before = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    calls = []
    save = write.save_npy

    def fills_up(path, array):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        save(path, array)

    monkeypatch.setattr(write, "save_npy", fills_up)
    with pytest.raises(DataError, match="no space left on the disk"):
        prepare(cohort_copy, store, PrepareConfig(min_tumor_pixels=20, folds=2), quiet=True)
    after = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    assert after == before
    with pytest.raises(DataError, match="no space left on the disk"):
        calls.clear()
        prepare(cohort_copy, tmp_path / "new", PrepareConfig(min_tumor_pixels=20), quiet=True)
    assert not (tmp_path / "new").exists()


def test_a_second_writer_is_told_who_holds_the_store(synth_small, tmp_path):
    from gliograde.core.lock import FolderBusy
    from helpers.processes import lock_held_elsewhere

    store = tmp_path / "s"
    config = PrepareConfig(min_tumor_pixels=20)
    with (
        lock_held_elsewhere(store, "gliograde prepare") as pid,
        pytest.raises(FolderBusy, match=rf"being written by process {pid} on "),
    ):
        prepare(synth_small, store, config, quiet=True)
    manifest = prepare(synth_small, store, PrepareConfig(min_tumor_pixels=20), quiet=True)
    assert len(manifest.subjects) == 10  # the lock went with its holder, even killed


def test_a_full_disk_while_writing_the_manifest_puts_back_index_and_splits(
    cohort_copy, tmp_path, monkeypatch
):
    import errno

    from gliograde.store import write

    store = tmp_path / "s"
    subjects = sorted(p.name for p in cohort_copy.iterdir() if p.is_dir())
    first = tmp_path / "first"
    first.mkdir()
    for sid in subjects[:4]:
        shutil.copytree(cohort_copy / sid, first / sid)
    shutil.copy(cohort_copy / "name_mapping.csv", first)
    prepare(first, store, PrepareConfig(min_tumor_pixels=20, folds=2), quiet=True)
    before = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    write_json = write.write_json

    def fills_up(path, obj):
        if path.name == "manifest.json":
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        write_json(path, obj)

    monkeypatch.setattr(write, "write_json", fills_up)
    with pytest.raises(DataError, match="no space left on the disk"):
        prepare(cohort_copy, store, PrepareConfig(min_tumor_pixels=20, folds=2), quiet=True)
    assert {p: p.read_bytes() for p in store.rglob("*") if p.is_file()} == before
