"""The similarity the registration check reads: normalised mutual information."""

import numpy as np
import pytest

from gliograde.scans.register import bin_of, nmi


def nmi_by_numpy(a, b, mask, bins=64):
    """The definition, with NumPy's own 2D histogram."""
    joint, _, _ = np.histogram2d(a[mask], b[mask], bins=bins)
    p = joint / max(joint.sum(), 1)

    def entropy(q):
        q = q[q > 0]
        return float(-(q * np.log(q)).sum())

    return (entropy(p.sum(1)) + entropy(p.sum(0))) / max(entropy(p.ravel()), 1e-12)


def test_nmi_is_the_definition_and_spans_one_to_two():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 30, 20))
    b = a + rng.normal(size=a.shape)
    mask = rng.random(a.shape) > 0.3
    assert nmi(a, b, mask) == pytest.approx(nmi_by_numpy(a, b, mask), abs=1e-12)
    assert nmi(a, a, mask) == pytest.approx(2.0)  # an image determines itself
    unrelated = rng.normal(size=a.shape)
    assert 1.0 < nmi(a, unrelated, mask) < 1.02


def test_nmi_bins_values_on_the_edges_as_numpy_does():
    """Integer-valued images put values exactly on bin edges, where rounding decides."""
    rng = np.random.default_rng(1)
    for high in (63, 218, 255, 1000, 4000):
        a = rng.integers(0, high + 1, size=(30, 30, 10)).astype(np.float32)
        b = (a + rng.integers(0, 7, size=a.shape)).astype(np.float32)
        mask = rng.random(a.shape) > 0.2
        assert nmi(a, b, mask) == nmi_by_numpy(a, b, mask), high
    assert nmi(a, b, np.zeros(a.shape, bool)) == 0.0  # nothing to compare: no similarity


def test_values_are_binned_as_numpy_bins_them():
    values = np.array([0.0, 0.5, 0.99, 1.0, 2.5, 4.0])
    assert bin_of(values, 4).tolist() == [0, 0, 0, 1, 2, 3]  # the maximum in the last bin
    counts, _ = np.histogram(values, bins=4)
    assert np.bincount(bin_of(values, 4), minlength=4).tolist() == counts.tolist()
    assert bin_of(np.full(5, 3.0), 8).tolist() == [4] * 5  # one value: the bin numpy gives it
