# %% [markdown]
# # 1. MRI for deep learning, step by step
#
# This tutorial walks the path of the article gliograde grew out of, written for people starting
# in MRI and deep learning: from one NIfTI file to one forward pass of a 4-channel ResNet18 and
# its loss. Each step is plain NumPy, nibabel, matplotlib and PyTorch, so you can see what
# happens; the last section does the same with three `gliograde` commands.
#
# **Data.** It runs on real BraTS 2020 subjects: the folder named by `GLIOGRADE_SAMPLE`, or
# `../shared/data/brats2020-sample` (four subjects, two HGG and two LGG, with BraTS's
# `name_mapping.csv`), or your own BraTS 2020 download. Where none is found it makes a
# **synthetic** cohort with `gliograde synth` and says so below: phantoms, not patients.
#
# With a whole BraTS download it takes the first two HGG and two LGG subjects.
#
# **Run it yourself:** `MPLBACKEND=Agg .venv/bin/python docs/tutorials/mri_for_deep_learning.py`
# runs it as a script (under a minute on 2 CPU cores; without `MPLBACKEND=Agg` each plot opens
# a window on a desktop); `make docs` executes it into the page you are reading.

# %%
import csv
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
import torch

from gliograde.cli.typed import gliograde

WORK = Path(tempfile.mkdtemp(prefix="gliograde-tutorial1-"))
torch.manual_seed(0)  # the same untrained network, so the same loss, on every run


def find_sample() -> tuple[Path, bool]:
    """The real sample when there is one, else a synthetic cohort made here (and said so)."""
    named = os.environ.get("GLIOGRADE_SAMPLE")
    for candidate in [named, "../shared/data/brats2020-sample"]:
        if candidate and (Path(candidate) / "name_mapping.csv").is_file():
            return Path(candidate).resolve(), False
    if os.environ.get("CI"):  # CI runs this page on the real sample, never on the fallback
        raise RuntimeError("CI: no real sample in $GLIOGRADE_SAMPLE or ../shared/data")
    gliograde(f"synth {WORK / 'synthetic'} --subjects 4 --lgg-fraction 0.5")
    return WORK / "synthetic", True


DATA, SYNTHETIC = find_sample()
print("data:", DATA, "(SYNTHETIC phantoms, not patients)" if SYNTHETIC else "(real BraTS 2020)")

# %% [markdown]
# ## The data: BraTS 2020
#
# The Kaggle copy of BraTS 2020's training data has 369 patient folders and two CSV files:
# `name_mapping.csv` links each BraTS id to its TCGA/TCIA id and gives its grade (LGG or HGG),
# and `survival_info.csv` gives age and survival for some. Each folder, say
# `BraTS20_Training_007`, holds five NIfTI files: the four sequences and the segmentation. The
# organisers have already registered every scan to one template, resampled it to 1 mm³ voxels
# and removed the skull.

# %%
with open(DATA / "name_mapping.csv", newline="") as f:
    grades = {row["BraTS_2020_subject_ID"]: row["Grade"] for row in csv.DictReader(f)}
folders = sorted(p.name for p in DATA.iterdir() if p.is_dir() and p.name in grades)
# Two of each grade: enough to see, quick to read.
subjects = sorted(
    [s for s in folders if grades[s] == "HGG"][:2] + [s for s in folders if grades[s] == "LGG"][:2]
)
print(
    f"name_mapping.csv: {len(grades)} rows; subject folders: {len(folders)}; used: {len(subjects)}"
)
for s in subjects:
    print(s, grades[s], sorted(p.name.removeprefix(s) for p in (DATA / s).iterdir()))

# %% [markdown]
# ## Reading a NIfTI file
#
# nibabel reads the header at once and the voxels when asked. `get_fdata()` gives a float64
# NumPy array of shape `[240, 240, 155]`: 155 axial slices of 240×240 voxels. The affine maps
# voxel indices to millimetres; `aff2axcodes` names the direction each axis points to.

# %%
hgg = next(s for s in subjects if grades[s] == "HGG")
lgg = next(s for s in subjects if grades[s] == "LGG")


def volume(subject: str, sequence: str) -> np.ndarray:
    path = next((DATA / subject).glob(f"{subject}_{sequence}.nii*"))
    return nib.load(path).get_fdata()


