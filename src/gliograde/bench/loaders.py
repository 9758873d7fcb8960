"""a. Loader throughput and memory: the article's style, MONAI's caches, the slice store."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from gliograde import MODALITIES
from gliograde.bench.process import PeakMemory, proc_status

LOADER_KINDS = (
    "article",
    "monai_cache",
    "monai_cache_fp16",
    "monai_persistent",
    "monai_persistent_fp16",
    "store",
    "store_resident",
)
"""The readers compared, each on the same slices (see :func:`build_dataset`)."""


def slice_items(store: Path) -> list[tuple[str, int, int]]:
    """(subject, z, label) of every slice in the store: all three loaders read these."""
    from gliograde.store.read import SliceStore

    index = SliceStore(store).index
    return list(zip(index.subject.tolist(), index.z.tolist(), index.label.tolist()))


def nifti_paths(cohort: Path, subject: str) -> list[str]:
    return [str(cohort / subject / f"{subject}_{m}.nii.gz") for m in MODALITIES]


def article_dataset(cohort: Path, items):
    """The reference article's style: each item opens the four NIfTI files, reads one slice."""
    import torch
    from torch.utils.data import Dataset

    from gliograde.io.nifti import load_nifti

    class NiftiSlices(Dataset):
        def __len__(self):
            return len(items)

        def __getitem__(self, i):
            subject, z, label = items[i]
            planes = [
                np.asarray(load_nifti(Path(p)).dataobj[..., z], dtype=np.float32)
                for p in nifti_paths(cohort, subject)
            ]
            return torch.from_numpy(np.stack(planes)), label

    return NiftiSlices()


def volume_slices(cohort: Path, dtype):
    """A MONAI deterministic transform: ``{subject, z, label}`` → ``{image, label}``, the image a
    contiguous ``[4, H, W]`` slice of the subject's volume, loaded with MONAI's ``LoadImage`` and
    z-scored on the brain per channel (``NormalizeIntensity(nonzero=True)``), much as the store's
    slices are. It keeps the last subject's volume, so that a cache built in subject order loads
    each volume once (``forget()`` drops it). Being a MONAI ``Transform`` and not random, MONAI's
    caching datasets cache its output.
    """
    import torch
    from monai.data import MetaTensor
    from monai.transforms import LoadImage, NormalizeIntensity, Transform

    read = LoadImage(image_only=True, ensure_channel_first=True)  # 4 files → [4, X, Y, Z]
    zscore = NormalizeIntensity(nonzero=True, channel_wise=True)

    class VolumeSlices(Transform):
        last: tuple = ("", None)

        def __call__(self, item: dict) -> dict:
            if self.last[0] != item["subject"]:
                volume = zscore(read(nifti_paths(cohort, item["subject"])))
                if not isinstance(volume, MetaTensor):  # LoadImage's, z-scored
                    raise TypeError(f"expected a MetaTensor, read a {type(volume).__name__}")
                self.last = (item["subject"], volume.as_tensor())
            image = self.last[1][..., item["z"]].to(dtype).contiguous()
            return {"image": image, "label": torch.tensor(item["label"])}

        def forget(self) -> None:
            self.last = ("", None)

    return VolumeSlices()


def slice_records(items) -> list[dict]:
    """The slices as MONAI data records, in subject order."""
    return [{"subject": s, "z": z, "label": label} for s, z, label in sorted(items)]


def monai_cache_dataset(cohort: Path, items, half: bool = False):
    """MONAI's ``CacheDataset`` of the same slices as contiguous ``[4, H, W]`` items in RAM.

    ``copy_cache=False``: nothing changes a cached item, so MONAI hands it out without copying
    (its fastest setting). ``half``: items cached in float16 (the store's bytes); each batch is
    made float32 once (:func:`loader_rate`), as ``--resident``'s are.
    """
    import torch
    from monai.data import CacheDataset

    make_slice = volume_slices(cohort, torch.float16 if half else torch.float32)
    cache = CacheDataset(
        slice_records(items),
        make_slice,
        cache_rate=1.0,
        num_workers=None,  # in order: each volume is loaded once
        progress=False,
        copy_cache=False,
    )
    make_slice.forget()
    return cache


def monai_persistent_dataset(cohort: Path, items, cache_dir: Path, half: bool = False):
    """MONAI's ``PersistentDataset``: each slice item computed once and saved to ``cache_dir``
    (one ``.pt`` file per item), then read back per item. ``half``: items saved in float16 (the
    store's bytes, half the reading); each batch is made float32 once (:func:`loader_rate`)."""
    import torch
    from monai.data import PersistentDataset

    make_slice = volume_slices(cohort, torch.float16 if half else torch.float32)
    ds = PersistentDataset(slice_records(items), make_slice, cache_dir=cache_dir)
    for i in range(len(ds)):  # build the cache (set-up), in subject order
        ds[i]
    make_slice.forget()
    return ds


def store_dataset(store: Path):
    from gliograde.store.dataset import SliceDataset

    return SliceDataset(store)


