"""Time evaluation's bootstrap intervals (1,000 resamples) on random probabilities of 369
patients (the size of BraTS 2020's training set), for 2 and 3 classes.

    python scripts/time_bootstrap.py
"""

from __future__ import annotations

import time

import numpy as np

from gliograde.assess.metrics import bootstrap_intervals


def main() -> None:
    rng = np.random.default_rng(0)
    for k in (2, 3):
        y, probs = rng.integers(0, k, 369), rng.dirichlet(np.ones(k), 369)
        bootstrap_intervals(y, probs, n_boot=50)  # imports and first calls out of the timing
        start = time.perf_counter()
        bootstrap_intervals(y, probs)
        print(f"{k} classes, 369 patients, 1000 resamples: {time.perf_counter() - start:.3f} s")


if __name__ == "__main__":
    main()
