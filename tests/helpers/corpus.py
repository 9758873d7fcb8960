"""The bad-input corpus: each function breaks one subject of a good SYNTHETIC cohort copy and
returns the words the user must read about it. Shared by the check, prepare and predict tests."""

import gzip

import nibabel as nib
import numpy as np

from helpers.data import save_nifti


def first_subject(cohort):
    return sorted(p for p in cohort.iterdir() if p.name.startswith("Synth"))[0]


def file_of(folder, role):
    return folder / f"{folder.name}_{role}.nii.gz"


def rewrite(folder, role, change, affine=None):
    """Replace a volume by ``change(its voxels)``, keeping its affine unless one is given."""
    img = nib.load(file_of(folder, role))
    data = change(np.asanyarray(img.dataobj).copy())
    save_nifti(file_of(folder, role), data, img.affine if affine is None else affine)


def corrupt_zero_bytes(folder):
    file_of(folder, "t1").write_bytes(b"")
    return "t1.nii.gz: empty file"


def corrupt_truncated_gz(folder):
    path = file_of(folder, "t2")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return "t2.nii.gz: truncated or corrupt data"


def corrupt_text_as_nii(folder):
    file_of(folder, "flair").unlink()
    (folder / f"{folder.name}_flair.nii").write_text("this is not an image\n" * 50)
    return "flair.nii: not a readable NIfTI file"


def corrupt_missing_modality(folder):
    file_of(folder, "t1ce").unlink()
    return "t1ce: file missing"


def corrupt_shape(folder):
    rewrite(folder, "t1", lambda v: v[:, :, :-2])
    return "shape (64, 64, 38) differs"


def corrupt_affine(folder):
    affine = nib.load(file_of(folder, "t2")).affine.copy()
    affine[0, 3] += 5.0
    rewrite(folder, "t2", lambda v: v, affine)
    return "t2.nii.gz: affine differs"


def corrupt_4d(folder):
    rewrite(folder, "flair", lambda v: np.stack([v, v], -1))
    return "expected a 3D volume, found shape (64, 64, 40, 2)"


def corrupt_nan(folder):
    def add_nan_and_inf(v):
        v = v.astype(np.float32)
        v[30, 30, 20], v[31, 30, 20] = np.nan, np.inf
        return v

    rewrite(folder, "t1ce", add_nan_and_inf)
    return "t1ce.nii.gz: 2 voxels are NaN or infinite"


def corrupt_all_zero(folder):
    rewrite(folder, "t1", lambda v: np.zeros(v.shape, np.int16))
    return "t1.nii.gz: no brain"


def corrupt_label_5(folder):
    rewrite(folder, "seg", lambda v: np.where(v == 2, 5, v).astype(v.dtype))
    return "seg.nii.gz: unexpected labels 5"


def corrupt_empty_seg(folder):
    rewrite(folder, "seg", lambda v: np.zeros(v.shape, np.uint8))
    return "segmentation is empty"


def corrupt_absurd_header(folder):
    path = file_of(folder, "t2")
    img = nib.load(path)
    header = img.header.copy()
    raw = bytearray(header.binaryblock)
    dims = np.array([3, 30000, 30000, 30000, 1, 1, 1, 1], dtype="<i2")
    raw[40:56] = dims.tobytes()  # dim[] of the NIfTI-1 header: no voxel data follows
    with gzip.open(path, "wb") as f:
        f.write(bytes(raw) + b"\0" * 4)
    return "header declares absurd dimensions (30000, 30000, 30000)"


def corrupt_no_label_row(folder):
    csv_path = folder.parent / "name_mapping.csv"
    lines = [ln for ln in csv_path.read_text().splitlines() if not ln.endswith(folder.name)]
    csv_path.write_text("\n".join(lines) + "\n")
    return "grade unknown: no row for this subject"


def set_grade_rows(folder, rows):
    """Replace the subject's row in name_mapping.csv by ``rows`` (grades)."""
    csv_path = folder.parent / "name_mapping.csv"
    lines = [ln for ln in csv_path.read_text().splitlines() if not ln.endswith(folder.name)]
    lines += [f"{grade},NA,NA,NA,NA,{folder.name}" for grade in rows]
    csv_path.write_text("\n".join(lines) + "\n")


def corrupt_unknown_grade(folder):
    set_grade_rows(folder, ["GBM"])
    return "unknown grade 'GBM'"


def corrupt_conflicting_grades(folder):
    set_grade_rows(folder, ["HGG", "LGG"])
    return "conflicting grades"


# Broken images or segmentations: predict must refuse these too. Grade-table problems
# (the rest) matter only where a grade is needed (check, prepare).
IMAGE_CORRUPTIONS = [
    corrupt_zero_bytes,
    corrupt_truncated_gz,
    corrupt_text_as_nii,
    corrupt_missing_modality,
    corrupt_shape,
    corrupt_affine,
    corrupt_4d,
    corrupt_nan,
    corrupt_all_zero,
    corrupt_label_5,
    corrupt_absurd_header,
]
CORRUPTIONS = IMAGE_CORRUPTIONS + [
    corrupt_empty_seg,
    corrupt_no_label_row,
    corrupt_unknown_grade,
    corrupt_conflicting_grades,
]
