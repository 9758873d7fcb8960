"""2.5D inputs: each slice with its neighbours above and below, stacked as channels.

A patient's slices ``[n, 4, H, W]`` in slice order become ``[n, 4·(2k+1), H, W]``: for slice
``i``, the four sequences of slices ``i-k`` … ``i+k`` in that order (so slice ``i``'s own are in
the middle). The neighbours are the adjacent slices the store (or ``predict``'s preprocessing,
the same function) kept; at either end of the stack the end slice stands in for the ones that
are missing. Nothing is copied to disk: training reads the neighbours from the store
(:class:`~gliograde.store.dataset.SliceDataset`), grading stacks them from the patient's slices
(:func:`~gliograde.infer.models.model_inputs`).
"""

from __future__ import annotations

import numpy as np


def neighbour_positions(n: int, k: int) -> np.ndarray:
    """``[n, 2k+1]``: for each of ``n`` slices in order, the positions of slices ``i-k`` …
    ``i+k``, clamped to the stack."""
    offsets = np.arange(-k, k + 1)
    return np.clip(np.arange(n)[:, None] + offsets[None, :], 0, max(n - 1, 0))