image = nib.load(next((DATA / hgg).glob(f"{hgg}_flair.nii*")))
flair = image.get_fdata()
print("shape:", flair.shape, "dtype:", flair.dtype)
print("voxel size (mm):", image.header.get_zooms())
print("axes point to:", nib.aff2axcodes(image.affine))
print("intensity range:", flair.min(), "to", flair.max(), "(arbitrary units: MRI has no scale)")

# %% [markdown]
# ## Three planes
#
# A volume can be cut three ways: axial (top to bottom of the head, the third axis here),
# coronal (front to back) and sagittal (left to right). We cut through the centre of the
# tumour, found from the segmentation.

# %%
seg = volume(hgg, "seg")
cx, cy, cz = np.argwhere(seg > 0).mean(axis=0).round().astype(int)
planes = {
    "axial": flair[:, :, cz],
    "coronal": flair[:, cy, :],
    "sagittal": flair[cx, :, :],
}
fig, axes = plt.subplots(1, 3, figsize=(11, 4))
for ax, (name, cut) in zip(axes, planes.items()):
    ax.imshow(np.rot90(cut), cmap="gray")
    ax.set_title(f"{name} (FLAIR)")
    ax.axis("off")
fig.suptitle(f"{hgg}, through the tumour's centre (voxel {cx}, {cy}, {cz})")
plt.show()

# %% [markdown]
# ## Four sequences
#
# Each sequence shows tissue differently. FLAIR shows the oedema around the tumour bright; T1
# after gadolinium (T1ce) shows where the blood-brain barrier leaks, the enhancing rim typical of
# high-grade gliomas; plain T1 shows anatomy; T2 shows fluid and oedema bright. The
# segmentation's labels: 1 necrotic and non-enhancing core, 2 oedema, 4 enhancing tumour.

# %%
SEQUENCES = ("flair", "t1ce", "t1", "t2")  # the channel order gliograde uses


def show_sequences(subject: str, z: int) -> None:
    tumour = volume(subject, "seg")[:, :, z]
    fig, axes = plt.subplots(1, 5, figsize=(15, 3.4))
    for ax, sequence in zip(axes, SEQUENCES):
        ax.imshow(np.rot90(volume(subject, sequence)[:, :, z]), cmap="gray")
        ax.set_title(sequence.upper() if sequence != "t1ce" else "T1ce")
    axes[4].imshow(np.rot90(tumour), cmap="viridis", vmin=0, vmax=4)
    axes[4].set_title("segmentation (0, 1, 2, 4)")
    for ax in axes:
        ax.axis("off")
    fig.suptitle(f"{subject} ({grades[subject]}), axial slice {z}")
    plt.show()


show_sequences(hgg, cz)

# %% [markdown]
# ## Low grade next to high grade
#
# The grade is what we want a network to see. Below, each subject's axial slice with the most
# tumour: a high-grade glioma usually enhances on T1ce, often around a dark necrotic centre; a
# low-grade one usually does not. "Usually": the network has to learn the exceptions too.


# %%
def largest_tumour_slice(subject: str) -> int:
    return int(np.argmax((volume(subject, "seg") > 0).sum(axis=(0, 1))))


fig, axes = plt.subplots(2, 2, figsize=(8, 8))
for row, subject in zip(axes, (lgg, hgg)):
    z = largest_tumour_slice(subject)
    for ax, sequence in zip(row, ("flair", "t1ce")):
        ax.imshow(np.rot90(volume(subject, sequence)[:, :, z]), cmap="gray")
        ax.set_title(f"{grades[subject]} {subject[-3:]}: {sequence.upper()}, z={z}")
        ax.axis("off")
plt.show()

# %% [markdown]
# ## Four sequences as four channels
#
# A photograph is `[H, W, 3]`: three colour channels. The article's idea is to treat the four
# sequences the same way: one axial slice becomes one `[4, 240, 240]` image, channels first as
# PyTorch wants them. MRI intensities have no fixed scale, so each sequence is normalised first:
# here a z-score over the brain's voxels (those above 0), which is what `gliograde prepare` does
# too (after clipping the brain's 0.5 and 99.5 percentiles).


# %%
def normalised(v: np.ndarray) -> np.ndarray:
    brain = v > 0
    out = np.zeros_like(v, dtype=np.float32)
    out[brain] = (v[brain] - v[brain].mean()) / v[brain].std()
    return out


