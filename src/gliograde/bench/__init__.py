"""``gliograde bench``: gliograde's data path and training measured against the usual ways.

One run, one SYNTHETIC cohort in BraTS geometry (240×240×155, ``.nii.gz``), on this machine.
Each measurement runs in its own fresh Python process, on the same slices, batch size (32) and
workers (0), so that no side warms kernels, caches or the allocator for another:

a. Loaders: slices/s through a DataLoader and memory, for the same tumour slices read six ways:
   the reference article's style (each item opens the patient's NIfTI files and reads one
   slice); MONAI's ``CacheDataset`` of contiguous ``[4, H, W]`` items, in float32 and in
   float16; MONAI's ``PersistentDataset`` (one ``.pt`` file per item), in float32 and float16;
   gliograde's slice store. Memory is the RSS the reader adds plus the page cache its files
   hold once warm after a whole epoch (``fincore``); each reader is timed cold (its files
   evicted) and warm.
b. Training at 240×240: the model alone on tensors already in memory (the ceiling) against
   ``train``'s own path (store → augmentation → Lightning step), at least 30 timed steps after
   warm-up, best of 2 interleaved; and the wall time of one epoch with its checkpoint
   selection.
c. ``prepare`` against the load floor with the same inflater (ISA-L), 1 worker in process and
   one per core, with nibabel's own reader as a second line.
d. ``predict`` of one patient with a 5-fold ensemble (untrained weights: the time does not depend
   on the values), with and without the segmentation, process start included, best of 3.
e. Private memory (``RssAnon``) at its peak while training at 240×240 on 20 and 200 subjects.
"""

from gliograde.bench.printing import format_results
from gliograde.bench.report import BenchConfig, run_bench

__all__ = ["BenchConfig", "format_results", "run_bench"]
