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


def test_a_store_whose_slices_skip_refuses_2_5d_items(tiny_store, tmp_path):
    """A subject whose stored slices are not adjacent (a tumour store of a multifocal tumour)
    would give a slice a distant "neighbour": refused in one line."""
    import shutil

    import pytest

    from gliograde.core.errors import GliogradeError
    from gliograde.store.dataset import SliceDataset

    store = shutil.copytree(tiny_store, tmp_path / "store")
    lines = (store / "index.csv").read_text().splitlines()
    header = lines[0].split(",")
    z = header.index("z")
    first = lines[1].split(",")
    first[z] = str(int(first[z]) - 5)  # the subject's first slice now lies 5 below the next
    (store / "index.csv").write_text("\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n")
    with pytest.raises(GliogradeError, match="not one run of adjacent axial slices"):
        SliceDataset(store, context=1)
    assert len(SliceDataset(store)) == len(lines) - 1  # 2D items do not need neighbours


def test_resident_2_5d_batches_are_the_items_read_from_the_store(tiny_store):
    """``train --resident``: a batch gathered from the resident slices and their neighbour
    table is the batch the items read from the store make."""
    from dataclasses import asdict

    from gliograde.run.config import TrainConfig
    from gliograde.store.read import SliceStore
    from gliograde.train.module import GradeModule
    from gliograde.train.sampling import IndexedSlices

    subjects = sorted(SliceStore(tiny_store).subjects)
    ds = IndexedSlices(tiny_store, None, 1, subjects, images=True, context=1)
    config = TrainConfig(str(tiny_store), "unused", backbone="resnet18-2.5d")
    module = GradeModule(asdict(config), [1.0, 1.0], subjects)
    module.resident = ds.resident_images()
    module.neighbours = torch.from_numpy(ds.neighbours)
    items = torch.tensor([0, 7, len(ds) // 2, len(ds) - 1])
    want = torch.stack([ds[i]["x"] for i in items.tolist()])
    assert torch.equal(module.resident_batch(items), want)
