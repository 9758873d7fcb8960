"""Cross-validation's grading: a fold whose model answers NaN stops it with one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gliograde.assess.crossval import check_finite
from gliograde.core.errors import GliogradeError
from gliograde.infer.patient import Evidence
from gliograde.run.calibration import Mode


def evidence(p) -> Evidence:
    return Evidence(np.asarray(p), 0.0, 0.0, 0.0, 1, False, np.asarray([p]), np.ones(1))


def test_a_fold_answering_nan_is_refused_before_any_figure():
    check_finite({Mode.NOSEG: evidence([0.3, 0.7])}, Path("run/fold_0"), "S1")
    found = {Mode.SEG: evidence([0.3, 0.7]), Mode.NOSEG: evidence([np.nan, np.nan])}
    with pytest.raises(GliogradeError, match=r"^run/fold_0: its model answers NaN for S1, so"):
        check_finite(found, Path("run/fold_0"), "S1")
