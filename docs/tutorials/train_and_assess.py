# %% [markdown]
# # 2. Train and assess honestly
#
# A figure about patients is worth something only if those patients played no part in choosing
# what is measured. This tutorial trains a small cross-validated model with `prepare`, `train`
# and `evaluate`, reads its ROC curve, its reliability diagram and its "uncertain" flags, and
# then measures, on the same store, how much a common shortcut inflates the AUC: choosing each
# fold's checkpoint on the patients it reports.
#
# **Data: SYNTHETIC.** 30 brain phantoms from `gliograde synth` (not patients), at a reduced
# volume size, with small training settings (as MONAI's tutorial runner cuts epochs), so that
# the page executes in about a minute on 2 CPU cores. The figures say how the protocol
# behaves, nothing about accuracy on patients.
#
# **Run it yourself:** `.venv/bin/python docs/tutorials/train_and_assess.py`.

# %%
import csv
import json
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from gliograde.cli.typed import gliograde

WORK = Path(tempfile.mkdtemp(prefix="gliograde-tutorial2-"))
DATA, STORE, RUN = WORK / "cohort", WORK / "store", WORK / "run"


# %% [markdown]
# ## Data, store and folds
#
# `synth` writes a cohort in BraTS 2020's layout. `prepare` normalises it into a slice store
# and splits the **patients** into folds, stratified by grade; every slice of a patient goes
# to the same fold. Splitting slices instead would put neighbouring slices of one patient on
# both sides, and the test figures would measure how well the model remembers a patient.

# %%
gliograde(f"synth {DATA} --subjects 30 --lgg-fraction 0.33 --size 120,120,78 --seed 3")
gliograde(f"prepare {DATA} --out {STORE} --size 48 --folds 3 --workers 0")
splits = json.loads((STORE / "splits.json").read_text())
for k, fold in enumerate(splits):
    print(f"fold {k}: {len(fold['train'])} training patients, {len(fold['val'])} held out")

# %% [markdown]
# ## Training, with the checkpoint chosen on training patients only
#
# For each fold, `train` splits the fold's training patients again (`--select inner`, the
# default): 80 % train the network, 20 % (the *inner selection split*) choose its checkpoint
# after each epoch. The fold's held-out patients are not read until training is over; then
# each is graded once. `--patience 0` turns early stopping off so that every fold runs its
# five epochs (it makes the comparison further down simpler).

# %%
TRAIN = "--epochs 5 --epoch-slices 160 --lr 3e-3 --patience 0 --no-progress"
gliograde(f"train {STORE} --out {RUN} {TRAIN}")

# %% [markdown]
# ## Reading the figures
#
# `evaluate` recomputes every figure from the evidence saved for the held-out patients (train
# ran it once already). `metrics.json` holds them: `patient` with the segmentation (its tumour
# slices speak), `patient_noseg` as `predict` grades a patient without one, `slice` each slice
# on its own.

# %%
gliograde(f"evaluate {RUN}")
metrics = json.loads((RUN / "metrics.json").read_text())
patient = metrics["patient"]
print("patient AUC:", round(patient["auc"], 3), "95% CI", np.round(patient["auc_ci"], 3))
print("per fold:", [round(f["auc"], 3) for f in patient["per_fold"]])

# %% [markdown]
# With 30 patients the bootstrap interval is wide: that interval, not the point, is what the
# data can support. The ROC curve and the reliability diagram `evaluate` wrote:

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 5))
for ax, name in zip(axes, ("roc.png", "reliability.png")):
    ax.imshow(plt.imread(RUN / name))
    ax.axis("off")
plt.show()

# %% [markdown]
# The reliability diagram compares the predicted P(HGG) with how often those patients are HGG:
# a calibrated model sits on the diagonal. Calibration (a temperature and a bias) is fitted
# **cross-fitted**: each fold's patients are calibrated by a rule fitted on the other folds.
# So is the threshold of the "uncertain" flag: the largest uncertainty at which the confident
# patients of the other folds reach 95 % accuracy.

# %%
calibration, flags = patient["calibration"], patient["uncertainty"]
print("calibration applied:", calibration["applied"])
print(
    "ECE before / after:",
    round(calibration["ece_before"], 3),
    "/",
    round(calibration["ece_after"], 3),
)
print("flagged:", flags["n_flagged"], "of", flags["n_flagged"] + flags["n_confident"], "patients")
print(
    "accuracy when confident:",
    flags["accuracy_confident"],
    " when flagged:",
    flags["accuracy_flagged"],
)
with open(RUN / "predictions_patients.csv", newline="") as f:
    rows = list(csv.DictReader(f))
