"""The 3D networks' volumes: the brain's box, the fixed grid, the way back onto the slices, and
the volume store ``prepare --volumes`` writes, which must hold what ``predict`` computes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from gliograde.core.errors import GliogradeError
from gliograde.store.volumes import (
    Box,
    VolumeStore,
    brain_box,
    check_adjacent,
    on_slices,
    volume_of,
    volumes_dir,
    write_volumes,
)
from helpers.cli import invoke


def slices_with_a_block() -> np.ndarray:
    """10 slices of 4×20×30, non-zero in slices 2–7, rows 5–14, columns 10–24 only."""
    x = np.zeros((10, 4, 20, 30), dtype=np.float16)
    x[2:8, :, 5:15, 10:25] = 1.5
    x[4, 2, 9, 12] = -2.0  # one sequence non-zero is brain too
    return x


def test_the_box_is_where_any_sequence_is_non_zero():
    assert brain_box(slices_with_a_block()) == Box(2, 8, 5, 15, 10, 25)
    assert brain_box(np.zeros((3, 4, 8, 8))) == Box(0, 3, 0, 8, 0, 8)  # no brain: everything


def test_a_volume_is_the_box_resampled_to_the_grid_in_float16():
    x = slices_with_a_block()
    x[4, 2, 9, 12] = 1.5  # a uniform block
    volume, box = volume_of(x, 32)
    assert volume.shape == (4, 32, 32, 32) and volume.dtype == torch.float16
    assert box.shape == (6, 10, 15)
    assert torch.all(volume == 1.5)  # the box holds the block alone: no background resampled in


def test_the_axes_are_z_then_the_slices_own():
    """``[4, z, x, y]``: a volume made of slices that differ only along z keeps that order."""
    x = (
        np.ones((4, 4, 8, 8), dtype=np.float16)
        * np.arange(1, 5, dtype=np.float16)[:, None, None, None]
    )
    volume, _ = volume_of(x, 32)
    profile = volume[0, :, 16, 16].float().numpy()
    assert np.all(np.diff(profile) >= 0) and profile[0] == 1 and profile[-1] == 4
    assert torch.all(volume[1, 3] == volume[1, 3, 0, 0])  # each z plane uniform


def test_a_map_goes_back_into_the_box_and_nowhere_else():
    box = Box(2, 8, 5, 15, 10, 25)
    back = on_slices(np.full((32, 32, 32), 0.7), box, (10, 20, 30))
    assert back.shape == (10, 20, 30)
    assert np.allclose(back[2:8, 5:15, 10:25], 0.7)
    back[2:8, 5:15, 10:25] = 0
    assert not back.any()


def test_slices_with_gaps_are_refused():
    check_adjacent(np.array([3, 4, 5]), "A")
    with pytest.raises(GliogradeError, match=r"^A: its slices are not one run of adjacent"):
        check_adjacent(np.array([3, 4, 7]), "A")


def test_the_stored_volume_is_what_predict_computes(tiny_store, synth_small, tmp_path):
    """Training reads the store's volumes; predict computes a new patient's from its own
    preprocessing: for a patient of the store the two are equal to the bit."""
    from gliograde.io.layouts import subject_from_folder
    from gliograde.preprocess.slices import preprocess_subject
    from gliograde.store.read import SliceStore

    store = tmp_path / "store"
    shutil.copytree(tiny_store, store)
    opened = SliceStore(store)
    assert write_volumes(opened, 32) == len(opened.subjects)
    assert write_volumes(opened, 32) == 0  # written once
    volumes = VolumeStore(opened, 32)
    subject = subject_from_folder(synth_small / "Synth_0004")
    slices = preprocess_subject(subject, opened.manifest.prepare_config(), use_seg=True)
    computed, _ = volume_of(slices.images, 32)
    stored = volumes.read("Synth_0004")
    assert stored.dtype == np.float16 and np.array_equal(stored, computed.numpy())


def test_a_missing_volume_folder_says_how_to_write_it(tiny_store):
    from gliograde.store.read import SliceStore

    with pytest.raises(GliogradeError, match=r"no 48³ volume for 10 of the store's subjects"):
        VolumeStore(SliceStore(tiny_store), 48)


def test_prepare_writes_the_volumes_and_refuses_a_grid_no_network_takes(synth_small, tmp_path):
    refused = invoke("prepare", synth_small, "--out", tmp_path / "s", "--volumes", "16")
    assert refused.exit_code != 0 and "--volumes 16: choose a grid of 32 to 256" in refused.stderr
    tumour = invoke("prepare", synth_small, "--out", tmp_path / "s", "--slices", "tumor",
                    "--volumes", "32")  # fmt: skip
    assert (
        tumour.exit_code != 0 and "--volumes goes with a store of --slices brain" in tumour.stderr
    )
    assert not (tmp_path / "s").exists()  # refused before any subject was read
    done = invoke("prepare", synth_small, "--out", tmp_path / "s", "--size", "32",
                  "--volumes", "32", "--workers", "1")  # fmt: skip
    assert done.exit_code == 0, done.stderr
    assert "10 volumes of 4×32³ written" in done.stdout
    assert len(list(volumes_dir(tmp_path / "s", 32).glob("*.npy"))) == 10
    more = invoke("prepare", "--out", tmp_path / "s", "--volumes", "48")  # no DATA: the store's
    assert more.exit_code == 0 and "10 volumes of 4×48³ written" in more.stdout, more.stderr
    assert invoke("prepare", "--out", tmp_path / "s").exit_code != 0  # neither DATA nor volumes


def test_shrinking_an_axis_smooths_it_first():
    """Slices alternating 1 and 2, 96 of them to 32: trilinear alone would sample every third
    slice and keep a stripe pattern (aliasing); smoothed first, the stripes are gone."""
    x = np.ones((96, 4, 8, 8), dtype=np.float16)
    x[1::2] = 2.0
    volume, _ = volume_of(x, 32)
    profile = volume[0, :, 16, 16].float().numpy()
    assert abs(profile[8:24].mean() - 1.5) < 0.05 and profile[8:24].std() < 0.05
