"""Shared fixtures: tiny synthetic NIfTI cohorts, and the real BraTS sample when present."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from helpers.data import SAMPLE, SMALL_SHAPE

INTEGRATION = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items):
    """Every test under ``tests/integration/`` is end to end: marked ``slow``, so that
    ``pytest -m "not slow"`` (``make test-quick``) leaves it out."""
    for item in items:
        if INTEGRATION in item.path.parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The four real BraTS 2020 subjects; tests using it skip where the folder is absent."""
    if not (SAMPLE / "name_mapping.csv").is_file():
        pytest.skip(f"real BraTS sample not found at {SAMPLE}")
    return SAMPLE


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory) -> Path:
    """A SYNTHETIC cohort of 10 small subjects (64×64×40), BraTS 2020 layout. Do not modify."""
    from gliograde.io.synth import synth_cohort

    out = tmp_path_factory.mktemp("synth") / "cohort"
    synth_cohort(out, subjects=10, lgg_fraction=0.4, seed=3, shape=SMALL_SHAPE, quiet=True)
    return out


@pytest.fixture
def cohort_copy(synth_small, tmp_path) -> Path:
    """A private, modifiable copy of the small synthetic cohort."""
    dst = tmp_path / "cohort"
    shutil.copytree(synth_small, dst)
    return dst


@pytest.fixture(scope="session")
def tiny_run(synth_small, tmp_path_factory):
    """A SYNTHETIC store (32×32 brain slices, 2 folds) and a run trained on it for 2 epochs.

    Do not modify: copy what a test changes.
    """
    from helpers.runs import trained_run

    root = tmp_path_factory.mktemp("pipeline")
    _, run, metrics = trained_run(synth_small, root)
    return root / "store", run, metrics


@pytest.fixture(scope="session")
def browser_page():
    """A page in headless Debian Chromium (helpers.browser). Skips where Chromium is missing,
    but fails in CI, whose .ci/run installs it."""
    from helpers.browser import CHROMIUM, chromium

    if not CHROMIUM.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} missing in CI: .ci/run installs Debian's chromium")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with chromium() as page:
        yield page