print("\nsubject        fold  y  p_hgg  uncertainty  flag")
for r in sorted(rows, key=lambda r: -float(r["uncertainty"]))[:6]:
    print(
        f"{r['subject']:14s} {r['fold']:>4s}  {r['y']}  {float(r['p_hgg']):.3f}  "
        f"{float(r['uncertainty']):11.3f}  {r['flag']}"
    )

# %% [markdown]
# ## How much does choosing on the reported patients inflate the AUC?
#
# A common shortcut: after each epoch, score the fold's held-out patients and keep the
# checkpoint that scores best, then report that score. It is the best of five draws, and it
# looks better than what the model will do on the next patient.
#
# To measure it we train each fold again, exactly as `train` did (same patients, same seed, so
# the same weights: checked below), with a Lightning callback that also scores the held-out
# patients after every epoch, with the patient rule (the mean P(HGG) of the tumour slices,
# before calibration). Then we compare, fold by fold, the held-out AUC at the epoch the inner
# split chose (the checkpoint gliograde keeps) with the best held-out AUC over the epochs (what
# the shortcut would report).

# %%
from dataclasses import replace

import lightning as L
import torch
from safetensors.torch import load_file
from sklearn.metrics import roc_auc_score

from gliograde.assess.crossval import stored_slices
from gliograde.run import Run
from gliograde.store.read import SliceStore
from gliograde.train.fit import train_one

run, store = Run.open(RUN), SliceStore(STORE)


class HeldOutAUC(L.Callback):
    """After each epoch, the patient-level AUC on patients the fold must not look at."""

    def __init__(self, patients: list[str]):
        self.patients, self.auc = patients, []

    def on_train_epoch_end(self, trainer, module):
        module.model.eval()
        p, y = [], []
        with torch.no_grad():
            for subject in self.patients:
                x, tumour_pixels, rows = stored_slices(store, subject)
                logits, _ = module.model.forward_heads(x[tumour_pixels >= run.min_tumor])
                p.append(logits.softmax(dim=1)[:, 1].mean().item())
                y.append(int(store.index.label[rows[0]]))
        module.model.train()
        self.auc.append(roc_auc_score(y, p))


def same_weights(a: Path, b: Path) -> bool:
    first, second = load_file(a), load_file(b)
    return first.keys() == second.keys() and all(torch.equal(first[n], second[n]) for n in first)


def inner_choice(fold_dir: Path) -> int:
    """The epoch whose checkpoint the inner selection split chose (best.ckpt)."""
    return torch.load(fold_dir / "checkpoints" / "best.ckpt", weights_only=False)["epoch"]


curves, chosen = [], []
for k in run.folds():
    split = run.fold_split(k)
    fold_dir = WORK / "replay" / f"fold_{k}"
    callback = HeldOutAUC(split["val"])
    config = replace(run.train_config, out=str(WORK / "replay"), progress=False)
    weights = train_one(config, store, fold_dir, split["train"], split["select"], [callback])
    same = same_weights(weights, RUN / f"fold_{k}" / "model.safetensors")
    curves.append(callback.auc)
    chosen.append(inner_choice(fold_dir))
    print(f"fold {k}: replayed weights identical to train's: {same}")
    assert same, "the replay must train the very model `train` kept"

# %%
honest = [curve[e] for curve, e in zip(curves, chosen)]
peeked = [max(curve) for curve in curves]
fig, ax = plt.subplots(figsize=(7, 4.5))
epochs = np.arange(1, len(curves[0]) + 1)
for k, (curve, e) in enumerate(zip(curves, chosen)):
    (line,) = ax.plot(epochs, curve, marker=".", label=f"fold {k}")
    ax.plot(e + 1, curve[e], "o", ms=11, mfc="none", color=line.get_color())
    ax.plot(np.argmax(curve) + 1, max(curve), "*", ms=12, color=line.get_color())
ax.set_xlabel("epoch")
ax.set_ylabel("held-out patient AUC")
ax.set_title("○ chosen by the inner split (reported)   ★ chosen on the held-out patients")
ax.legend()
plt.show()
print("mean held-out AUC, checkpoint chosen by the inner split:", round(np.mean(honest), 3))
print("mean held-out AUC, checkpoint chosen on the same patients:", round(np.mean(peeked), 3))
print("inflation:", round(np.mean(peeked) - np.mean(honest), 3))

# %% [markdown]
# The starred figure is always at least the circled one: it is a maximum. How much higher it
# comes out depends on how noisy each epoch's score is, and with ten held-out patients a
# fold it is noisy. A real cohort behaves the same way; this is why every figure gliograde
# reports is held out, and why, for a model you will use, the figure to trust is
# `gliograde evaluate RUN --test` on patients from your hospital that it never saw
# ([how-to](../../how-to/independent-cohorts/)).
