"""The bad-input corpus: each function breaks one subject of a good SYNTHETIC cohort copy and
returns the words the user must read about it. Shared by the check, prepare and predict tests."""

import gzip

import nibabel as nib
import numpy as np

from conftest import save_nifti


def first_subject(cohort):
    return sorted(p for p in cohort.iterdir() if p.name.startswith("Synth"))[0]


def file_of(folder, role):
    return folder / f"{folder.name}_{role}.nii.gz"


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
    img = nib.load(file_of(folder, "t1"))
    save_nifti(file_of(folder, "t1"), np.asanyarray(img.dataobj)[:, :, :-2], img.affine)
    return "shape (64, 64, 38) differs"


def corrupt_affine(folder):
    img = nib.load(file_of(folder, "t2"))
    affine = img.affine.copy()
    affine[0, 3] += 5.0
    save_nifti(file_of(folder, "t2"), np.asanyarray(img.dataobj), affine)
    return "t2.nii.gz: affine differs"


def corrupt_4d(folder):
    img = nib.load(file_of(folder, "flair"))
    data = np.asanyarray(img.dataobj)
    save_nifti(file_of(folder, "flair"), np.stack([data, data], -1), img.affine)
    return "expected a 3D volume, found shape (64, 64, 40, 2)"


def corrupt_nan(folder):
    img = nib.load(file_of(folder, "t1ce"))
    data = np.asanyarray(img.dataobj).astype(np.float32)
    data[30, 30, 20] = np.nan
    data[31, 30, 20] = np.inf
    save_nifti(file_of(folder, "t1ce"), data, img.affine)
    return "t1ce.nii.gz: 2 voxels are NaN or infinite"


def corrupt_all_zero(folder):
    img = nib.load(file_of(folder, "t1"))
    save_nifti(file_of(folder, "t1"), np.zeros(img.shape, np.int16), img.affine)
    return "t1.nii.gz: no brain"


def corrupt_label_5(folder):
    img = nib.load(file_of(folder, "seg"))
    seg = np.asanyarray(img.dataobj).copy()
    seg[seg == 2] = 5
    save_nifti(file_of(folder, "seg"), seg, img.affine)
    return "seg.nii.gz: unexpected labels 5"


def corrupt_empty_seg(folder):
    img = nib.load(file_of(folder, "seg"))
    save_nifti(file_of(folder, "seg"), np.zeros(img.shape, np.uint8), img.affine)
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
    corrupt_zero_bytes, corrupt_truncated_gz, corrupt_text_as_nii, corrupt_missing_modality,
    corrupt_shape, corrupt_affine, corrupt_4d, corrupt_nan, corrupt_all_zero, corrupt_label_5,
    corrupt_absurd_header,
]  # fmt: skip
CORRUPTIONS = IMAGE_CORRUPTIONS + [
    corrupt_empty_seg, corrupt_no_label_row, corrupt_unknown_grade, corrupt_conflicting_grades,
]  # fmt: skip
