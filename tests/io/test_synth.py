"""synth --skull: the same SYNTHETIC brain inside CSF, skull and scalp (a raw-like head)."""

import numpy as np

from gliograde.io.synth import make_subject, synth_cohort
from helpers.data import SMALL_SHAPE

FLAIR, T1CE, T1, T2 = range(4)


def test_a_skull_surrounds_the_same_brain():
    plain, seg = make_subject("HGG", np.random.default_rng([0, 1]), (96, 96, 64))
    head, seg_head = make_subject("HGG", np.random.default_rng([0, 1]), (96, 96, 64), skull=True)
    brain = plain[T1] > 0
    assert np.array_equal(seg, seg_head)
    for c in range(4):  # inside the brain, not one voxel differs
        assert np.array_equal(plain[c][brain], head[c][brain])
    outside = (head[T1] > 0) & ~brain
    assert outside.sum() > 0.5 * brain.sum()  # a head is much more than its brain
    # bone is dark and scalp fat bright on T1: the outer shell is brighter than the middle
    values = np.sort(head[T1][outside])
    assert values[-len(values) // 10 :].mean() > 5 * values[: len(values) // 10].mean()


def test_predict_refuses_an_unstripped_head(fake_tiny_run, tmp_path):
    from gliograde.predict import predict_subjects

    cohort = tmp_path / "heads"
    synth_cohort(cohort, 2, 0.5, seed=3, shape=SMALL_SHAPE, quiet=True, skull=True)
    assert "skull=True" in (cohort / "SYNTHETIC.txt").read_text()
    answers = [p.to_dict() for p in predict_subjects([cohort], fake_tiny_run[1])]
    assert len(answers) == 2
    for answer in answers:
        assert "out of distribution" in answer["error"]
        assert "skull not stripped?" in answer["error"]
