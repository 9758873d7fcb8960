"""a. Loader throughput and memory: the article's style, MONAI, the slice store."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from gliograde import MODALITIES
from gliograde.bench.process import PeakMemory, proc_status


def slice_items(store: Path) -> list[tuple[str, int, int]]:
    """(subject, z, label) of every slice in the store: all three loaders read these."""
    from gliograde.store.read import SliceStore

    index = SliceStore(store).index
    return list(zip(index.subject.tolist(), index.z.tolist(), index.label.tolist()))


def nifti_paths(cohort: Path, subject: str) -> list[str]:
    return [str(cohort / subject / f"{subject}_{m}.nii.gz") for m in MODALITIES]


def article_dataset(cohort: Path, items):
    """The reference article's style: each item opens the four NIfTI files, reads one slice."""
    import nibabel as nib
    import torch
    from torch.utils.data import Dataset

    class NiftiSlices(Dataset):
        def __len__(self):
            return len(items)

        def __getitem__(self, i):
            subject, z, label = items[i]
            planes = [
                np.asarray(nib.load(p).dataobj[..., z], dtype=np.float32)
                for p in nifti_paths(cohort, subject)
            ]
            return torch.from_numpy(np.stack(planes)), label

    return NiftiSlices()


def monai_dataset(cohort: Path, items):
    """MONAI's CacheDataset: whole 4-channel float32 volumes in RAM, a slice cut out per item.

    ``copy_cache=False``: no transform changes the cached volume, so MONAI may hand it out
    without copying (its fastest setting).
    """
    import torch
    from monai.data import CacheDataset
    from monai.transforms import Compose, EnsureTyped, LoadImaged
    from torch.utils.data import Dataset

    subjects = sorted({s for s, _, _ in items})
    position = {s: i for i, s in enumerate(subjects)}
    load = Compose(
        [
            LoadImaged(keys="image", image_only=True, ensure_channel_first=True),
            EnsureTyped(keys="image", dtype=torch.float32, track_meta=False),
        ]
    )
    data = [{"image": nifti_paths(cohort, s)} for s in subjects]
    volumes = CacheDataset(
        data, load, cache_rate=1.0, num_workers=1, progress=False, copy_cache=False
    )

    class CachedSlices(Dataset):
        def __len__(self):
            return len(items)

        def __getitem__(self, i):
            subject, z, label = items[i]
            return volumes[position[subject]]["image"][..., z].clone(), label

    return CachedSlices()


def store_dataset(store: Path):
    from gliograde.store.dataset import SliceDataset

    return SliceDataset(store)


def measure_loader(kind: str, cohort: str, store: str, batch_size: int, max_slices: int) -> dict:
    """Slices/s through a DataLoader (0 workers: in this process) and the memory it took."""
    import torch
    from torch.utils.data import DataLoader

    if kind == "monai":
        import monai  # noqa: F401  (its import is not the loader's memory)
    items = slice_items(Path(store))
    baseline = proc_status()["VmRSS"]
    with PeakMemory() as peak:
        started = time.perf_counter()
        if kind == "article":
            ds = article_dataset(Path(cohort), items)
        elif kind == "monai":
            ds = monai_dataset(Path(cohort), items)
        else:
            ds = store_dataset(Path(store))
        setup = time.perf_counter() - started
        loader = DataLoader(
            ds,
            batch_size=batch_size,
            shuffle=True,
            num_workers=0,
            generator=torch.Generator().manual_seed(0),
        )
        n, started = 0, time.perf_counter()
        for batch in loader:
            n += len(batch["x"] if isinstance(batch, dict) else batch[0])
            if n >= max_slices:
                break
        elapsed = time.perf_counter() - started
    return {
        "slices_per_s": n / elapsed,
        "slices": n,
        "setup_s": setup,
        "peak_rss_mb": peak.peak_rss,
        "added_rss_mb": peak.peak_rss - baseline,
        "peak_anon_mb": peak.peak_anon,
    }
