"""The pipeline's own checks of a preprocessed subject: a plausible brain volume, and each
sequence registered at a peak of its similarity to the T1ce."""

import pytest

from gliograde.core.errors import DataError
from gliograde.scans.pipeline import MIN_MARGIN, check_figures

GOOD = {"flair": 0.01, "t1": 0.05, "t2": 0.02}


def test_an_implausible_brain_volume_is_refused():
    check_figures("S", 1400.0, GOOD)
    for ml in (500.0, 3500.0):
        with pytest.raises(DataError, match="S: brain volume"):
            check_figures("S", ml, GOOD)


def test_a_registration_off_its_similarity_peak_is_named():
    off = GOOD | {"t2": MIN_MARGIN - 1e-3}
    with pytest.raises(DataError, match=r"registration to T1ce failed for T2 [-+]"):
        check_figures("S", 1400.0, off)
