"""Intensity and space with SimpleITK: N4 bias correction, rigid and affine registration
(Mattes mutual information, three resolutions), resampling, and a similarity to check them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLING = 0.05  # share of voxels the metric samples at each level
SEED = 1  # the sampling is random: a fixed seed gives the same answer each run
HEADER_TRUST_MM = 30.0  # heads whose centres lie closer than this start from their headers


def centroid(image) -> tuple[float, float, float]:
    """The physical centre of an image's foreground (Otsu)."""
    import SimpleITK as sitk

    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.OtsuThreshold(image, 0, 1, 200))
    return stats.GetCentroid(1)


def read(path: Path):
    """A volume as a float32 SimpleITK image (SimpleITK reads NIfTI's orientation itself)."""
    import SimpleITK as sitk

    return sitk.ReadImage(str(path), sitk.sitkFloat32)


def n4(image):
    """N4 bias-field correction: the field fitted on a 4× shrunk image and head mask (Otsu),
    then divided out at full resolution."""
    import SimpleITK as sitk

    mask = sitk.OtsuThreshold(image, 0, 1, 200)
    shrink = [max(1, min(4, n // 32)) for n in image.GetSize()]
    fit = sitk.N4BiasFieldCorrectionImageFilter()
    fit.SetMaximumNumberOfIterations([50] * 3)
    fit.Execute(sitk.Shrink(image, shrink), sitk.Shrink(mask, shrink))
    field = sitk.Cast(sitk.Exp(fit.GetLogBiasFieldAsImage(image)), sitk.sitkFloat32)
    return image / field


def register(fixed, moving, kind: str = "rigid", sampling: float = SAMPLING):
    """The transform that maps ``fixed``'s points onto ``moving`` (``rigid`` or ``affine``),
    found by Mattes mutual information at 1/4, 1/2 and full resolution, started by aligning the
    images' centres of mass."""
    import SimpleITK as sitk

    fixed, moving = (sitk.Cast(i, sitk.sitkFloat32) for i in (fixed, moving))
    start = sitk.Euler3DTransform() if kind == "rigid" else sitk.AffineTransform(3)
    # Series of one session share the scanner's frame: their headers already place them within
    # millimetres, and starting from there (not from the centres of mass, which differ when the
    # fields of view do) keeps the optimiser near the right answer.
    fixed_centre = centroid(fixed)
    if np.linalg.norm(np.subtract(fixed_centre, centroid(moving))) < HEADER_TRUST_MM:
        start.SetCenter(fixed_centre)  # the header's placement; rotations about the head's centre
        initial = start
    else:
        initial = sitk.CenteredTransformInitializer(
            fixed, moving, start, sitk.CenteredTransformInitializerFilter.MOMENTS
        )
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(sampling, SEED)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(2.0, 1e-4, 300)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([4, 2, 1])
    method.SetSmoothingSigmasPerLevel([2, 1, 0])
    method.SetInitialTransform(initial, inPlace=False)
    return method.Execute(fixed, moving)


def resample(image, reference, transform=None, nearest: bool = False):
    """``image`` on ``reference``'s grid, through ``transform`` (reference → image points)."""
    import SimpleITK as sitk

    transform = transform or sitk.Transform(3, sitk.sitkIdentity)
    interpolator = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    return sitk.Resample(image, reference, transform, interpolator, 0.0, image.GetPixelID())


def nmi(a: np.ndarray, b: np.ndarray, mask: np.ndarray, bins: int = 64) -> float:
    """Normalised mutual information (H(A) + H(B)) / H(A, B) of two images on ``mask``: 1 for
    unrelated images, 2 for images that determine each other."""
    joint = np.bincount(
        bin_of(a[mask], bins) * bins + bin_of(b[mask], bins), minlength=bins * bins
    ).reshape(bins, bins)
    p = joint / max(joint.sum(), 1)

    def entropy(q):
        q = q[q > 0]
        return float(-(q * np.log(q)).sum())

    return (entropy(p.sum(1)) + entropy(p.sum(0))) / max(entropy(p.ravel()), 1e-12)


def bin_of(values: np.ndarray, bins: int) -> np.ndarray:
    """Each floating-point value's bin among ``bins`` equal bins from the values' minimum to
    their maximum (the maximum in the last), exactly as ``np.histogram2d`` bins each axis (equal
    values: one bin about them; none: the range 0–1). The bin is computed, then moved by one
    where the computation's rounding crossed an edge (as ``np.histogram`` does), instead of
    searched among the edges: with ``np.bincount``, a third of ``np.histogram2d``'s time."""
    low, high = (values.min(), values.max()) if values.size else (0, 1)
    if low == high:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)  # in the values' precision, as histogram2d's
    index = np.clip(((values - low) * (bins / (high - low))).astype(np.int64), 0, bins - 1)
    index -= values < edges[index]
    index += (values >= edges[index + 1]) & (index < bins - 1)
    return index


def as_array(image) -> np.ndarray:
    """A SimpleITK image's voxels as ``(x, y, z)`` (SimpleITK's arrays are ``(z, y, x)``)."""
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(image).T