volumes = {s: np.stack([normalised(volume(s, q)) for q in SEQUENCES]) for s in subjects}
x = volumes[hgg][:, :, :, cz]
print("one slice, four channels:", x.shape)
print("per-channel mean over the brain:", np.round(x[:, x[0] != 0].mean(axis=1), 2))

# %% [markdown]
# ## A Dataset and a DataLoader
#
# PyTorch separates *what one item is* (a `Dataset`: `__len__` and `__getitem__`) from *how
# items are batched* (a `DataLoader`). BraTS needs its own Dataset. Ours keeps the axial slices
# that show at least 100 tumour pixels, as the reference study did, and labels each with its
# patient's grade (0 LGG, 1 HGG). Every slice of a patient gets the patient's label: that is
# why the patients, not the slices, must be split into training and test sets (tutorial 2).

# %%
from torch.utils.data import DataLoader, Dataset


class TumourSlices(Dataset):
    def __init__(self, volumes: dict[str, np.ndarray], min_tumour: int = 100):
        self.items = []
        for subject in volumes:
            tumour_pixels = (volume(subject, "seg") > 0).sum(axis=(0, 1))
            label = 1 if grades[subject] == "HGG" else 0
            self.items += [(subject, z, label) for z in np.flatnonzero(tumour_pixels >= min_tumour)]
        self.volumes = volumes

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        subject, z, label = self.items[i]
        return torch.from_numpy(self.volumes[subject][:, :, :, z]), label


dataset = TumourSlices(volumes)
loader = DataLoader(dataset, batch_size=8, shuffle=True)
batch, labels = next(iter(loader))
print(f"{len(dataset)} tumour slices from {len(subjects)} patients")
print("one batch:", tuple(batch.shape), "labels:", labels.tolist())

# %% [markdown]
# ## ResNet18, and its first and last layers
#
# The article takes torchvision's ResNet18. gliograde does not depend on torchvision (its PyPI
# build does not import beside the CPU build of PyTorch this project installs), so it builds the
# same network in torchvision's layout: gliograde's `ResNet18`, MONAI's `ResNet` written in
# PyTorch alone (its tests check it against MONAI's; the layer names match torchvision's, so
# ImageNet weights load into it). Built for 3 colour channels and ImageNet's 1,000 classes, its
# first and last layers print as torchvision's do:

# %%
from torch import nn

from gliograde.model.network import GradeNet
from gliograde.model.resnet import ResNet18

imagenet_resnet = ResNet18(in_channels=3, num_classes=1000)
print("conv1:", imagenet_resnet.conv1)
print("fc:   ", imagenet_resnet.fc)

# %% [markdown]
# To take our images, the first convolution must accept 4 channels and the last layer must give
# 2 outputs (LGG, HGG). The article replaces them like this, and prints
# `Conv2d(4, 64, kernel_size=(7, 7), stride=(1, 1))`:

# %%
article_resnet = ResNet18(in_channels=3, num_classes=1000)
article_resnet.conv1 = nn.Conv2d(4, 64, kernel_size=7)
article_resnet.fc = nn.Linear(512, 2)
print("conv1:", article_resnet.conv1)
print("fc:   ", article_resnet.fc)

# %% [markdown]
# That new first layer is not the old one with more inputs: written without `stride=2,
# padding=3, bias=False`, it takes PyTorch's defaults, **stride 1, no padding, and a bias**.
# gliograde keeps the original's settings. The difference, measured:

# %%
gliograde_stem = nn.Conv2d(4, 64, kernel_size=7, stride=2, padding=3, bias=False)
one = torch.from_numpy(x).unsqueeze(0)  # [1, 4, 240, 240]
for name, stem in (("article", article_resnet.conv1), ("gliograde", gliograde_stem)):
    out = stem(one)
    print(f"{name:9s} {stem}\n          output {tuple(out.shape)}")

# %%
import time


def forward_ms(model: nn.Module, batch: torch.Tensor, repeats: int = 3) -> float:
    model.eval()
    with torch.no_grad():
        model(batch)
        started = time.perf_counter()
        for _ in range(repeats):
            model(batch)
    return (time.perf_counter() - started) / repeats * 1000


