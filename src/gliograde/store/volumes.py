"""3D inputs: a patient's brain as one volume ``[4, G, G, G]`` on a fixed grid.

A 3D network (``train --backbone resnet10-3d``) sees the patient whole. Its volume is made from
the patient's slices as the store holds them (the same preprocessing, normalisation and
in-plane size as every 2D run of the store), by one function, :func:`volume_of`:

1. the slices, in slice order, stacked ``[4, z, x, y]`` (each slice is ``(x, y)``, x running
   left-right, so the test-time flips are those of a slice);
2. cropped to the brain's box (the voxels where any sequence is non-zero);
3. resampled to ``G × G × G``: along an axis that shrinks by a factor f, first smoothed with a
   Gaussian of σ = (f − 1)/2 voxels (the anti-aliasing of scikit-image's and MONAI's
   ``Resize``), then trilinear; kept in float16 as the store keeps slices.

``prepare --volumes G`` writes each subject's volume to ``STORE/volumes/G/SUBJECT.npy``
(:func:`write_volumes`): 4·G³ float16 values, 7 MB at G = 96. Training streams them, one read a
volume (:class:`VolumeStore`); ``predict`` computes the same volume from the new patient's
slices with the same function (the tests check the two are equal to the bit). The grid is not
isotropic: each side of the box is resampled to G (the millimetres this makes for BraTS 2020:
docs/how-to/compare-backbones.md).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from gliograde.core.errors import GliogradeError
from gliograde.core.files import fsync_dir, read_json, save_npy, write_json
from gliograde.store.read import NpyFile, SliceStore

VOLUMES = "volumes"


@dataclass(frozen=True)
class Box:
    """The brain's box in a patient's stacked slices: ``[z0, z1) × [x0, x1) × [y0, y1)``."""

    z0: int
    z1: int
    x0: int
    x1: int
    y0: int
    y1: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.z1 - self.z0, self.x1 - self.x0, self.y1 - self.y0


@dataclass(frozen=True)
class VolumesRecord:
    """``STORE/volumes/G/volumes.json``: what the volume files hold."""

    grid: int
    layout: str = (
        "[4, z, x, y]: FLAIR, T1ce, T1, T2; the stored slices cropped to the brain's box, "
        "smoothed along each shrunk axis (Gaussian, sigma (f - 1)/2), resampled to G³ "
        "(trilinear, align_corners False)"
    )
    dtype: str = "float16"
    source: str = "the store's slices (gliograde.store.volumes.volume_of)"


def brain_box(images: np.ndarray | torch.Tensor) -> Box:
    """The box of the voxels where any sequence is non-zero (``images``: ``[n, 4, H, W]``);
    the whole stack when none is."""
    brain = torch.as_tensor(images).ne(0).any(dim=1)  # [n, H, W]
    if not bool(brain.any()):
        n, h, w = brain.shape
        return Box(0, n, 0, h, 0, w)
    spans = []
    for dims in ((1, 2), (0, 2), (0, 1)):
        hit = torch.nonzero(brain.any(dim=dims[1]).any(dim=dims[0])).flatten()
        spans += [int(hit[0]), int(hit[-1]) + 1]
    return Box(*spans)


def check_adjacent(z: np.ndarray, where: object) -> None:
    """Refuse slices that are not one run of adjacent axial slices (``z``: their positions).

    Raises:
        GliogradeError: gaps between the slices (a ``--slices tumor`` store's multifocal
            tumour), which a volume would close up.
    """
    if np.any(np.diff(np.asarray(z)) != 1):
        raise GliogradeError(
            f"{where}: its slices are not one run of adjacent axial slices, so its volume would "
            "join slices that lie apart; prepare the store with --slices brain (the default) "
            "or all"
        )


def volume_of(images: np.ndarray | torch.Tensor, grid: int) -> tuple[torch.Tensor, Box]:
    """A patient's slices ``[n, 4, H, W]`` (in slice order, adjacent) as the volume a 3D network
    takes: float16 ``[4, G, G, G]``, and the brain's box it was cut from."""
    x = torch.as_tensor(images)
    box = brain_box(x)
    crop = x[box.z0 : box.z1, :, box.x0 : box.x1, box.y0 : box.y1].float()
    crop = anti_aliased(crop.permute(1, 0, 2, 3), grid).unsqueeze(0)  # [1, 4, z, x, y]
    out = torch.nn.functional.interpolate(crop, size=(grid,) * 3, mode="trilinear")
    return out[0].half(), box


