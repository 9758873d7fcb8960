"""The viewer page's volumes: cut to the brain, quantised, on the same world coordinates as the
subject's own files; its slice strip placed at the slices' world positions."""

import base64
import gzip
import json
import re

import nibabel as nib
import numpy as np
import pytest

from gliograde.assess.viewer import (
    SCRIPT,
    ViewerCase,
    ViewerFiles,
    brain_box,
    cropped_affine,
    nifti_base64,
    outline,
    quantised,
    slice_positions,
    write_script,
    write_viewer,
)
from gliograde.core.errors import GliogradeError
from gliograde.io.cohort import Subject


def test_brain_box_holds_every_non_zero_voxel_of_any_sequence_plus_the_margin():
    a, b = np.zeros((20, 30, 10)), np.zeros((20, 30, 10))
    a[5:8, 10:12, 3] = 1
    b[9, 4, 7] = 2
    assert brain_box([a, b], margin=2) == (slice(3, 12), slice(2, 14), slice(1, 10))
    assert brain_box([a, b], margin=0) == (slice(5, 10), slice(4, 12), slice(3, 8))


def test_quantised_maps_zero_to_zero_and_the_brains_top_to_the_last_level():
    volume = np.zeros(1000, dtype=np.float32)
    volume[:200] = np.linspace(1, 200, 200)
    q = quantised(volume, levels=127)
    high = np.percentile(volume[volume != 0], 99.5)
    assert q.dtype == np.uint8 and q[200:].max() == 0 and q.max() == 127
    assert q[99] == round(100 * 127 / high)  # a voxel of 100, on the brain's scale
    assert not quantised(np.zeros(10)).any()


def test_outline_is_the_surface_of_the_tumour():
    seg = np.zeros((9, 9, 9), dtype=np.uint8)
    seg[2:7, 2:7, 2:7] = 4
    edge = outline(seg)
    assert edge.sum() == 5**3 - 3**3  # the cube's shell: every voxel but the inner 3×3×3
    assert edge[4, 4, 4] == 0 and edge[2, 4, 4] == 1 and edge[1, 4, 4] == 0


def test_a_cut_volume_keeps_its_voxels_world_positions():
    affine = np.array([[-1.0, 0, 0, 90], [0, -1.2, 0, 120], [0, 0, 1.5, -70], [0, 0, 0, 1]])
    box = (slice(10, 50), slice(5, 60), slice(3, 30))
    cut = cropped_affine(affine, box)
    voxel = np.array([12, 7, 4])
    assert np.allclose(
        nib.affines.apply_affine(cut, voxel),
        nib.affines.apply_affine(affine, voxel + [10, 5, 3]),
    )


def test_nifti_base64_is_what_nibabel_reads_back():
    data = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    affine = np.diag([-1.0, -1.0, 2.0, 1.0])
    raw = gzip.decompress(base64.b64decode(nifti_base64(data, affine)))
    image = nib.Nifti1Image.from_bytes(raw)
    assert np.array_equal(np.asanyarray(image.dataobj), data)
    assert np.array_equal(image.affine, affine) and image.get_data_dtype() == np.uint8


@pytest.mark.parametrize("codes", [("L", "P", "S"), ("R", "A", "S"), ("A", "I", "R")])
def test_slice_positions_give_each_axial_slice_its_world_height(codes):
    """An axial slice z of the LPS volume the model saw is at the file's voxel that LPS
    reorientation put there: its S coordinate, whichever way the file is stored."""
    from gliograde.io.nifti import reorient

    ornt = nib.orientations.axcodes2ornt(codes)
    affine = np.eye(4)
    for i, (axis, flip) in enumerate(ornt):
        affine[:3, i] = 0
        affine[int(axis), i] = 2.0 * flip
    affine[:3, 3] = (-30, 20, -40)
    shape = (12, 14, 16)
    heights = nib.affines.apply_affine(affine, np.indices(shape).reshape(3, -1).T)[:, 2]
    s_lps = reorient(heights.reshape(shape), affine)  # each voxel's height, as the model saw it
    z = np.array([0, 3, s_lps.shape[2] - 1])
    axis, s_mm = slice_positions(affine, shape, z)
    assert codes[axis] in ("S", "I")
    assert np.allclose(s_mm, s_lps[0, 0, z])


