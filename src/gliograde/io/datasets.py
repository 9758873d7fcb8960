"""Datasets described by a ``dataset.json``: the Medical Segmentation Decathlon and nnU-Net.

Both keep their images in ``imagesTr/`` (and ``imagesTs/``) and segmentations in
``labelsTr/``, and name the sequences and the segmentation's labels in ``dataset.json``:

* the Decathlon (Task01_BrainTumour, BraTS 2016/17 data): one 4D NIfTI per case,
  ``imagesTr/BRATS_001.nii.gz``, its volumes named by ``"modality": {"0": "FLAIR", "1": "T1w",
  "2": "t1gd", "3": "T2w"}``; labels ``{"0": "background", "1": "edema", "2": "non-enhancing
  tumor", "3": "enhancing tumour"}``;
* nnU-Net (v1 and v2): one file per channel, ``imagesTr/CASE_0000.nii.gz`` to ``_0003``, named
  by ``"channel_names"`` (v2) or ``"modality"`` (v1); v2 writes labels as ``{"background": 0,
  "edema": 1, ...}``.

Roles come from the names the data declares, never from the channels' order, and so do the
labels: they are turned into BraTS's codes (1 necrotic or non-enhancing core, 2 oedema,
4 enhancing) by name. Grades are not part of these datasets: give them with ``--labels CSV``
(or a ``name_mapping.csv`` beside ``dataset.json``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from gliograde import MODALITIES, SEQUENCE_NAMES
from gliograde.core.errors import DataError
from gliograde.io.cohort import SEG, Cohort, Subject, sort_subjects
from gliograde.io.labels import default_label_csv, read_label_csv
from gliograde.io.nifti import is_nifti, strip_nifti_suffix
from gliograde.io.target import GRADE

DESCRIPTION = "dataset.json"
SPLITS = ("imagesTr", "imagesTs")
CHANNEL_FILE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})\.nii(\.gz)?$", re.IGNORECASE)
ROLE_NAMES = {
    "flair": "flair", "fla": "flair", "t2f": "flair", "t2flair": "flair",
    "t1ce": "t1ce", "t1c": "t1ce", "t1gd": "t1ce", "t1post": "t1ce",
    "t1": "t1", "t1w": "t1", "t1n": "t1", "t1pre": "t1",
    "t2": "t2", "t2w": "t2",
}  # fmt: skip
"""A channel's declared name, lower case without spaces, dashes or underscores → role."""


def dataset_root(path: Path) -> Path | None:
    """The folder holding ``dataset.json`` when ``path`` is it or one of its image folders."""
    path = Path(path)
    if not path.is_dir():
        return None
    folder = path.parent if path.name in SPLITS else path
    if (folder / DESCRIPTION).is_file() and any((folder / s).is_dir() for s in SPLITS):
        return folder
    return None


def read_description(root: Path) -> dict:
    path = root / DESCRIPTION
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not readable JSON ({err}); restore the dataset's file") from err


def channel_roles(description: dict, where: Path) -> dict[str, int]:
    """Role → channel index, from ``channel_names`` or ``modality``."""
    names = description.get("channel_names") or description.get("modality")
    if not isinstance(names, dict) or not names:
        raise DataError(f"{where}: no channel_names or modality; name the four sequences there")
    if not all(str(k).isdigit() for k in names):
        raise DataError(f'{where}: channel indices must be numbers ("0": "FLAIR", ...)')
    roles: dict[str, int] = {}
    for index, name in sorted(names.items(), key=lambda kv: int(kv[0])):
        role = ROLE_NAMES.get(re.sub(r"[\s_\-]", "", str(name)).lower())
        if role is None:
            raise DataError(
                f"{where}: channel {index} is {name!r}, none of FLAIR, T1ce, T1, T2; name it "
                "so (FLAIR, T1w, t1gd, T2w) or leave this dataset's other channels out"
            )
        if role in roles:
            raise DataError(
                f"{where}: channels {roles[role]} and {index} both read as "
                f"{SEQUENCE_NAMES[role]}; rename one in channel_names"
            )
        roles[role] = int(index)
    missing = [SEQUENCE_NAMES[r] for r in MODALITIES if r not in roles]
    if missing:
        raise DataError(f"{where}: no channel named {', '.join(missing)}; all four are needed")
    return roles


def brats_codes(description: dict, where: Path) -> dict[int, int]:
    """The segmentation's label → BraTS's code, by the labels' names (or, for nnU-Net's
    region-based labels, by which regions hold each label)."""
    labels = description.get("labels")
    if not isinstance(labels, dict) or not labels:
        raise DataError(f"{where}: no labels; name the segmentation's labels there")
    pairs = list(labels.items())
    if all(isinstance(v, str) and not v.isdigit() for v in labels.values()):  # Decathlon, v1
        pairs = [(v, k) for k, v in labels.items()]
    if any(isinstance(v, list) for _, v in pairs):
        return region_codes(pairs, where)
    codes = {}
    for name, value in pairs:
        codes[label_number(value, name, where)] = brats_code(str(name), where)
    return codes


def label_number(value, name, where: Path) -> int:
    if isinstance(value, bool) or not str(value).isdigit():
        raise DataError(f"{where}: label {name!r} has the value {value!r}, not a number")
    return int(value)


