"""The similarity the registration check reads: normalised mutual information."""

import numpy as np
import pytest

from gliograde.scans.register import bin_of, nmi


def nmi_by_numpy(a, b, mask, bins=64):
    """The definition, with NumPy's own 2D histogram."""
    joint, _, _ = np.histogram2d(a[mask], b[mask], bins=bins)
    p = joint / joint.sum()

    def entropy(q):
        q = q[q > 0]
        return -(q * np.log(q)).sum()

    return (entropy(p.sum(1)) + entropy(p.sum(0))) / entropy(p.ravel())


def test_nmi_is_the_definition_and_spans_one_to_two():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 30, 20))
    b = a + rng.normal(size=a.shape)
    mask = rng.random(a.shape) > 0.3
    assert nmi(a, b, mask) == pytest.approx(nmi_by_numpy(a, b, mask), abs=1e-12)
    assert nmi(a, a, mask) == pytest.approx(2.0)  # an image determines itself
    unrelated = rng.normal(size=a.shape)
    assert 1.0 < nmi(a, unrelated, mask) < 1.02


def test_values_are_binned_as_numpy_bins_them():
    values = np.array([0.0, 0.5, 0.99, 1.0, 2.5, 4.0])
    assert bin_of(values, 4).tolist() == [0, 0, 0, 1, 2, 3]  # the maximum in the last bin
    counts, _ = np.histogram(values, bins=4)
    assert np.bincount(bin_of(values, 4), minlength=4).tolist() == counts.tolist()
    assert bin_of(np.full(5, 3.0), 8).tolist() == [0] * 5  # one value: one bin
