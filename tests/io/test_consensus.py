"""The quick count test for a lone sequence never clears one that the full test finds."""

import numpy as np
import pytest

from gliograde.io.consensus import lone_sequences, none_can_be_lone, nonzero_anywhere


@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_the_count_bound_never_clears_a_lone_sequence(dtype):
    rng = np.random.default_rng(0)
    cleared = 0
    for _ in range(300):
        brain = rng.random((12, 12, 6)) < rng.uniform(0.2, 0.9)
        images = np.stack(
            [brain & (rng.random(brain.shape) < rng.uniform(0.7, 1.0)) for _ in "abcd"]
        )
        c = rng.integers(4)
        images[c] |= rng.random(brain.shape) < rng.uniform(0, 0.5)  # a background of its own
        images = images.astype(dtype) * rng.integers(1, 100, images.shape).astype(dtype)
        if none_can_be_lone(images, nonzero_anywhere(images)):
            cleared += 1
            assert lone_sequences(images != 0) == []
    assert 0 < cleared < 300  # both answers were seen


def test_identical_masks_are_cleared_by_the_counts_alone():
    images = np.zeros((4, 8, 8, 4), dtype=np.int16)
    images[:, 2:6, 2:6] = 7
    assert none_can_be_lone(images, nonzero_anywhere(images))
    images[0, 0, 0, 0] = 3  # one voxel of FLAIR where no other sequence has any
    assert none_can_be_lone(images, nonzero_anywhere(images))  # 1 of 65 voxels: far below the share
    images[0, :, :, 0] = 3  # now 48 of FLAIR's 112 voxels are its alone
    assert not none_can_be_lone(images, nonzero_anywhere(images)) and lone_sequences(
        images != 0
    ) == [0]