@pytest.fixture
def subject_files(tmp_path):
    """Four sequences, a segmentation and a Grad-CAM volume on one 2-mm RAS grid, with a
    slices.csv of three slices."""
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = (-40, -40, -20)
    brain = np.zeros((40, 40, 20), dtype=np.float32)
    brain[8:32, 6:34, 3:17] = 100.0
    files = {}
    for k, role in enumerate(("flair", "t1ce", "t1", "t2")):
        files[role] = tmp_path / f"s_{role}.nii.gz"
        nib.save(nib.Nifti1Image(brain * (k + 1), affine), files[role])
    seg = np.zeros(brain.shape, dtype=np.uint8)
    seg[12:18, 10:16, 8:12] = 1
    files["seg"] = tmp_path / "s_seg.nii.gz"
    nib.save(nib.Nifti1Image(seg, affine), files["seg"])
    cam = seg.astype(np.float32) * 0.5
    cam[14, 12, 9] = 1.0
    nib.save(nib.Nifti1Image(cam, affine), tmp_path / "gradcam.nii.gz")
    table = "z,class,p_class,p_tumor\n8,HGG,0.7,0.9\n9,HGG,0.8,0.95\n10,HGG,0.6,0.2\n"
    (tmp_path / "slices.csv").write_text(table)
    subject = Subject("s", None, files, tmp_path)
    return ViewerFiles(subject, tmp_path / "gradcam.nii.gz", tmp_path / "slices.csv")


def page_data(page_path):
    text = page_path.read_text()
    found = re.search(r'<script type="application/json" id="gg-data">(.*?)</script>', text, re.S)
    return text, json.loads(found.group(1))


def test_the_page_carries_the_volumes_on_the_subjects_world_grid(subject_files, tmp_path):
    case = ViewerCase("S", "HGG", 0.83, "HGG", True, synthetic=True, notes=["a note"])
    out = tmp_path / "explain"
    page = write_viewer(out / "S", case, subject_files, write_script(out))
    text, data = page_data(page)
    assert f'<script src="../{SCRIPT}">' in text and (out / SCRIPT).is_file()
    assert data["case"] == {
        "subject": "S", "answer": "HGG", "p": 0.83, "of": "HGG", "flag": True,
        "synthetic": True, "trained_on_synthetic": False, "notes": ["a note"], "calibrated": True,
    }  # fmt: skip
    names = [v["name"] for v in data["volumes"]]
    assert names == ["FLAIR", "T1ce", "T1", "T2", "Grad-CAM", "tumour"]
    images = {
        v["name"]: nib.Nifti1Image.from_bytes(gzip.decompress(base64.b64decode(v["base64"])))
        for v in data["volumes"]
    }
    flair = images["FLAIR"]
    assert flair.shape == (24 + 4, 28 + 4, 14 + 4)  # the brain's box and 2 voxels each side
    corner = nib.affines.apply_affine(flair.affine, [2, 2, 2])  # the brain's first voxel
    assert np.allclose(corner, [-40 + 2 * 8, -40 + 2 * 6, -20 + 2 * 3])
    assert np.asanyarray(flair.dataobj).max() == 127
    cam = np.asanyarray(images["Grad-CAM"].dataobj)
    assert cam.max() == 255 and np.argwhere(cam == 255).tolist() == [[14 - 6, 12 - 4, 9 - 1]]
    assert np.allclose(data["start_mm"], [-40 + 2 * 14, -40 + 2 * 12, -20 + 2 * 9])
    assert data["slices"]["z"] == [8, 9, 10] and data["slices"]["p_class"] == [0.7, 0.8, 0.6]
    assert np.allclose(data["slices"]["s_mm"], [-20 + 2 * 8, -20 + 2 * 9, -20 + 2 * 10])


def test_a_page_without_a_segmentation_has_no_outline(subject_files, tmp_path):
    del subject_files.subject.files["seg"]
    case = ViewerCase("S", "LGG", 0.2, "HGG", False)
    _, data = page_data(write_viewer(tmp_path / "v", case, subject_files, write_script(tmp_path)))
    assert [v["kind"] for v in data["volumes"]] == ["sequence"] * 4 + ["map"]


def test_a_volume_off_the_flairs_grid_is_refused(subject_files, tmp_path):
    image = nib.load(subject_files.cam)
    moved = image.affine.copy()
    moved[0, 3] += 5.0
    nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj), moved), subject_files.cam)
    case = ViewerCase("S", "LGG", 0.2, "HGG", False)
    with pytest.raises(GliogradeError, match="not on the FLAIR's grid"):
        write_viewer(tmp_path / "v", case, subject_files, write_script(tmp_path))


def test_a_note_cannot_end_the_pages_script(subject_files, tmp_path):
    case = ViewerCase("S", "HGG", 0.8, "HGG", False, notes=["</script><!-- x"])
    page = write_viewer(tmp_path / "v", case, subject_files, write_script(tmp_path))
    text, data = page_data(page)
    assert data["case"]["notes"] == ["</script><!-- x"]
    assert "</script><!--" not in text.split('id="gg-data">', 1)[1].split("</script>", 1)[0]
