"""--resident's batches: the labels of a whole batch fetched at once, equal to the items'."""

import torch
from torch.utils.data import default_collate

from gliograde.store.read import SliceStore
from gliograde.train.sampling import IndexedSlices, as_batch


def test_a_resident_batch_holds_what_its_items_hold(tiny_store):
    store = SliceStore(tiny_store)
    subjects = sorted(store.subjects)
    labels = IndexedSlices(store, subjects[1:], 3, subjects, images=False)
    indices = [5, 0, 17, len(labels) - 1]
    batch = as_batch(labels.__getitems__(indices))
    one_by_one = default_collate([labels[i] for i in indices])
    assert batch["item"].tolist() == indices
    for key in ("y", "subject_idx"):
        assert torch.equal(batch[key], one_by_one[key]), key
    assert batch["tumor"].tolist() == one_by_one["tumor"].tolist()
    assert 0 not in batch["subject_idx"].tolist()  # subjects[0] is not in this dataset


def test_the_resident_images_are_the_store_slices_in_item_order(tiny_store):
    store = SliceStore(tiny_store)
    subjects = sorted(store.subjects)
    read = IndexedSlices(store, subjects, 1, subjects)
    images = IndexedSlices(store, subjects, 1, subjects, images=False).resident_images()
    assert images.dtype == torch.float16 and len(images) == len(read)
    for i in (0, len(read) // 2, len(read) - 1):
        assert torch.equal(images.index_select(0, torch.tensor([i]))[0].float(), read[i]["x"])
