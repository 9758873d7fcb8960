"""A hospital export simulated from a BraTS-like subject, to try and test the raw-scan path:
each sequence turned and moved (a patient lying differently for each), resampled to its own
anisotropic grid (:func:`raw_like`), and written as DICOM series with exact geometry, as a PACS
exports them: random file names, one file per slice (:func:`write_exam`)."""

from __future__ import annotations

import secrets
import zlib
from pathlib import Path

import numpy as np

from gliograde import MODALITIES

POSES = {  # role: (rotation about x, y, z in radians; shift in mm; voxel spacing in mm)
    "flair": ((0.05, -0.03, 0.08), (3.0, -4.0, 2.0), (0.9, 0.9, 4.0)),
    "t1ce": ((-0.04, 0.02, -0.06), (-2.0, 3.0, -3.0), (1.0, 1.0, 2.0)),
    "t1": ((0.03, 0.05, 0.04), (4.0, 2.0, 1.0), (1.0, 1.0, 3.0)),
    "t2": ((-0.06, -0.02, 0.1), (-3.0, -2.0, 4.0), (0.8, 0.8, 4.0)),
}


def raw_like(subject: Path, out: Path, tilt: float = 0.0) -> dict[str, Path]:
    """Write ``out/raw_ROLE.nii.gz`` for each sequence of the BraTS ``subject`` folder. With
    ``tilt`` (radians), each grid is also turned about the left-right axis: an oblique
    acquisition, such as slices along the AC-PC line."""
    import SimpleITK as sitk

    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for role in MODALITIES:
        image = sitk.ReadImage(str(next(subject.glob(f"*_{role}.nii.gz"))), sitk.sitkFloat32)
        angles, shift, spacing = POSES[role]
        centre = image.TransformContinuousIndexToPhysicalPoint(
            [(n - 1) / 2 for n in image.GetSize()]
        )
        pose = sitk.Euler3DTransform(centre, *angles, shift)
        extent = np.array(image.GetSize()) * np.array(image.GetSpacing())
        grid = sitk.Image([int(e / s) for e, s in zip(extent, spacing)], sitk.sitkFloat32)
        grid.SetSpacing(spacing)
        grid.SetOrigin(image.GetOrigin())
        grid.SetDirection(image.GetDirection())
        if tilt:
            tilted(grid, tilt, centre)
        moved = sitk.Resample(image, grid, pose, sitk.sitkLinear, 0.0)
        written[role] = out / f"raw_{role}.nii.gz"
        sitk.WriteImage(sitk.Cast(sitk.Round(moved), sitk.sitkInt16), str(written[role]))
    return written


def tilted(grid, tilt: float, centre) -> None:
    """Turn a SimpleITK ``grid`` by ``tilt`` radians about the left-right axis, about the
    point ``centre`` (which stays where it was in the grid)."""
    c, s = np.cos(tilt), np.sin(tilt)
    direction = np.array(grid.GetDirection()).reshape(3, 3) @ [[1, 0, 0], [0, c, -s], [0, s, c]]
    grid.SetDirection(direction.ravel().tolist())
    half = direction @ ((np.array(grid.GetSize()) - 1) / 2 * np.array(grid.GetSpacing()))
    grid.SetOrigin((np.array(centre) - half).tolist())


