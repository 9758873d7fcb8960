# %% [markdown]
# # 5. 2D, 2.5D or 3D?
#
# Which network should grade a glioma: the reference study's 2D ResNet18 on single axial
# slices, a 2.5D one that sees each slice with its neighbours, or a 3D one that sees the whole
# brain at once? Papers answer this on different data, splits and selection rules, so their
# answers cannot be set side by side. This tutorial trains the three on **one store**, with the
# same patients, folds and checkpoint selection, and lets `gliograde compare` say whether the
# patients can tell them apart.
#
# **Data: SYNTHETIC.** 24 phantoms at a third of BraTS's size, 32×32 slices and 32³ volumes,
# and short training, so that the page runs in about two minutes on 2 CPU cores. Phantoms show
# how the comparison works and how wide its intervals are at this size. They cannot say which
# network grades patients better: the last section says how to ask that of BraTS 2020.
#
# **Run it yourself:** `.venv/bin/python docs/tutorials/two_d_or_three_d.py`.

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from gliograde.assess.compare import compare_runs
from gliograde.cli.typed import gliograde
from gliograde.store.read import SliceStore

WORK = Path(tempfile.mkdtemp(prefix="gliograde-tutorial5-"))
DATA, STORE = WORK / "cohort", WORK / "store"

# %% [markdown]
# ## One store, three kinds of input
#
# `prepare` writes the slices as always. `--volumes 32` also writes each brain as one volume of
# 32³ voxels, made from the same slices: the stack cropped to the brain's box and resampled. So
# the three networks read the same preprocessing and the same normalisation, and the folds in
# `splits.json` serve all three.

# %%
gliograde(f"synth {DATA} --subjects 24 --lgg-fraction 0.4 --size 80,80,50 --seed 4")
gliograde(f"prepare {DATA} --out {STORE} --size 32 --folds 3 --volumes 32 --workers 0")

# %% [markdown]
# What each network sees of one patient: a 2D network one slice (four sequences as channels, 4
# channels); a 2.5D network the slice with one neighbour below and one above (12 channels); a
# 3D network the whole volume, `[4, 32, 32, 32]`, of which the three middle planes are shown.

# %%
store = SliceStore(STORE)
subject = store.subjects[0]
slices = store.read_subject(subject, "images").astype(np.float32)
volume = np.load(STORE / "volumes" / "32" / f"{subject}.npy").astype(np.float32)
mid = int(np.argmax(store.index.tumor[store.rows([subject])]))  # the slice with most tumour
fig, axes = plt.subplots(1, 6, figsize=(15, 2.8))
panels = [
    ("2D: slice z", slices[mid, 1]),
    ("2.5D: z - 1", slices[max(mid - 1, 0), 1]),
    ("2.5D: z + 1", slices[min(mid + 1, len(slices) - 1), 1]),
    ("3D: axial", volume[1, 16]),
    ("3D: coronal", volume[1, :, :, 16]),
    ("3D: sagittal", volume[1, :, 16, :]),
]
for ax, (title, image) in zip(axes, panels):
    ax.imshow(np.rot90(image), cmap="gray")
    ax.set_title(f"{title} (T1ce)", fontsize=9)
    ax.axis("off")
plt.show()
print("volume", volume.shape, volume.dtype, "| slices", slices.shape)

# %% [markdown]
# ## Train the three under one protocol
#
# Same store, same `--seed`, same `--select last`: the folds come from the store and nothing is
# chosen on a fold's held-out patients. The schedules differ, and that is part of what is
# compared: a 2D epoch draws 256 slices; a 3D epoch draws as many volumes as a fold has
# training patients (16), with replacement, so the 3D run has more epochs. `--batch-size` for 3D
# defaults to 4 volumes.

# %%
runs = {
    "resnet18": "--epochs 4 --epoch-slices 256 --lr 3e-3",
    "resnet18-2.5d": "--epochs 4 --epoch-slices 256 --lr 3e-3",
    "resnet10-3d": "--grid 32 --epochs 12",
}
for backbone, schedule in runs.items():
    out = WORK / f"run-{backbone}"
    gliograde(
        f"train {STORE} --out {out} --backbone {backbone} {schedule} --select last --seed 0 "
        "--device cpu --no-progress"
    )
splits = {b: (WORK / f"run-{b}" / "splits.json").read_text() for b in runs}
print("the same folds in every run:", len(set(splits.values())) == 1)

# %% [markdown]
# ## Compare on the same patients
#
# `compare` gives each run's patient AUC with its interval and its costs. For each pair it
# gives the AUC difference on the same patients, with a paired bootstrap interval and DeLong's
# test. "told apart" needs an interval that leaves out 0.

# %%
paths = [WORK / f"run-{b}" for b in runs]
gliograde(f"compare {' '.join(map(str, paths))} --figure {WORK / 'compare.png'}")

# %% [markdown]
# The same comparison from Python (`--json` gives it as JSON): the verdicts below are computed
# from the figures, not written in advance.

# %%
result = compare_runs(paths)
aucs = {r.name: r.auc for r in result.runs}
print("AUC:", {name: round(auc, 3) for name, auc in aucs.items()})
apart = [f"{p.a} and {p.b}" for p in result.pairs if p.told_apart]
print("Told apart by these patients:", ", ".join(apart) if apart else "no pair.")
near_chance = [name for name, auc in aucs.items() if auc < 0.6]
if near_chance:
    print("Near chance (AUC below 0.6):", ", ".join(near_chance))
plt.figure(figsize=(11, 4.5))
plt.imshow(plt.imread(WORK / "compare.png"))
plt.axis("off")
plt.show()

# %% [markdown]
# ## What this says, and what it does not
#
# With 24 patients, each run's AUC interval is wide, and a pair is told apart only when the
# two runs differ by a lot (read the lines above). A pair told apart here says which network
# these phantoms and these short schedules favour; a pair not told apart says that 24 patients
# cannot separate them. Neither says anything about patients. A 3D network that learns little
# here has had 16 volumes a fold and 12 short epochs, against thousands of slices for the 2D
# runs: on the demo's 40 patients, with 30 epochs, the 3D runs learn (see the results).
#
# To ask the question of patients, run the same three commands on BraTS 2020 (369 subjects) on
# a GPU. The recipe is in [Choose a backbone](../../how-to/compare-backbones/), and the
# comparisons measured so far, with their commands and dates, are in the
# [results](../../results/). A 3D network answers once per volume and never reads the
# segmentation. Its Grad-CAM is one map on the volume, laid back on the slices, so `explain`
# and the viewer show it as they show a 2D one.
