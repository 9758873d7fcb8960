"""The one patient rule, by hand: aggregation, spreads, calibration, uncertainty and flag."""

import numpy as np
import pytest
import torch

from gliograde import GRADES
from gliograde.infer.patient import Evidence, patient_evidence, patient_result, top_slices
from gliograde.model.probability import normalised_entropy
from gliograde.run.calibration import IDENTITY, CalibrationRule


def two(p1: float) -> np.ndarray:
    return np.array([1.0 - p1, p1])


def test_top_slices_picks_the_most_tumor_in_slice_order():
    scores = np.array([5, 1, 9, 9, 0, 7])
    assert top_slices(scores, k=3).tolist() == [2, 3, 5]
    assert top_slices(scores, k=10).tolist() == [0, 1, 2, 3, 4, 5]


class Constant(torch.nn.Module):
    """A stand-in model whose P(HGG) on a slice is the slice's first pixel (flips change it)."""

    def forward_heads(self, x):
        p = x[:, 0, 0, 0].clamp(1e-4, 1 - 1e-4)
        logits = torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))], dim=1)
        return logits, torch.zeros_like(p)


def test_patient_evidence_by_hand():
    x = torch.tensor([0.8, 0.4, 0.1])[:, None, None, None].repeat(1, 4, 8, 8)  # flat slices
    x[0, 0, -1, 0] = 0.2  # slice 0 mirrored left-right says 0.2 instead of 0.8
    p_hgg = np.array([[0.8, 0.4, 0.1]])
    p_class = np.stack([1 - p_hgg, p_hgg], axis=-1)  # [models, slices, classes]
    pixels = np.array([300, 200, 0])
    e = patient_evidence([Constant()], x, p_class, np.zeros((1, 3)), pixels, min_tumor=100)
    assert e.p == pytest.approx([0.4, 0.6]) and e.n_slices == 2 and e.used_seg
    assert e.slice_p.shape == (3, 2)
    assert e.slice_spread == pytest.approx(0.2) and e.fold_spread == 0.0
    # variants of the two tumour slices: as is 0.6, left-right (0.2 + 0.4) / 2, front-back 0.6
    assert e.tta_spread == pytest.approx(np.std([0.6, 0.3, 0.6]), abs=1e-5)


def test_patient_result_calibrates_then_flags():
    e = Evidence(two(0.5), 0.1, 0.05, 0.0, 10, True, np.zeros((0, 2)), np.zeros(0))
    r = patient_result(e, CalibrationRule(1.0, float(np.log(3.0)), threshold=0.9), GRADES)
    # sigmoid(logit(0.5) + log 3) = 3 / 4
    assert r.p == pytest.approx([0.25, 0.75]) and r.p_uncalibrated.tolist() == [0.5, 0.5]
    assert r.answer == "HGG"
    binary_entropy = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))  # 0.811
    assert r.uncertainty == pytest.approx(binary_entropy + 0.15)
    assert r.flag == (r.uncertainty > 0.9) and r.flag  # 0.811 + 0.15 > 0.9
    plain = patient_result(e, IDENTITY, GRADES)
    assert plain.p == pytest.approx([0.5, 0.5]) and not plain.flag
    assert plain.answer == "HGG"  # a tie goes to the higher class: HGG at exactly 0.5


class Three(torch.nn.Module):
    """A stand-in model of three classes: its logits on a slice are the first pixel of the
    slice's first three channels, plus ``offset`` (so that two models disagree)."""

    def __init__(self, offset=(0.0, 0.0, 0.0)):
        super().__init__()
        self.offset = torch.tensor(offset)

    def forward_heads(self, x):
        return x[:, :3, 0, 0] + self.offset, torch.zeros(len(x))


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_patient_evidence_of_three_classes_by_hand():
    """Two models, two tumour slices of equal weight; a left-right flip changes slice 0 and a
    front-back flip reads a pixel of logits 0. Each figure computed here from the logits."""
    logits = np.log([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    mirrored = np.log([0.1, 0.3, 0.6])  # what slice 0 says mirrored left-right
    x = torch.zeros(2, 4, 8, 8)
    x[:, :3, 0, 0] = torch.tensor(logits, dtype=torch.float32)
    x[0, :3, -1, 0] = torch.tensor(mirrored, dtype=torch.float32)
    x[1, :3, -1, 0] = x[1, :3, 0, 0]
    offsets = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    models = [Three(tuple(o)) for o in offsets]
    per_slice = softmax(logits[None] + offsets[:, None])  # [models, slices, classes]
    e = patient_evidence(models, x, per_slice, np.zeros((2, 2)), np.array([300, 100]), 50)
    per_model = per_slice.mean(axis=1)  # equal weights
    assert e.p == pytest.approx(per_model.mean(axis=0))
    assert e.fold_spread == pytest.approx(per_model.std(axis=0).mean())
    assert e.slice_spread == pytest.approx(per_slice.mean(axis=0).std(axis=0).mean())
    lr = np.stack([mirrored, logits[1]])
    variants = [per_slice, softmax(lr[None] + offsets[:, None]), softmax(offsets[:, None] + 0 * lr)]
    patient = np.array([v.mean(axis=1).mean(axis=0) for v in variants])  # [variants, classes]
    assert e.tta_spread == pytest.approx(patient.std(axis=0).mean(), abs=1e-6)
    assert e.tta_spread > 0.05 and e.fold_spread > 0.05  # neither is 0 by construction
    assert e.slice_p.shape == (2, 3)


def test_patient_result_of_three_classes_answers_the_most_probable():
    e = Evidence(np.array([0.2, 0.5, 0.3]), 0.1, 0.0, 0.0, 4, True, np.zeros((0, 3)), np.zeros(0))
    r = patient_result(e, CalibrationRule(2.0, threshold=0.5), ("2", "3", "4"))
    soft = np.sqrt([0.2, 0.5, 0.3]) / np.sqrt([0.2, 0.5, 0.3]).sum()  # softmax(log p / 2)
    assert r.p == pytest.approx(soft) and r.answer == "3"
    entropy = -(soft * np.log2(soft)).sum() / np.log2(3)
    assert r.uncertainty == pytest.approx(entropy + 0.1) and r.flag
    assert normalised_entropy(soft) == pytest.approx(entropy)
