"""2.5D inputs: a slice's neighbours, from the store in training and from the patient's slices
in grading, the same ones."""

from __future__ import annotations

import numpy as np
import torch

from gliograde.store.context import neighbour_positions


def test_neighbour_positions_by_hand():
    assert neighbour_positions(4, 1).tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 3]]
    assert neighbour_positions(1, 2).tolist() == [[0, 0, 0, 0, 0]]
    assert neighbour_positions(0, 1).shape == (0, 3)


def test_grading_inputs_of_some_rows_are_those_of_all_rows():
    from gliograde.infer.models import Models, model_inputs

    x = torch.arange(5.0).view(5, 1, 1, 1).expand(5, 4, 2, 2).contiguous()
    models = Models(context=1)
    every = model_inputs(models, x)
    assert every.shape == (5, 12, 2, 2)
    assert every[:, ::4, 0, 0].tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 4]]
    rows = np.array([1, 4])
    assert torch.equal(model_inputs(models, x, rows), every[rows])
    assert torch.equal(model_inputs(Models(), x, rows), x[rows])  # 2D: the slices as they are


def test_training_items_carry_the_stored_neighbours(tiny_store):
    """A 2.5D item is the slice and its neighbours as the store keeps the subject's slices: the
    stack grading builds from the same subject's slices."""
    from gliograde.infer.models import Models, model_inputs
    from gliograde.store.dataset import SliceDataset

    flat = SliceDataset(tiny_store)
    wide = SliceDataset(tiny_store, context=1)
    subject = flat.index.subject[0]
    mine = np.flatnonzero(np.asarray(flat.index.subject) == subject)
    stack = torch.from_numpy(flat.store.read_subject(subject, "images").astype(np.float32))
    graded = model_inputs(Models(context=1), stack)
    for i in (mine[0], mine[len(mine) // 2], mine[-1]):
        row = int(flat.index.row[i])
        assert torch.equal(wide[i]["x"], graded[row])
        assert torch.equal(wide[i]["x"][4:8], flat[i]["x"])  # its own slice in the middle
