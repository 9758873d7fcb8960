"""Shared fixtures: tiny synthetic NIfTI cohorts, their store and runs, and the real BraTS sample
when present; and the rule of ``make test-quick`` (``pytest -m "not slow"``): no test that is not
marked ``slow`` trains a model."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# the shared checks' asserts explain their failures as a test's own do
pytest.register_assert_rewrite("helpers.dicom_results")

from helpers.data import SAMPLE, SMALL_SHAPE  # noqa: E402

TRAINING_FIXTURES = {"tiny_run"}
"""Fixtures that train a model: only a test marked ``slow`` may use one."""

CURRENT = {"test": "(no test yet)", "slow": False}
"""The test being set up or run, and whether it is marked ``slow`` (may train)."""


class TrainsOutsideSlow(RuntimeError):
    """An optimizer step in a test not marked ``slow``."""


def pytest_sessionstart(session):
    """Every optimizer step checks that its test may train: one in a test that is not marked
    ``slow`` (so in ``make test-quick``) fails it, whatever fixture or helper trained. Under
    pytest-xdist (``make test``), each worker's PyTorch takes its share of the cores."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        share_the_cores(workers)

    def refuse_unmarked_training(optimizer, args, kwargs):
        if not CURRENT["slow"]:
            raise TrainsOutsideSlow(
                f"{CURRENT['test']} trains a model (an optimizer step) but is not marked slow: "
                "mark it @pytest.mark.slow, or use a run that is not trained (fake_tiny_run, "
                "helpers.runs.fake_run)"
            )

    register_optimizer_step_pre_hook(refuse_unmarked_training)


def share_the_cores(workers: int) -> None:
    """Each pytest-xdist worker, and every process it starts (``gliograde`` commands, the
    node, DDP ranks), runs PyTorch and SimpleITK on its share of the cores, instead of a thread
    per core in each. Measured on an idle machine, one thread spends less CPU for the same work
    (a small ``train``: 14.2 CPU-seconds against 19.2 with 2 threads; a raw export's
    preprocessing: 53.8 against 61.7), and with every core busy CPU time is what counts. A
    variable set before the session is kept, and then read by the libraries themselves."""
    import SimpleITK as sitk
    import torch

    from gliograde.core.parallel import default_workers, share_threads

    share = max(1, default_workers() // workers)
    share_threads(share)
    if os.environ["OMP_NUM_THREADS"] == str(share):
        torch.set_num_threads(share)  # read at start: this process's PyTorch has started
    if os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] == str(share):
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(share)


LONGEST_FIRST = [
    "integration/test_ohif.py",
    "integration/test_raw_scans.py",
    "integration/test_distributed.py",
    "integration/test_dicom_results.py",
    "integration/test_serve.py",
    "integration/test_crash.py",
    "integration/test_cache_shared.py",
    "io/test_fuzz_readers.py",
    "integration/test_bench_gpu_smoke.py",
    "integration/test_backbones.py",
    "integration/test_targets.py",
    "integration/test_explain_3d.py",
]
"""The files that take a minute or more on 2 cores, longest first (``pytest --durations``,
2026-12-07). ``make test`` hands the files to the pytest-xdist workers in collection order:
these start first, so that the short files fill in around them at the end, instead of one
worker finishing a long file alone while the other core idles."""


