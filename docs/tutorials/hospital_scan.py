# %% [markdown]
# # 3. Grade a hospital scan
#
# Scans from a hospital's PACS are not in BraTS's form: four series in different grids, often
# 4–5 mm slices, each acquired with the patient lying a little differently, the skull still on,
# and files named by UIDs. This tutorial takes such an export through `gliograde preprocess`,
# looks at its QC picture, grades it with `gliograde predict`, and reads the DICOM Structured
# Report that `predict` writes for the PACS back with pydicom.
#
# **Data: SYNTHETIC.** The "hospital export" is a brain phantom with skull and scalp (`gliograde
# synth --skull`), each sequence turned, moved and resampled to its own anisotropic grid, and
# written as a DICOM export by `gliograde.scans.simulate`. The model is trained on 12 synthetic
# phantoms in seconds: its grade means nothing. What this page shows is the path.
#
# **Run it yourself:** `.venv/bin/python docs/tutorials/hospital_scan.py`.

# %%
import json
import tempfile
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import pydicom

from gliograde.cli.typed import gliograde

WORK = Path(tempfile.mkdtemp(prefix="gliograde-tutorial3-"))
EXPORT, SCANS, SR = WORK / "pacs-export", WORK / "scans", WORK / "sr"


# %% [markdown]
# ## A simulated PACS export
#
# `raw_like` turns, moves and resamples each sequence of a subject folder; `write_raw_export`
# writes the four volumes as DICOM series, one file per slice, with random file names, as a
# PACS exports them.

# %%
from gliograde.scans.simulate import raw_like, write_raw_export

gliograde(f"synth {WORK / 'heads'} --subjects 2 --skull --seed 5")
head = min(p for p in (WORK / "heads").iterdir() if p.is_dir())
write_raw_export(raw_like(head, WORK / "raw-nifti"), EXPORT)

files = sorted(EXPORT.iterdir())
headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
print(f"{len(files)} files, named like {files[0].name}")
series = Counter((h.SeriesNumber, h.SeriesDescription) for h in headers)
for (number, description), count in sorted(series.items()):
    h = next(h for h in headers if h.SeriesNumber == number)
    spacing = [float(v) for v in h.PixelSpacing] + [float(h.SliceThickness)]
    print(f"series {number}: {description:28s} {count:3d} slices, voxels {spacing} mm")

# %% [markdown]
# ## Preprocessing
#
# `preprocess` finds the four sequences by their descriptions and, independently, their
# timing (TR, TE, TI) and contrast agent; converts them with dcm2niix; removes the bias field
# (N4); registers FLAIR, T1 and T2 onto T1ce; strips the skull (deepbet); and brings the result
# to a 1 mm, 240×240×155 atlas grid in BraTS's orientation. Each step is checked, and a failed
# check is one line saying what to do.

# %%
gliograde(f"preprocess {EXPORT} --out {SCANS}")
subject = next(p for p in SCANS.iterdir() if p.is_dir())
record = json.loads((subject / "preprocess.json").read_text())
print("\nseries found:")
for role, found in record["series"].items():
    print(f"  {role:5s} ← series {found.get('number')}: {found.get('description')!r}")
print("seconds per step:", {k: round(v, 1) for k, v in record["seconds"].items()})
print("brain volume:", round(record["brain_ml"]), "mL")

# %% [markdown]
# ## Look at the QC picture
#
# The checks catch gross failures, not a brain mask that cuts off a tumour at the brain's edge,
# or a sequence misaligned by a few millimetres. Look at `qc.png` before trusting a grade: the
# four sequences on three planes, with the brain mask's outline.

# %%
plt.figure(figsize=(12, 9))
plt.imshow(plt.imread(subject / "qc.png"))
plt.axis("off")
plt.show()

# %% [markdown]
# ## A model to grade with
#
# Any run folder works here; to keep this page self-contained we train two fold models on 12
# synthetic phantoms, for two epochs each: far too little for a meaningful grade, but a real
# cross-validated run, whose held-out patients set its calibration and the threshold of its
# "uncertain" flag (a `--full` run has no held-out patient, so it never flags).

# %%
COHORT, STORE, RUN = WORK / "cohort", WORK / "store", WORK / "run"
gliograde(f"synth {COHORT} --subjects 12 --lgg-fraction 0.5 --seed 1")
gliograde(f"prepare {COHORT} --out {STORE} --size 48 --folds 2 --workers 0")
gliograde(f"train {STORE} --out {RUN} --epochs 2 --epoch-slices 128 --select last --no-progress")

# %% [markdown]
# ## Grading, and a DICOM SR for the PACS
#
# `predict` grades the preprocessed folder without a segmentation (a new patient has none):
# every brain slice is scored, weighted by the model's probability that it shows tumour.
# Before grading it checks that the patient looks like those the run was trained on; a
# patient outside that range is refused with the reason (`--force` grades anyway and flags
# it). `--json` prints the answer and nothing else on stdout.
#
# `--dicom-sr` writes a DICOM Comprehensive SR (TID 1500) that joins the patient's study: it
# refers to the export's images, which `preprocess.json` names. (`predict` also takes the
# DICOM folder itself: it then runs the same preprocessing into its cache, `GLIOGRADE_CACHE`,
# and grades in one go.)

# %%
answer = json.loads(gliograde(f"predict {RUN} {subject} --json --dicom-sr {SR}"))[0]
print({k: answer[k] for k in ("subject", "grade", "p_hgg", "flag", "used_seg", "n_slices")})

# %% [markdown]
# ## Reading the SR back
#
# The SR is a DICOM file like the images, in the same study, in its own series marked for
# research use. Its content is a tree: the measurement report holds one group with the grade
# and the flag as coded values, and the probability and uncertainty as numbers.

# %%
(sr_file,) = SR.glob("*.dcm")
sr = pydicom.dcmread(sr_file)
print("Modality:", sr.Modality, "| SeriesDescription:", sr.SeriesDescription)
print("same study as the images:", sr.StudyInstanceUID == headers[0].StudyInstanceUID)
print("completion / verification:", sr.CompletionFlag, "/", sr.VerificationFlag)
evidence = sum(
    len(s.ReferencedSOPSequence)
    for e in sr.CurrentRequestedProcedureEvidenceSequence
    for s in e.ReferencedSeriesSequence
)
print("source images listed as evidence:", evidence, "of", len(files))


def walk(items, depth=0):
    for item in items:
        name = item.ConceptNameCodeSequence[0].CodeMeaning
        if name == "Image Library":  # one entry per source image: long, and shown above
            continue
        if item.ValueType == "CODE":
            value = item.ConceptCodeSequence[0].CodeMeaning
        elif item.ValueType == "NUM":
            value = item.MeasuredValueSequence[0].NumericValue
        elif item.ValueType == "TEXT":
            value = item.TextValue
        else:
            value = ""
        if item.ValueType in ("CODE", "NUM", "TEXT", "CONTAINER"):
            print("  " * depth + f"{item.ValueType:9s} {name}: {value}")
        walk(getattr(item, "ContentSequence", []), depth + 1)


walk(sr.ContentSequence)
