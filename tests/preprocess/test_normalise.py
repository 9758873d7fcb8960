"""Robust z-score over the brain, and the exact integer statistics prepare uses."""

import numpy as np
import pytest

from gliograde.preprocess.normalise import brain_stats
from helpers.data import zscore_brain


def test_zscore_brain_by_hand():
    vol = np.array([0.0, 2.0, 4.0, 6.0, 0.0])
    brain = vol > 0
    out = zscore_brain(vol, brain, clip=(0.0, 100.0))
    # brain values 2, 4, 6: mean 4, population std sqrt(8/3)
    np.testing.assert_allclose(out, [0, -2 / np.sqrt(8 / 3), 0, 2 / np.sqrt(8 / 3), 0], rtol=1e-6)


def test_zscore_brain_clips_outliers():
    rng = np.random.default_rng(0)
    vol = rng.normal(100, 10, 10_000)
    vol[0] = 1e6  # one hot voxel
    out = zscore_brain(vol, np.ones_like(vol, bool))
    assert abs(out[1:].mean()) < 0.05 and abs(out[1:].std() - 1) < 0.05
    assert out[0] < 4  # clipped at the 99.5th percentile


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.int32])
def test_integer_statistics_equal_numpys_percentile_path(dtype):
    rng = np.random.default_rng(7)
    vol = np.zeros((30, 30, 20), dtype=dtype)
    brain = np.zeros(vol.shape, bool)
    brain[5:25, 5:25, 3:17] = True
    low = -50 if np.dtype(dtype).kind == "i" else 0
    vol[brain] = rng.integers(low, 3000, brain.sum())
    vol[10, 10, 10] = 0  # a zero inside the brain counts (another modality is non-zero there)
    vol[12, 12, 12] = 30000  # a hot voxel
    got = brain_stats(vol, brain)
    values = vol[brain].astype(np.float64)
    lo, hi = np.percentile(values, (0.5, 99.5))
    clipped = np.clip(values, lo, hi)
    np.testing.assert_allclose(got, (lo, hi, clipped.mean(), clipped.std()), rtol=1e-12)
    float_path = brain_stats(vol.astype(np.float32), brain)
    np.testing.assert_allclose(got, float_path, rtol=1e-6)


def test_a_constant_volume_without_background_has_exact_statistics():
    vol = np.full((6, 6, 4), 500, dtype=np.int16)  # no zero anywhere: no background bin
    low, high, mean, std = brain_stats(vol, np.ones(vol.shape, bool))
    assert (low, high, mean, std) == (500.0, 500.0, 500.0, 0.0)


@pytest.mark.parametrize(
    "dtype, low, high",
    [
        (np.int16, 0, 3000),
        (np.int16, -400, 2000),  # a negative minimum
        (np.uint8, 0, 255),
        (np.uint16, 10, 60000),
        (np.int32, 2**24 - 500, 2**24 + 500),  # above float32's exact integers
        (np.float32, 0, 1000),
    ],
)
@pytest.mark.parametrize("out_dtype", [np.float16, np.float32])
def test_the_lookup_z_score_gives_the_bytes_of_computing_each_voxel(dtype, low, high, out_dtype):
    from gliograde.preprocess.normalise import apply_zscore, zscore_slices

    rng = np.random.default_rng(1)
    volume = rng.integers(low, high, size=(5, 30, 40)).astype(dtype)
    outside = rng.random(volume.shape) < 0.3
    stats = (low + 0.1 * (high - low), low + 0.9 * (high - low), (low + high) / 2, (high - low) / 5)
    expected = apply_zscore(volume, outside, stats).astype(out_dtype)
    got = zscore_slices(volume, outside, stats, out_dtype)
    assert got.dtype == out_dtype
    assert got.tobytes() == expected.tobytes()