def pytest_collection_modifyitems(config, items):
    """The files of :data:`LONGEST_FIRST` first, in its order; the others as collected."""
    tests = Path(__file__).parent
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}

    def place(item) -> int:
        if not item.path.is_relative_to(tests):  # collected from elsewhere: after the rest
            return len(rank) + 1
        return rank.get(item.path.relative_to(tests).as_posix(), len(rank))

    items.sort(key=place)  # stable: within a file, and among the rest, the order is kept


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before any fixture: a test that is not marked ``slow`` and asks for a fixture that trains
    (``tiny_run``, directly or through another fixture) fails here, before the training."""
    slow = item.get_closest_marker("slow") is not None
    CURRENT.update(test=item.nodeid, slow=slow)
    training = sorted(TRAINING_FIXTURES.intersection(item.fixturenames))
    if training and not slow:
        pytest.fail(
            f"{item.nodeid} uses {', '.join(training)}, which trains a model, but is not marked "
            "slow: mark it @pytest.mark.slow, or use fake_tiny_run (random weights) if it does "
            "not need a trained run",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The four real BraTS 2020 subjects; tests using it skip where the folder is absent."""
    if not (SAMPLE / "name_mapping.csv").is_file():
        pytest.skip(f"real BraTS sample not found at {SAMPLE}")
    return SAMPLE


def made_once(tmp_path_factory, name: str, make) -> Path:
    """``ROOT/name``, made by ``make(folder)`` once per test session: under pytest-xdist, by the
    first worker that asks, while the others wait (a lock file), then shared by all of them.
    ``ROOT`` is the session's temporary folder. Whoever uses the folder must not write into it
    (another process may be reading it): a test that changes a run or a cohort copies it."""
    from gliograde.core.lock import waiting_lock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # each worker's folder lies in the session's
    folder = root / name
    made = folder.with_name(f".{folder.name}.made")
    with waiting_lock(folder.with_name(f".{folder.name}.lock"), f"making the tests' {name}"):
        if not made.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.parent.mkdir(parents=True, exist_ok=True)
            make(folder)
            made.touch()
    return folder


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory) -> Path:
    """A SYNTHETIC cohort of 10 small subjects (64×64×40), BraTS 2020 layout, made once for
    the session. Do not modify."""
    from gliograde.io.synth import synth_cohort

    def make(out):
        synth_cohort(out, subjects=10, lgg_fraction=0.4, seed=3, shape=SMALL_SHAPE, quiet=True)

    return made_once(tmp_path_factory, "synth/cohort", make)


@pytest.fixture
def cohort_copy(synth_small, tmp_path) -> Path:
    """A private, modifiable copy of the small synthetic cohort."""
    dst = tmp_path / "cohort"
    shutil.copytree(synth_small, dst)
    return dst


@pytest.fixture(scope="session")
def tiny_store(synth_small, tmp_path_factory) -> Path:
    """The SYNTHETIC store of ``synth_small`` (32×32 brain slices, 2 folds), in
    ``pipeline/store``: the store ``tiny_run`` is trained on. Do not modify."""
    from helpers.runs import prepare_tiny

    return made_once(tmp_path_factory, "pipeline/store", lambda f: prepare_tiny(synth_small, f))


@pytest.fixture(scope="session")
def fake_tiny_run(tiny_store, tmp_path_factory):
    """``(store, run, None)``: ``tiny_store`` and a run of it that was never trained
    (:func:`helpers.runs.fake_run`: random weights; config, folds, checksums, calibration as
    ``train`` writes them), in ``pipeline/fake-run``. For tests that read or use a run without
    needing what training learned; no metrics. Do not modify: copy what a test changes."""
    from helpers.runs import fake_run

    run = made_once(tmp_path_factory, "pipeline/fake-run", lambda f: fake_run(f, store=tiny_store))
    return tiny_store, run, None


@pytest.fixture(scope="session")
def tiny_run(tiny_store, tmp_path_factory):
    """``(store, run, metrics)``: ``tiny_store`` and a run trained on it for 2 epochs, then
    evaluated, in ``pipeline/run``, with its out-of-fold metrics as ``metrics.json`` holds them.
    It trains (half a minute, once for the session): only tests marked ``slow`` may use it; the
    others use ``fake_tiny_run``. Do not modify: copy what a test changes.
    """
    import json

    from helpers.runs import train_tiny

    run = made_once(tmp_path_factory, "pipeline/run", lambda f: train_tiny(tiny_store, f))
    return tiny_store, run, json.loads((run / "metrics.json").read_text())


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
