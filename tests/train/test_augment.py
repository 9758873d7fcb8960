"""Batched augmentation."""

import torch

from gliograde.train.augment import augment_batch


def test_augmentation_changes_a_sequence_alike_in_every_neighbouring_slice():
    """2.5D: the same sequence of the slice and its neighbours gets one intensity change; 2D
    draws are those of one group of four channels."""
    torch.manual_seed(0)
    slice_ = torch.randn(2, 4, 16, 16)
    stacked = torch.cat([slice_, slice_, slice_], dim=1)
    out = augment_batch(stacked, generator=torch.Generator().manual_seed(3), sequences=4)
    torch.testing.assert_close(out[:, 0:4], out[:, 4:8], rtol=0, atol=0)
    torch.testing.assert_close(out[:, 8:12], out[:, 4:8], rtol=0, atol=0)
    alone = augment_batch(slice_, generator=torch.Generator().manual_seed(3), sequences=4)
    torch.testing.assert_close(alone, out[:, 0:4], rtol=0, atol=0)
    free = augment_batch(stacked, generator=torch.Generator().manual_seed(3))
    assert not torch.equal(free[:, 0:4], free[:, 4:8])  # each channel its own draw


def test_a_volume_is_augmented_as_each_of_its_planes_with_one_draw():
    """Each axial plane of a volume gets the draw :func:`augment_batch` gives that plane alone
    (a rotation about z, the same flips and intensity change throughout)."""
    from gliograde.train.augment import augment_volumes

    torch.manual_seed(0)
    x = torch.randn(2, 4, 3, 16, 16)
    x[:, :, :, :2] = 0  # background stays 0
    out = augment_volumes(x, generator=torch.Generator().manual_seed(5), sequences=4)
    assert out.shape == x.shape
    for z in range(3):
        plane = augment_batch(x[:, :, z], generator=torch.Generator().manual_seed(5), sequences=4)
        torch.testing.assert_close(out[:, :, z], plane)
