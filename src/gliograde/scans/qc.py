"""``qc.png``: the four sequences on three planes through the brain's centre, with the brain
mask's outline, for a person to look at before trusting a grade."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gliograde import MODALITIES, SEQUENCE_NAMES

TITLES = SEQUENCE_NAMES


def planes(volume: np.ndarray, centre: tuple[int, int, int]) -> list[np.ndarray]:
    """Axial, coronal and sagittal planes through ``centre``, oriented for display."""
    x, y, z = centre
    return [volume[:, :, z].T, volume[:, y, :].T, volume[x, :, :].T]


def write_qc(path: Path, volumes: dict[str, np.ndarray], mask: np.ndarray, title: str) -> None:
    """Save the 4×3 panel of ``volumes`` (role → (x, y, z)) with ``mask``'s outline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centre = (0, 0, 0)
    if mask.any():
        x, y, z = (int(c) for c in np.argwhere(mask).mean(axis=0))
        centre = (x, y, z)
    fig, axes = plt.subplots(len(MODALITIES), 3, figsize=(9, 12), facecolor="black")
    for row, role in enumerate(MODALITIES):
        high = np.percentile(volumes[role][mask], 99.5) if mask.any() else 1
        for col, (image, outline) in enumerate(
            zip(planes(volumes[role], centre), planes(mask.astype(float), centre))
        ):
            ax = axes[row, col]
            # axial: anterior up (rows run posterior); coronal, sagittal: superior up
            origin = "upper" if col == 0 else "lower"
            ax.imshow(image, cmap="gray", vmin=0, vmax=high, origin=origin)
            ax.contour(outline, levels=[0.5], colors="lime", linewidths=0.6, origin=origin)
            ax.set_axis_off()
        axes[row, 0].set_title(TITLES[role], color="white", loc="left", fontsize=10)
    fig.suptitle(
        f"{title}: brain mask outline in green; patient's right on the image's left",
        color="white",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80, facecolor="black")
    plt.close(fig)
