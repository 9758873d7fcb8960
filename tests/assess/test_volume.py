"""Grad-CAM back in the patient's grid: maps of the slices the model saw, as a NIfTI with the
shape and affine of the subject's own file, whatever that file's orientation."""

import nibabel as nib
import numpy as np
import pytest

from gliograde.assess.volume import cam_volume, write_cam_volume
from gliograde.io.nifti import reorient


def reference(tmp_path, codes, shape=(40, 48, 30)):
    """A volume stored in orientation ``codes`` (2 mm voxels, an origin off 0) holding a blob."""
    ornt = nib.orientations.axcodes2ornt(codes)
    affine = np.eye(4)
    for i, (axis, flip) in enumerate(ornt):
        affine[:3, i] = 0
        affine[int(axis), i] = 2.0 * flip
    affine[:3, 3] = (-40, 12, 7)
    data = np.zeros(shape, dtype=np.float32)
    data[8:16, 20:30, 5:12] = 1.0
    path = tmp_path / "flair.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), path)
    return path, data


@pytest.mark.parametrize("codes", [("L", "P", "S"), ("R", "A", "S"), ("A", "S", "R")])
def test_maps_of_the_slices_go_back_onto_the_file_as_it_is(tmp_path, codes):
    """Slices cut as the readers cut them (LPS, axial last), resized to the model's 32×32 and
    used as maps, come back with the file's exact shape and affine, on the blob."""
    import torch
    import torch.nn.functional as F

    path, data = reference(tmp_path, codes)
    image = nib.load(path)
    lps = reorient(np.asanyarray(image.dataobj), image.affine)
    z = np.flatnonzero(lps.any(axis=(0, 1)))
    slices = torch.from_numpy(np.ascontiguousarray(lps[:, :, z].transpose(2, 0, 1)))[:, None]
    maps = F.interpolate(slices, size=(32, 32), mode="bilinear")[:, 0].numpy() * 3.0
    out = write_cam_volume(tmp_path / "gradcam.nii.gz", cam_volume(maps, z, lps.shape), path)
    saved = nib.load(out)
    assert saved.shape == image.shape and np.array_equal(saved.affine, image.affine)
    cam = saved.get_fdata()
    assert cam.dtype == np.float64 and saved.get_data_dtype() == np.float32
    assert cam.max() == pytest.approx(1.0) and cam.min() >= 0
    inside = cam[data > 0].sum() / cam.sum()
    assert inside > 0.8  # the mass sits on the blob: the axes and flips are undone
    assert cam[data > 0].mean() > 0.5


def test_slices_the_model_did_not_see_are_zero_and_negative_maps_are_cut():
    maps = np.stack([np.full((4, 4), 2.0), np.full((4, 4), -1.0)])
    volume = cam_volume(maps, np.array([3, 5]), (8, 8, 10))
    assert volume[:, :, 3].min() == 1.0 and not volume[:, :, 5].any()
    assert not np.delete(volume, 3, axis=2).any()


def test_the_map_is_cut_to_the_brain():
    inside = np.zeros((8, 8, 4), dtype=bool)
    inside[2:6, 2:6] = True
    volume = cam_volume(np.ones((4, 4, 4)), np.arange(4), (8, 8, 4), inside=inside)
    assert volume[inside].min() == 1.0 and not volume[~inside].any()


def test_values_are_steps_of_one_1024th():
    volume = cam_volume(np.linspace(0, 1, 48).reshape(3, 4, 4), np.arange(3), (4, 4, 3))
    assert np.array_equal(volume * 1024, np.round(volume * 1024)) and volume.max() == 1.0