def write_series(
    folder: Path,
    volume: np.ndarray,
    affine: np.ndarray,
    description: str,
    timing: tuple[float | None, float | None, float | None] = (500.0, 10.0, None),
    contrast_agent: str = "",
    patient: str = "P001",
    study: str = "1.2.826.0.1.3680043.8.498.1",
    number: int = 1,
    image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "M"),
) -> list[Path]:
    """Write ``volume`` (x, y, z), placed by the NIfTI ``affine`` (RAS), as an axial MR series.

    Returns:
        The files written, one per z.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine  # DICOM's patient frame is LPS
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    rows_dir, cols_dir = lps[:3, 0] / spacing[0], lps[:3, 1] / spacing[1]
    series_uid, tr, te, ti = generate_uid(), *timing
    files = []
    for k in range(volume.shape[2]):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientID, ds.PatientName = "MR", patient, f"Test^{patient}"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series_uid
        ds.FrameOfReferenceUID = study + ".0"
        ds.SeriesNumber, ds.InstanceNumber, ds.SeriesDescription = number, k + 1, description
        ds.ImageType = list(image_type)
        ds.RepetitionTime, ds.EchoTime = tr, te
        if ti is not None:
            ds.InversionTime = ti
        if contrast_agent:
            ds.ContrastBolusAgent = contrast_agent
        ds.ImageOrientationPatient = [float(v) for v in (*rows_dir, *cols_dir)]
        ds.ImagePositionPatient = [float(v) for v in (lps @ [0, 0, k, 1])[:3]]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]
        ds.SliceThickness = float(spacing[2])
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = np.ascontiguousarray(volume[:, :, k].T.astype(np.int16)).tobytes()
        path = folder / f"{secrets.token_hex(6)}"  # PACS exports rarely say .dcm
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


SEQUENCES = {  # description, (TR, TE, TI) in ms, contrast agent: as scanners write them
    "flair": ("AX T2 FLAIR", (9000.0, 85.0, 2500.0), ""),
    "t1ce": ("AX T1 MPRAGE POST GD", (2300.0, 3.0, 900.0), "Gadobutrol"),
    "t1": ("AX T1 MPRAGE", (2300.0, 3.0, 900.0), ""),
    "t2": ("AX T2 TSE", (5000.0, 100.0, None), ""),
}


def write_exam(folder: Path, volumes: dict[str, np.ndarray], affine, patient="P001") -> str:
    """A whole MR exam: one series per role in ``volumes`` (FLAIR, T1ce, T1, T2), numbered from
    2; returns its StudyInstanceUID."""
    study = "1.2.826.0.1.3680043.8.498." + str(zlib.crc32(patient.encode()))
    for number, (role, volume) in enumerate(volumes.items(), start=2):
        description, timing, agent = SEQUENCES[role]
        write_series(folder, volume, affine, description, timing, agent, patient, study, number)
    return study


def write_raw_export(raw: dict[str, Path], folder: Path) -> Path:
    """The NIfTI files :func:`raw_like` wrote (role → path), each in its own grid, as one
    DICOM export: a series per role, numbered from 2, described as scanners describe them."""
    from gliograde.io.nifti import load_nifti

    for number, role in enumerate(MODALITIES, start=2):
        image = load_nifti(raw[role])
        description, timing, agent = SEQUENCES[role]
        volume = np.asanyarray(image.dataobj)
        write_series(folder, volume, image.affine, description, timing, agent, number=number)
    return folder


def write_enhanced_series(
    folder: Path, volume: np.ndarray, affine: np.ndarray, description: str, **kwargs
) -> Path:
    """The series :func:`write_series` writes, as one enhanced multi-frame file (highdicom's
    Legacy Converted Enhanced MR Image: the functional groups of recent scanners' exports)."""
    import tempfile

    import highdicom as hd
    import pydicom
    from pydicom.uid import generate_uid

    with tempfile.TemporaryDirectory() as tmp:
        files = write_series(Path(tmp), volume, affine, description, **kwargs)
        frames = [pydicom.dcmread(f) for f in files]
    empty: tuple[str, ...] = ("StudyID", "PatientBirthDate", "PatientSex", "StudyDate")
    empty += ("StudyTime", "ReferringPhysicianName", "AccessionNumber", "Manufacturer")
    for ds in frames:  # what the conversion needs that a minimal export may lack
        for keyword in empty:
            if keyword not in ds:
                setattr(ds, keyword, None)
        ds.MagneticFieldStrength, ds.ImagedNucleus, ds.MRAcquisitionType = 3.0, "1H", "2D"
        ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "SE", "NONE", ""
        ds.SpacingBetweenSlices = float(ds.SliceThickness)
    enhanced = hd.legacy.LegacyConvertedEnhancedMRImage(
        frames, generate_uid(), frames[0].SeriesNumber, generate_uid(), 1
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"enhanced_{enhanced.SeriesNumber}"
    enhanced.save_as(path, enforce_file_format=True)
    return path