NAMED = (
    (0, ("background",)),
    (2, ("edema", "oedema", "ed", "snfh", "peritumoraledema",
         "surroundingnonenhancingflairhyperintensity")),
    (1, ("nonenhancingtumor", "nonenhancingtumour", "nonenhancing", "necrosis", "necrotic",
         "ncr", "net", "netc", "ncrnet", "necroticcore", "necroticandnonenhancingtumorcore",
         "nonenhancingtumorcore")),
    (4, ("enhancingtumor", "enhancingtumour", "enhancing", "et")),
)  # fmt: skip
"""BraTS's code of each label name (lower case, without spaces, dashes or underscores),
BraTS 2021–2023's abbreviations included. A name must be one of these exactly."""


def brats_code(name: str, where: Path) -> int:
    """BraTS's code of a label named ``name``."""
    key = re.sub(r"[\s_\-]", "", name).lower()
    for code, names in NAMED:
        if key in names:
            return code
    raise DataError(
        f"{where}: label {name!r} is none of background, edema, non-enhancing tumour "
        "(necrosis), enhancing tumour; rename it in labels"
    )


def region_codes(pairs: list, where: Path) -> dict[int, int]:
    """nnU-Net's region-based labels (``"whole tumor": [1, 2, 3], "tumor core": [2, 3],
    "enhancing tumor": [3]``): each label's compartment from the regions that hold it."""
    regions = {}
    for name, value in pairs:
        values = value if isinstance(value, list) else [value]
        regions[re.sub(r"[\s_\-]", "", str(name)).lower()] = {
            label_number(v, name, where) for v in values
        }
    codes = {}
    for label in sorted(set().union(*regions.values())):
        holding = {name for name, members in regions.items() if label in members}
        if label == 0 or "background" in holding:
            codes[label] = 0
        elif holding & {"enhancingtumor", "enhancingtumour", "et"}:
            codes[label] = 4
        elif holding & {"tumorcore", "tumourcore", "tc"}:
            codes[label] = 1
        elif holding & {"wholetumor", "wholetumour", "wt"}:
            codes[label] = 2
        else:
            raise DataError(f"{where}: label {label} is in regions {sorted(holding)}, none known")
    return codes


def discover_dataset(data: Path, labels: Path | None = None, need_labels: bool = True) -> Cohort:
    """The cases of a Decathlon or nnU-Net dataset: ``data`` is the folder of ``dataset.json``
    (its ``imagesTr/`` for training, both image folders for prediction) or one image folder.

    Raises:
        DataError: ``dataset.json`` does not name the four sequences or the labels, or no case.
    """
    root = dataset_root(data)
    if root is None:
        raise DataError(f"{data}: no {DESCRIPTION} beside {' or '.join(SPLITS)}; not a dataset")
    description = read_description(root)
    roles = channel_roles(description, root / DESCRIPTION)
    codes = brats_codes(description, root / DESCRIPTION) if (root / "labelsTr").is_dir() else {}
    chosen = [Path(data).name] if Path(data) != root else SPLITS[: 1 if need_labels else 2]
    found = [c for split in chosen for c in split_cases(root, split, roles, codes)]
    if not found:
        raise DataError(f"{root}: no case in {', '.join(chosen)} (CASE.nii.gz or CASE_0000.nii.gz)")
    labels = labels or default_label_csv(root)
    names = [s.subject_id for s in found]
    grades, label_problems, notes = read_label_csv(labels, names, required=need_labels)
    for s in found:
        s.label = grades.get(s.subject_id)
        if need_labels:
            s.problems += label_problems.get(s.subject_id, [])
            if s.label is None and s.subject_id not in label_problems:
                s.problems.append("grade unknown: give the grades with --labels CSV")
    layout = "decathlon" if any(s.channels for s in found) else "nnunet"
    return Cohort(root, layout, sort_subjects(found), GRADE, notes)


def split_cases(root: Path, split: str, roles: dict[str, int], codes: dict) -> list[Subject]:
    """The cases of one image folder: 4D files (the Decathlon) or channel files (nnU-Net)."""
    folder = root / split
    if not folder.is_dir():
        return []
    channel_files: dict[str, dict[int, Path]] = {}
    cases = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not is_nifti(path):  # the Decathlon's tar has "._" files
            continue
        match = CHANNEL_FILE.match(path.name)
        if match:
            channel_files.setdefault(match["case"], {})[int(match["channel"])] = path
        else:
            files = dict.fromkeys(MODALITIES, path)
            cases.append(Subject(strip_nifti_suffix(path.name), None, files, channels=dict(roles)))
    for case, by_index in channel_files.items():
        files = {r: by_index[i] for r, i in roles.items() if i in by_index}
        problems = [
            f"{SEQUENCE_NAMES[r]}: no file {case}_{i:04d}.nii.gz" for r, i in roles.items()
            if i not in by_index
        ]  # fmt: skip
        cases.append(Subject(case, None, files, problems=problems))
    for subject in cases:
        seg = [root / "labelsTr" / f"{subject.subject_id}{s}" for s in (".nii.gz", ".nii")]
        found = [p for p in seg if p.is_file()]
        if found and codes:
            subject.files[SEG], subject.seg_labels = found[0], dict(codes)
    return cases
