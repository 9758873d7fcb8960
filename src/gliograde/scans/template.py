"""The atlas: the MNI152 2009a symmetric T1 template (1 mm, brain only) that nilearn ships in
its package data (read from there, never downloaded), and a BraTS-like grid around it.

BraTS 2020's volumes are in SRI24 space; no well-kept package ships SRI24 without a download,
so gliograde's grid is MNI152 laid out as BraTS is: 240×240×155 voxels of 1 mm, LPS, the
brain in the middle. A model trained on BraTS sees brains placed and scaled a little
differently (see docs/how-to/raw-scans.md).

Licence: the MNI ICBM152 2009a template is © 1993–2009 Louis Collins, McConnell Brain Imaging
Centre, Montreal Neurological Institute, McGill University; it may be used, copied and
distributed with this notice (nilearn, BSD, redistributes it with it).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from gliograde.core.errors import GliogradeError

TEMPLATE = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
GRID = (240, 240, 155)


def template_path() -> Path:
    """The template file inside the installed nilearn package."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise GliogradeError("the MNI152 template comes with nilearn: pip install nilearn")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / TEMPLATE
    if not path.is_file():
        raise GliogradeError(f"{path}: not found in this nilearn; reinstall nilearn")
    return path


def brats_grid(template):
    """An empty 240×240×155 image of 1 mm voxels, LPS, centred on the template's brain."""
    import SimpleITK as sitk

    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Cast(template > 0, sitk.sitkUInt8))
    centre = stats.GetCentroid(1)
    grid = sitk.Image(list(GRID), sitk.sitkFloat32)
    grid.SetSpacing((1.0, 1.0, 1.0))
    grid.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, 1))  # SimpleITK's frame is LPS
    grid.SetOrigin([c - (n - 1) / 2 for c, n in zip(centre, GRID)])
    return grid
