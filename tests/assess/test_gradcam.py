import numpy as np
import pytest
import torch

from gliograde import GRADES
from gliograde.assess.gradcam import (
    attention_metrics,
    choose_slices,
    grad_cam_maps,
    slice_cams,
    summarise_attention,
)
from gliograde.model.network import GradeNet


def test_heat_map_inside_the_tumor_has_share_1_and_a_hit():
    tumor = np.zeros((8, 8), bool)
    tumor[2:4, 2:4] = True
    brain = np.zeros((8, 8), bool)
    brain[1:7, 1:7] = True
    cam = np.where(tumor, 1.0, 0.0)
    cam[2, 3] = 5.0
    a = attention_metrics(cam, tumor, brain)
    assert a == {"share_tumor": 1.0, "share_brain": 1.0, "hit": True, "chance": 4 / 36}


def test_heat_map_outside_has_share_0_and_no_hit():
    tumor = np.zeros((8, 8), bool)
    tumor[0, 0] = True
    cam = np.zeros((8, 8))
    cam[5, 5] = 2.0
    cam[6, 6] = -3.0  # negative values do not count
    a = attention_metrics(cam, tumor, np.ones((8, 8), bool))
    assert a["share_tumor"] == 0.0 and a["hit"] is False and a["share_brain"] == 1.0


def test_summary_counts_patients_above_chance():
    rows = [
        {"subject": "A", "share_tumor": 0.5, "share_brain": 1.0, "hit": True, "chance": 0.1},
        {"subject": "A", "share_tumor": 0.3, "share_brain": 0.9, "hit": False, "chance": 0.1},
        {"subject": "B", "share_tumor": 0.05, "share_brain": 0.8, "hit": False, "chance": 0.2},
    ]
    s = summarise_attention(rows)
    assert s["n_patients"] == 2 and s["share_patients_above_chance"] == 0.5
    assert s["hit_rate"] == pytest.approx(1 / 3)
    assert s["mean_share_tumor"] == pytest.approx(0.85 / 3)


def test_grad_cam_maps_have_the_input_size_and_are_non_negative():
    torch.manual_seed(0)
    model = GradeNet().eval()
    maps = grad_cam_maps([model], torch.randn(3, 4, 64, 64), class_idx=1)
    assert maps.shape == (3, 64, 64) and (maps >= 0).all() and maps.sum() > 0


def test_most_informative_slices_follow_the_predicted_grade():
    from gliograde.assess.explain import Case

    p1 = np.array([0.9, 0.2, 0.6, 0.99, 0.1])
    p = np.stack([1 - p1, p1], axis=1)
    tumor = np.array([True, True, True, False, True])
    hgg, lgg = (Case("s", None, None, None, p, [1 - v, v], GRADES) for v in (0.8, 0.3))
    assert (hgg.predicted, lgg.predicted) == (1, 0)
    assert choose_slices(hgg.strength(), tumor, 2).tolist() == [0, 2]
    assert choose_slices(lgg.strength(), tumor, 2).tolist() == [1, 4]


def test_most_informative_slices_of_three_classes_are_those_of_the_answer():
    from gliograde.assess.explain import Case

    slice_p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]])
    case = Case("s", None, None, None, slice_p, [0.2, 0.3, 0.5], ("2", "3", "4"))
    assert (case.predicted, case.shown, case.p_shown(case.p_patient)) == (2, "4", 0.5)
    assert choose_slices(case.strength(), np.ones(4, bool), 2).tolist() == [1, 2]


def test_a_3d_map_is_computed_on_the_volume_and_laid_back_on_the_brains_slices():
    """A 3D network's Grad-CAM is one map on the volume, taken back into the brain's box on
    the patient's slices: zero outside the box, and the map of the slices asked for."""
    from gliograde.infer.models import Models

    torch.manual_seed(0)
    net = GradeNet(backbone="resnet10-3d", grid=32).eval()
    models = Models([net], grid=32)
    images = np.zeros((12, 4, 40, 40), dtype=np.float16)
    images[2:10, :, 5:30, 8:36] = np.random.default_rng(0).normal(size=(8, 4, 25, 28))
    maps = slice_cams(models, images, None, 1, "gradcam", "layer1")
    assert maps.shape == (12, 40, 40) and np.abs(maps).sum() > 0
    outside = maps.copy()
    outside[2:10, 5:30, 8:36] = 0
    assert not outside.any()
    some = slice_cams(models, images, np.array([3, 7]), 1, "gradcam", "layer1")
    np.testing.assert_allclose(some, maps[[3, 7]], rtol=1e-5, atol=1e-7)