ours = ResNet18(in_channels=4, num_classes=2)
batch8 = batch[:8]
t_ours, t_theirs = forward_ms(ours, batch8), forward_ms(article_resnet, batch8)
print(f"forward pass of {tuple(batch8.shape)} on this CPU:")
print(f"  gliograde's stem (stride 2, padding 3): {t_ours:.0f} ms")
print(f"  the article's stem (stride 1, no padding): {t_theirs:.0f} ms ({t_theirs / t_ours:.1f}×)")

# %% [markdown]
# Why gliograde keeps stride 2, padding 3 and no bias:
#
# - **Compute.** With stride 1 every later layer sees a 234×234 map instead of 120×120, about
#   3.8 times the pixels, so the whole network costs several times more (measured just above).
# - **Pretrained weights.** ImageNet's filters were learned at stride 2 with padding 3; loading
#   them into a stride-1 layer changes what they see (`gliograde train --pretrained`).
# - **The bias is redundant.** A batch normalisation follows, and it subtracts the mean: any
#   bias is cancelled.
#
# gliograde's network, `GradeNet`, is this ResNet18 with one more small head (512 → 1) that says
# whether a slice shows tumour, which lets `predict` grade without a segmentation:

# %%
model = GradeNet(in_channels=4, num_classes=2)
print("conv1:", model.backbone.conv1)
print("fc:   ", model.backbone.fc)
print("tumour head:", model.tumor_head)

# %% [markdown]
# ## One forward pass and its loss
#
# One `[4, 240, 240]` image, with a batch dimension added by `unsqueeze(0)`, goes through the
# network (on the GPU when there is one) and gives two logits. The article turns them into
# log-probabilities and takes the negative log-likelihood against the label; that is exactly
# `cross_entropy` on the logits. The loss of an untrained network is near `log 2 ≈ 0.69`: it
# does not know yet.

# %%
import torch.nn.functional as F

device = "cuda" if torch.cuda.is_available() else "cpu"
model = model.to(device).train()
image, label = dataset[0]
logits = model(image.unsqueeze(0).to(device))
target = torch.tensor([label], device=device)
loss = F.nll_loss(F.log_softmax(logits, dim=1), target)
print("input:", tuple(image.unsqueeze(0).shape), "on", device)
print("logits:", logits)
print("loss:", loss)
print("the same from cross_entropy:", F.cross_entropy(logits, target).item())

# %% [markdown]
# ## The same with three gliograde commands
#
# `check` reads every subject as the steps above did and says what is wrong, if anything.
# `prepare` normalises and stacks the slices into a store that reads one slice per disk read.
# `train` builds the Dataset, the DataLoader and `GradeNet`, and runs the loop with PyTorch
# Lightning, one model per fold of patients. With four patients this is a smoke test, not a
# model: one epoch of 64 slices, reduced to 64×64 so that it takes seconds on a CPU.

# %%
STORE, RUN, FOUR = WORK / "store", WORK / "run", WORK / "four-subjects"
FOUR.mkdir()  # the four subjects above, as a BraTS 2020 folder of links
for s in subjects:
    (FOUR / s).symlink_to(DATA / s)
(FOUR / "name_mapping.csv").symlink_to(DATA / "name_mapping.csv")
gliograde(f"check {FOUR}")

# %%
gliograde(f"prepare {FOUR} --out {STORE} --size 64 --workers 0")

# %%
gliograde(f"train {STORE} --out {RUN} --epochs 1 --epoch-slices 64 --select last --no-progress")

# %% [markdown]
# The figures `train` printed are on four patients, two held out per fold: they mean nothing,
# and their "intervals" show it. [Tutorial 2](../train_and_assess/) trains on enough patients
# to measure something.
#
# The store is a PyTorch Dataset too, batched as `[B, 4, H, W]`, and the run folder holds one
# model per fold with its training log:

# %%
from gliograde.store.dataset import SliceDataset

store = SliceDataset(STORE)
first = next(iter(DataLoader(store, batch_size=8)))
print(f"store: {len(store)} slices; one batch:", tuple(first["x"].shape), first["y"].tolist())
print("run folder:", sorted(p.name for p in RUN.iterdir()))
with open(RUN / "fold_0" / "logs" / "metrics.csv") as f:
    print(f.read().strip())

# %% [markdown]
# Next: [tutorial 2](../train_and_assess/) trains on a cohort large enough to measure, and shows
# how to read its figures honestly.
