"""``gliograde bench``: gliograde's data path and training measured against the usual ways.

One run, one SYNTHETIC cohort in BraTS geometry (240×240×155, ``.nii.gz``), on this machine:

a. Loader throughput (slices/s through a DataLoader, batch 32, the same workers for all) and
   memory, for the same tumour slices read three ways: the reference article's style (each item
   opens the patient's NIfTI files and reads one slice), MONAI's ``CacheDataset`` (whole
   volumes cached in RAM, a slice cut out per item), and gliograde's slice store.
b. Training throughput end to end (store → augmentation → Lightning step) against the model
   alone on random tensors already in memory (this device's ceiling), at 240×240.
c. ``prepare`` against merely loading the same NIfTI files with nibabel (the I/O floor), with 1
   worker and one per core.
d. ``predict`` of one patient from ``.nii.gz`` files, process start included (one 240×240 model
   with untrained weights: the time does not depend on the values).
e. Private memory (``RssAnon``: resident memory that is not a file's pages) at its peak while
   training on stores of 20 and of 200 subjects, built small (64×64×48) to keep the bench short.

Each measurement that allocates runs in a fresh process, so that its peak memory is its own.
Timings are the best of repeated runs where a measurement is short.
"""

from gliograde.bench.report import BenchConfig, format_results, run_bench

__all__ = ["BenchConfig", "format_results", "run_bench"]