def anti_aliased(crop: torch.Tensor, grid: int) -> torch.Tensor:
    """``crop`` ``[4, z, x, y]`` smoothed along each axis longer than ``grid`` by a Gaussian of
    σ = (n/grid − 1)/2 voxels (zero beyond the box: the background), as it is unchanged."""
    sigma = [0.0] + [max((n / grid - 1) / 2, 0.0) for n in crop.shape[1:]]
    if not any(sigma):
        return crop
    from scipy.ndimage import gaussian_filter

    return torch.from_numpy(gaussian_filter(crop.numpy(), sigma, mode="constant"))


def on_slices(cam: np.ndarray, box: Box, shape: tuple[int, int, int]) -> np.ndarray:
    """A map on the volume's grid ``[G, G, G]`` back on the patient's slices ``shape``
    (``[n, H, W]``): resampled to the box, zero outside it."""
    t = torch.as_tensor(np.asarray(cam, dtype=np.float32))[None, None]
    inside = torch.nn.functional.interpolate(t, size=box.shape, mode="trilinear")[0, 0]
    out = np.zeros(shape, dtype=np.float32)
    out[box.z0 : box.z1, box.x0 : box.x1, box.y0 : box.y1] = inside.numpy()
    return out


def volumes_dir(store: Path, grid: int) -> Path:
    """``STORE/volumes/G``: the store's volumes at grid ``grid``."""
    return Path(store) / VOLUMES / str(grid)


def write_volumes(store: SliceStore, grid: int) -> int:
    """Write each subject's volume at ``grid`` that the store lacks (``prepare --volumes``).

    Returns:
        How many were written.

    Raises:
        GliogradeError: a subject whose stored slices are not adjacent (:func:`check_adjacent`).
    """
    folder = volumes_dir(store.path, grid)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "volumes.json", asdict(VolumesRecord(grid)))
    written = 0
    for subject in store.subjects:
        final = folder / f"{subject}.npy"
        if final.is_file():
            continue
        rows = store.rows([subject])
        rows = rows[np.argsort(store.index.row[rows], kind="stable")]  # in the file's order
        check_adjacent(store.index.z[rows], subject)
        volume, _ = volume_of(store.read_subject(subject, "images"), grid)
        tmp = folder / f".tmp-{subject}-{os.getpid()}.npy"
        save_npy(tmp, volume.numpy())
        tmp.rename(final)
        written += 1
    fsync_dir(folder)
    return written


class VolumeStore:
    """A store's volumes at one grid, read one volume at a time (one ``pread`` each)."""

    def __init__(self, store: SliceStore, grid: int):
        self.store, self.grid = store, grid
        self.folder = volumes_dir(store.path, grid)
        missing = [s for s in store.subjects if not (self.folder / f"{s}.npy").is_file()]
        if missing:
            raise GliogradeError(
                f"{self.folder}: no {grid}³ volume for {len(missing)} of the store's subjects "
                f"({missing[0]}, ...); write them with `gliograde prepare --out {store.path} "
                f"--volumes {grid}`"
            )
        record = read_json(self.folder / "volumes.json")
        if int(record.get("grid", -1)) != grid:
            raise GliogradeError(f"{self.folder}/volumes.json: not a {grid}³ volume folder")
        self._files: dict[str, NpyFile] = {}

    def read(self, subject: str) -> np.ndarray:
        """The subject's volume, float16 ``[4, G, G, G]``."""
        if subject not in self._files:
            self._files[subject] = NpyFile.open(self.folder / f"{subject}.npy")
        return self._files[subject].read_all()

    def __getstate__(self):
        # Files are re-opened in each DataLoader worker, not pickled (copied).
        return {**self.__dict__, "_files": {}}