class ResidentSlices:
    """``train --resident``'s data path: the store's slices read once into one contiguous
    float16 tensor; a DataLoader yields each batch's labels at once (no per-item collate) and
    the batch's images are gathered from the tensor by index, as the training step does."""

    def __init__(self, store: Path):
        from gliograde.store.read import SliceStore
        from gliograde.train.sampling import IndexedSlices

        slices = SliceStore(store)
        threshold = slices.manifest.min_tumor
        self.labels = IndexedSlices(slices, None, threshold, sorted(slices.subjects), images=False)
        self.images = self.labels.resident_images()

    def __len__(self):
        return len(self.labels)

    def gather(self, batch: dict):
        return self.images.index_select(0, batch["item"]).float()


def reader_files(kind: str, cohort: Path, store: Path, cache_dir: Path) -> list[Path]:
    """The files a reader reads while it is measured (after its set-up)."""
    from gliograde.bench.pagecache import files_under

    if kind == "store":
        return files_under(store / "subjects", "images.npy")
    if kind == "store_resident":
        return []  # read once at set-up, then held in this process
    if kind.startswith("monai_persistent"):
        return files_under(cache_dir, "*.pt")
    if kind == "article":
        return files_under(cohort, "*.nii.gz")
    return []  # MONAI's CacheDataset reads no file once built


def build_dataset(kind: str, cohort: Path, store: Path, cache_dir: Path, items):
    if kind == "article":
        return article_dataset(cohort, items)
    if kind in ("monai_cache", "monai_cache_fp16"):
        return monai_cache_dataset(cohort, items, half=kind.endswith("fp16"))
    if kind.startswith("monai_persistent"):
        return monai_persistent_dataset(cohort, items, cache_dir, half=kind.endswith("fp16"))
    if kind == "store_resident":
        return ResidentSlices(store)
    return store_dataset(store)


def measure_loader(
    kind: str, cohort: str, store: str, cache_dir: str, batch_size: int, max_slices: int | None
) -> dict:
    """Slices/s through a DataLoader (0 workers: in this process), cold and warm, and the memory
    it needs: the RSS it adds plus the page cache its files hold once warm.

    ``max_slices``: None reads a whole epoch (every slice once, so that the page cache holds
    what an epoch needs).
    """
    import torch.utils.data  # noqa: F401  (imports are not a loader's memory)

    from gliograde.bench.pagecache import evict, resident_bytes

    if kind.startswith("monai"):
        import monai  # noqa: F401
    if kind == "store_resident":
        import gliograde.train.sampling  # noqa: F401
    cohort_p, store_p, cache_p = Path(cohort), Path(store), Path(cache_dir)
    items = slice_items(store_p)
    baseline = proc_status()["VmRSS"]
    with PeakMemory() as setup_peak:
        started = time.perf_counter()
        ds = build_dataset(kind, cohort_p, store_p, cache_p, items)
        setup = time.perf_counter() - started
    n = len(ds) if max_slices is None else min(max_slices, len(ds))
    files = reader_files(kind, cohort_p, store_p, cache_p)
    evict(files)
    cold_resident = resident_bytes(files)
    with PeakMemory() as peak:  # what the reader holds while it serves slices
        cold = loader_rate(ds, batch_size, n)
        warm = max(loader_rate(ds, batch_size, n) for _ in range(2))  # best of 2 warm epochs
    page_cache = mb(resident_bytes(files))
    # RSS can end below the baseline when the set-up's temporaries go back to the system: the
    # reader then adds nothing measurable, not a negative amount.
    added, size = max(peak.peak_rss - baseline, 0.0), sum(p.stat().st_size for p in files)
    return {
        "slices_per_s": warm,
        "cold_slices_per_s": cold,
        "slices": n,
        "setup_s": setup,
        "setup_peak_rss_mb": setup_peak.peak_rss,
        "added_rss_mb": added,
        "page_cache_mb": page_cache,
        "page_cache_cold_mb": mb(cold_resident),
        "file_mb": size / 2**20,
        # cold means something only where eviction worked (not on tmpfs, say)
        "evicted": cold_resident is not None and cold_resident <= 0.05 * size,
        # None where the page cache could not be counted (no fincore): never 0 by default
        "memory_mb": None if page_cache is None else added + page_cache,
    }


def mb(n_bytes: int | None) -> float | None:
    return None if n_bytes is None else n_bytes / 2**20


def loader_rate(ds, batch_size: int, max_slices: int) -> float:
    """Slices/s of one pass (up to ``max_slices``) through a shuffling DataLoader."""
    import torch
    from torch.utils.data import DataLoader

    from gliograde.train.sampling import as_batch

    resident = isinstance(ds, ResidentSlices)
    loader = DataLoader(
        ds.labels if resident else ds,
        batch_size=batch_size,
        shuffle=True,
        num_workers=0,
        generator=torch.Generator().manual_seed(0),
        collate_fn=as_batch if resident else None,
    )
    n, started = 0, time.perf_counter()
    for batch in loader:
        if resident:
            first = ds.gather(batch)
        else:
            first = batch[0] if isinstance(batch, list) else batch.get("x", batch.get("image"))
            first = first.float()  # float16 batches (MONAI's fp16 caches) made float32 once
        n += len(first)
        if n >= max_slices:
            break
    return n / (time.perf_counter() - started)
