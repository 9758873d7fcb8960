"""Synthetic BraTS-like cohorts: the embedded data of the demo and the tests.

Every subject is a skull-stripped brain phantom (white and grey matter, ventricles, sulcal CSF)
with a tumour labelled as in BraTS (1 necrotic/non-enhancing core, 2 edema, 4 enhancing); with
``skull=True`` the same brain lies inside CSF, skull and scalp (a raw-like head). The tumour's
look follows grade as radiologists describe it:

* HGG: a ring of enhancement on T1ce around a necrotic centre, wide edema, heterogeneous;
* LGG: little or no enhancement, bright and homogeneous on T2/FLAIR, little edema.

Size, place, shape, intensity scale, bias field and noise vary per subject, and some subjects
are atypical (HGG without necrosis and with faint enhancement; LGG with a patch of enhancement),
so that grade is learnable but not trivial. Data made here is synthetic and is named so
everywhere it appears.

With ``idh=True`` each subject also gets an IDH status (column ``IDH`` of the label CSV: mutant
for 80 % of LGG and 20 % of HGG, drawn on a stream of its own), shown as the T2-FLAIR mismatch
sign that marks IDH-mutant astrocytomas: a mutant tumour's core is bright on T2 but dark on
FLAIR. Wildtype subjects are byte for byte those made without ``idh``.

With ``who=True`` each subject also gets a WHO grade, a label of three classes (column
``WHO_grade``): 2 for LGG; for HGG, 3 with probability 0.4 (on a stream of its own), else 4.
A grade 3 is shown without a necrotic centre: its core (label 1) enhances on T1ce as its rim
does (radiologists read necrosis as the mark of grade 4). Grades 2 and 4 are byte for byte
those made without ``who``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gliograde import MODALITIES
from gliograde.core.errors import UsageError

BRATS_SHAPE = (240, 240, 155)
SYNTH_PREFIX = "Synth"
LABEL_COLUMNS = (
    "Grade",
    "BraTS_2017_subject_ID",
    "BraTS_2018_subject_ID",
    "TCGA_TCIA_subject_ID",
    "BraTS_2019_subject_ID",
    "BraTS_2020_subject_ID",
)

# Relative intensity of each tissue in FLAIR, T1ce, T1, T2 (white matter = 1 on T1).
_TISSUE = {
    "wm": (0.75, 1.00, 1.00, 0.70),
    "gm": (0.95, 0.80, 0.78, 0.85),
    "csf": (0.25, 0.30, 0.30, 1.60),
    "edema": (1.35, 0.80, 0.75, 1.35),
    "core": (1.30, 0.62, 0.60, 1.50),  # non-enhancing tumour (LGG core)
    "necrosis": (0.90, 0.35, 0.40, 1.65),
    "enhancing": (1.10, 1.75, 0.85, 1.15),
}
# Around the brain (``skull=True``), as shells of the brain's ellipsoid: extra-axial CSF, bone
# (dark on every sequence), scalp with fat (bright on T1 and T1ce). Fixed values, so that the
# random draws, and with them the brain, are those of the same subject without a skull.
_HEAD: dict[int, tuple[str | tuple[float, float, float, float], float]] = {
    4: ("csf", 1.06),
    5: ((0.10, 0.12, 0.12, 0.08), 1.16),
    6: ((1.00, 1.25, 1.30, 0.90), 1.25),
}


@dataclass(frozen=True)
class SynthSpec:
    """What to make: one subject of a synthetic cohort."""

    index: int
    grade: str
    seed: int
    out: Path
    shape: tuple[int, int, int]
    skull: bool = False
    idh: str | None = None  # "mutant" or "wildtype" with ``synth --idh``
    who: str | None = None  # "2", "3" or "4" with ``synth --who``

    @property
    def subject_id(self) -> str:
        return f"{SYNTH_PREFIX}_{self.index:04d}"


def synth_cohort(
    out: Path,
    subjects: int = 40,
    lgg_fraction: float = 0.25,
    seed: int = 0,
    shape: tuple[int, int, int] = BRATS_SHAPE,
    workers: int = 1,
    quiet: bool = False,
    skull: bool = False,
    idh: bool = False,
    who: bool = False,
) -> list[str]:
    """Write a synthetic cohort in the BraTS 2020 layout, with ``name_mapping.csv``.

    Deterministic for a seed: the same arguments give the same files, whatever ``workers``.
    ``skull``: heads with skull and scalp around the same brains (not skull-stripped).
    ``idh``: a second label, IDH status, visible as the T2-FLAIR mismatch (see the module).
    ``who``: a label of three classes, the WHO grade, grade 3 visible (see the module).

    Returns:
        The subject ids, in order.
    """
    from gliograde.core.parallel import map_with_progress

    if subjects < 2:
        raise UsageError("--subjects must be at least 2 (one HGG and one LGG)")
    if not 0 < lgg_fraction < 1:
        raise UsageError("--lgg-fraction must be between 0 and 1, exclusive")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n_lgg = min(subjects - 1, max(1, round(subjects * lgg_fraction)))
    grades = np.array(["HGG"] * (subjects - n_lgg) + ["LGG"] * n_lgg)
    np.random.default_rng(seed).shuffle(grades)
    statuses = idh_statuses(grades.tolist(), seed) if idh else [None] * subjects
    who_grades = who_grades_of(grades.tolist(), seed) if who else [None] * subjects
    x, y, z = shape  # a tuple, also where given as a list
    specs = [
        SynthSpec(i + 1, str(g), seed, out, (x, y, z), skull, status, w)
        for i, (g, status, w) in enumerate(zip(grades.tolist(), statuses, who_grades))
    ]
    ids = list(map_with_progress(write_subject, specs, workers, "synth", quiet=quiet))
    write_label_csv(out / "name_mapping.csv", specs)
    (out / "SYNTHETIC.txt").write_text(
        "This cohort is SYNTHETIC: brain phantoms made by `gliograde synth`, not patient data.\n"
        f"subjects={subjects} lgg_fraction={lgg_fraction} seed={seed} shape={list(shape)} "
        f"skull={skull} idh={idh} who={who}\n"
    )
    return ids


def idh_statuses(grades: list[str], seed: int) -> list[str]:
    """Each subject's IDH status: mutant with probability 0.8 (LGG) or 0.2 (HGG), on a stream
    of its own; both statuses present (the first subject's flipped if not)."""
    rng = np.random.default_rng([seed, 2021])
    mutant = rng.random(len(grades)) < np.where(np.array(grades) == "LGG", 0.8, 0.2)
    if mutant.all() or not mutant.any():
        mutant[0] = not mutant[0]
    return ["mutant" if m else "wildtype" for m in mutant]


def who_grades_of(grades: list[str], seed: int) -> list[str]:
    """Each subject's WHO grade: 2 for LGG; for HGG 3 with probability 0.4, else 4, on a stream
    of its own; with two HGG or more, both 3 and 4 present (the first HGG's flipped if not)."""
    rng = np.random.default_rng([seed, 5])
    hgg = np.array(grades) == "HGG"
    three = (rng.random(len(grades)) < 0.4) & hgg
    if hgg.sum() >= 2 and (three[hgg].all() or not three[hgg].any()):
        first = int(np.flatnonzero(hgg)[0])
        three[first] = not three[first]
    return ["2" if not h else "3" if t else "4" for h, t in zip(hgg, three)]


def write_label_csv(path: Path, specs: list[SynthSpec]) -> None:
    """A ``name_mapping.csv`` with the BraTS 2020 columns (only Grade and the 2020 id set), and
    ``IDH`` and ``WHO_grade`` when the subjects have them."""
    extra = [(name, key) for name, key in (("IDH", "idh"), ("WHO_grade", "who"))
             if any(getattr(s, key) for s in specs)]  # fmt: skip
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow((*LABEL_COLUMNS, *(name for name, _ in extra)))
        for s in specs:
            values = [getattr(s, key) for _, key in extra]
            writer.writerow([s.grade, "NA", "NA", "NA", "NA", s.subject_id, *values])


def write_subject(spec: SynthSpec) -> str:
    """Make one subject and write its five NIfTI files (write to a temporary name, then rename)."""
    import nibabel as nib

    images, seg = make_subject(
        spec.grade, np.random.default_rng([spec.seed, spec.index]), spec.shape, spec.skull
    )
    if spec.idh == "mutant":
        show_mismatch(images, seg)
    if spec.who == "3":
        show_solid_core(images, seg)
    folder = spec.out / spec.subject_id
    folder.mkdir(parents=True, exist_ok=True)
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    affine[1, 3] = spec.shape[1] - 1
    volumes = dict(zip(MODALITIES, images)) | {"seg": seg}
    for role, data in volumes.items():
        img = nib.Nifti1Image(data, affine)
        img.header.set_xyzt_units("mm", "sec")
        final = folder / f"{spec.subject_id}_{role}.nii.gz"
        tmp = folder / f".{final.name}.tmp.nii.gz"
        nib.save(img, tmp)
        tmp.replace(final)
    return spec.subject_id


def make_subject(
    grade: str,
    rng: np.random.Generator,
    shape: tuple[int, int, int] = BRATS_SHAPE,
    skull: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic subject in memory (``skull``: the same brain, with skull and scalp).

    Returns:
        (images, seg): int16 ``(4, x, y, z)`` in the order FLAIR, T1ce, T1, T2, and uint8
        ``(x, y, z)`` labels {0, 1, 2, 4}.
    """
    (nx, ny, nz), centre, radii, brain, tissue = make_anatomy(rng, shape)
    seg, atypical = make_tumor(grade, rng, shape, centre, radii, brain & (tissue != 3))
    inside = add_head(tissue, np.sqrt(nx**2 + ny**2 + nz**2)) if skull else brain
    tumor_cls = {1: "necrosis" if grade == "HGG" else "core", 2: "edema", 4: "enhancing"}
    texture = smooth_pattern(rng, nx, ny, nz, frequency=4.0)
    b = rng.uniform(-1, 1, 3) * [0.12, 0.12, 0.08]
    bias = 1.0 + float(b[0]) * nx + float(b[1]) * ny + float(b[2]) * nz
    images = np.zeros((4, *shape), dtype=np.int16)
    enhancement = rng.uniform(0.35, 0.6) if atypical and grade == "HGG" else rng.uniform(0.8, 1.2)
    heterogeneity = 0.18 if grade == "HGG" else 0.05
    for c in range(4):
        table = np.zeros(8, dtype=np.float32)
        for code, name in ((1, "wm"), (2, "gm"), (3, "csf")):
            table[code] = _TISSUE[name][c] * rng.uniform(0.95, 1.05)
        for code, (look, _) in _HEAD.items():
            table[code] = table[3] if isinstance(look, str) else look[c]  # "csf": as CSF
        vol = table[tissue]
        for label, name in tumor_cls.items():
            value = _TISSUE[name][c] * rng.uniform(0.9, 1.1)
            if name == "enhancing" and c == 1:
                value = 1.0 + (value - 1.0) * enhancement
            mask = seg == label
            vol[mask] = value * (1.0 + heterogeneity * texture[mask])
        noise = rng.standard_normal(shape, dtype=np.float32)
        noise *= float(rng.uniform(0.02, 0.05))
        vol *= bias
        vol += noise
        vol *= float(rng.uniform(300.0, 1500.0))
        np.clip(vol, 1.0, 32000.0, out=vol)
        images[c] = vol * inside
    return images, seg


MISMATCH = 0.35
"""FLAIR of a mutant tumour's core, relative to its own: dark on FLAIR, still bright on T2."""


def show_mismatch(images: np.ndarray, seg: np.ndarray) -> None:
    """The T2-FLAIR mismatch sign, in place: the core (label 1) darkened on FLAIR only."""
    core = seg == 1
    images[0][core] = (images[0][core] * MISMATCH).astype(images.dtype)


def show_solid_core(images: np.ndarray, seg: np.ndarray) -> None:
    """Grade 3's look, in place: the core (label 1) as bright on T1ce as the enhancing rim
    (label 4) on average, its texture kept; no necrotic centre."""
    core, rim = seg == 1, seg == 4
    if core.any() and rim.any():
        gain = images[1][rim].mean() / max(float(images[1][core].mean()), 1.0)
        images[1][core] = np.clip(images[1][core] * gain, 1, 32000).astype(images.dtype)


def add_head(tissue: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Label the shells around the brain (``rho`` ≥ 1) as CSF, bone and scalp, in place;
    return the head's mask."""
    inner = 1.0
    for code, (_, outer) in _HEAD.items():
        tissue[(rho >= inner) & (rho < outer)] = code
        inner = outer
    return rho < inner


def make_anatomy(rng: np.random.Generator, shape: tuple[int, int, int]):
    """The head's coordinates, brain mask and tissue classes (0 outside, 1 WM, 2 GM, 3 CSF).

    Returns:
        ((nx, ny, nz), centre, radii, brain, tissue): coordinates normalised to the brain's
        ellipsoid, which has ``centre`` and ``radii`` in voxels.
    """
    sx, sy, sz = shape
    x = np.arange(sx, dtype=np.float32)[:, None, None]
    y = np.arange(sy, dtype=np.float32)[None, :, None]
    z = np.arange(sz, dtype=np.float32)[None, None, :]
    centre = np.array([sx / 2, sy / 2, sz * 0.47]) + rng.normal(0, 0.015, 3) * shape
    radii = np.array([0.30, 0.36, 0.40]) * shape * rng.uniform(0.92, 1.06, 3)
    # Python floats keep the arithmetic in float32 (a NumPy float64 scalar would promote it).
    c, r = centre.tolist(), radii.tolist()
    nx, ny, nz = (x - c[0]) / r[0], (y - c[1]) / r[1], (z - c[2]) / r[2]
    rho_brain = np.sqrt(nx**2 + ny**2 + nz**2)
    brain = rho_brain < 1.0

    tissue = np.where(brain, np.uint8(1), np.uint8(0))
    folds = smooth_pattern(rng, nx, ny, nz, frequency=9.0)
    tissue[brain & (rho_brain > 0.90 + 0.05 * folds)] = 2
    tissue[brain & (rho_brain > 0.95) & (folds > 0.4)] = 3
    for side in (-1, 1):  # deep grey nuclei (thalamus, basal ganglia)
        g = ((nx - side * 0.22) / 0.12) ** 2 + ((ny - 0.05) / 0.18) ** 2 + ((nz + 0.05) / 0.15) ** 2
        tissue[g < 1.0] = 2
    for side in (-1, 1):
        v = ((nx - side * 0.10) / 0.07) ** 2 + ((ny + 0.05) / 0.30) ** 2 + ((nz - 0.05) / 0.22) ** 2
        tissue[v < 1.0] = 3

    return (nx, ny, nz), centre, radii, brain, tissue


def smooth_pattern(rng, nx, ny, nz, frequency: float) -> np.ndarray:
    """A smooth random pattern in [-1, 1]: a sum of three random plane waves (cheap, separable)."""
    waves: list[np.ndarray] = []
    for _ in range(3):
        k = rng.normal(0, 1, 3)
        kx, ky, kz = (k * frequency / np.linalg.norm(k)).tolist()
        phase = float(rng.uniform(0, 2 * np.pi))
        waves.append(np.cos(kx * nx + ky * ny + (kz * nz + phase)))
    return ((waves[0] + waves[1] + waves[2]) / 3.0).astype(np.float32)


def make_tumor(grade, rng, shape, centre, radii, allowed) -> tuple[np.ndarray, bool]:
    """Tumour labels (1, 2, 4) drawn in a box around a random centre inside the brain.

    Returns:
        (seg, atypical): the labels, and whether this tumour was drawn atypical for its grade.
    """
    atypical = rng.random() < 0.15
    brain_r = float(np.mean(radii))
    direction = rng.normal(0, 1, 3)
    direction /= np.linalg.norm(direction)
    direction[0] = abs(direction[0]) * rng.choice([-1, 1])
    t_centre = centre + direction * rng.uniform(0.25, 0.50) * radii
    if grade == "HGG":
        r0 = brain_r * rng.uniform(0.16, 0.30)
        necrosis = 0.0 if atypical else rng.uniform(0.40, 0.65)
        edema = rng.uniform(1.5, 2.2)
    else:
        r0 = brain_r * rng.uniform(0.14, 0.28)
        necrosis = 0.0
        edema = rng.uniform(1.08, 1.45)
    reach = r0 * (edema + 0.6)
    lo = np.maximum(np.floor(t_centre - reach), 0).astype(int)
    hi = np.minimum(np.ceil(t_centre + reach), shape).astype(int)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    dx, dy, dz = (np.arange(a, b, dtype=np.float32) - c for a, b, c in zip(lo, hi, t_centre))
    dx, dy, dz = dx[:, None, None], dy[None, :, None], dz[None, None, :]
    dist = np.sqrt(dx**2 + dy**2 + dz**2) + 1e-3
    ux, uy, uz = dx / dist, dy / dist, dz / dist
    shape_mod = 1.0 + 0.22 * irregularity(rng, ux, uy, uz)
    rho = dist / (r0 * shape_mod)
    edema_rho = dist / (r0 * edema * (1.0 + 0.25 * irregularity(rng, ux, uy, uz)))

    seg = np.zeros(shape, dtype=np.uint8)
    local = np.zeros(rho.shape, dtype=np.uint8)
    local[edema_rho < 1.0] = 2
    if grade == "HGG":
        local[rho < 1.0] = 4
        local[rho < necrosis] = 1
        if atypical:  # faint, patchy enhancement: part of the rim is non-enhancing core
            patchy = irregularity(rng, ux, uy, uz) > 0.0
            local[(rho < 1.0) & patchy] = 1
    else:
        local[rho < 1.0] = 1
        if atypical:  # a small enhancing nodule inside a low-grade tumour
            nodule = dist / (r0 * 0.30) < 1.0
            local[nodule & (rho < 1.0)] = 4
    seg[box] = np.where(allowed[box], local, 0)
    return seg, atypical


def irregularity(rng, ux, uy, uz) -> np.ndarray:
    """A random low-order function of direction, roughly in [-1, 1] (a lumpy sphere)."""
    a = rng.normal(0, 0.5, 6)
    return (
        a[0] * ux * uy
        + a[1] * uy * uz
        + a[2] * ux * uz
        + a[3] * (ux**2 - uy**2)
        + a[4] * (3 * uz**2 - 1) / 2
        + a[5] * ux
    )


def parse_shape(text: str) -> tuple[int, int, int]:
    """``"240,240,155"`` → ``(240, 240, 155)``; a clear error for anything else."""
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 16:
        raise UsageError(f"--size {text!r}: give three sizes of at least 16, as X,Y,Z")
    return shape
