"""gliograde's heat map in OHIF for one real subject, pictured: the subject written as DICOM,
stored in Orthanc (with DICOMweb), sent to ``gliograde serve RUN``, and once the node has
answered, its heat map loaded in OHIF and shown on its peak slice. Prints where the map's mass
lies against the subject's tumour (its BraTS segmentation, resampled onto the T1ce series).

Needs what the OHIF browser tests need (``make ohif``; Debian's orthanc, orthanc-dicomweb and
chromium). Used for docs/how-to/ohif.md::

    python scripts/ohif_screenshot.py RUN ../shared/data/brats2020-sample/BraTS20_Training_007 \
        docs/img/ohif/heat-map-real.png
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import ExitStack
from io import BytesIO
from pathlib import Path
from urllib.request import urlopen

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from gliograde.predict.heatmap import MAP_SERIES_NUMBER, read_map
from helpers.browser import chromium
from helpers.exports import sample_export
from helpers.ohif import DICOMWEB_CONFIG, DICOMWEB_PLUGIN, Viewer, ohif_over
from helpers.orthanc import echo, free_port, orthanc, start_node, wait_until


def answered_study(run: Path, subject: Path, root: Path, stack: ExitStack):
    """Orthanc holding the subject's study, answered by the node (both stopped with
    ``stack``): (pacs, Orthanc's study id, StudyInstanceUID)."""
    export = sample_export(subject, root / "export")
    port = free_port()
    plugins = {DICOMWEB_PLUGIN: ("DicomWeb", DICOMWEB_CONFIG)}
    pacs = stack.enter_context(orthanc(root / "orthanc", ("GLIOGRADE", port, "127.0.0.1"), plugins))
    node = start_node(run, root / "spool", port, pacs, "--force", "--settle", "2",
                      "--allow", "ORTHANC", log=root / "node.log")  # fmt: skip
    stack.callback(node.wait, timeout=60)
    stack.callback(node.terminate)
    wait_until(lambda: echo(port, "ORTHANC"), 60, f"no node: {root / 'node.log'}")
    (study,) = pacs.upload(export)
    pacs.post("/modalities/gliograde/store", {"Resources": [study], "Synchronous": True})
    wait_until(lambda: len(pacs.get(f"/studies/{study}/series")) >= 7, 900, "no answer")
    return pacs, study, pacs.get(f"/studies/{study}")["MainDicomTags"]["StudyInstanceUID"]


def series_file(pacs, study: str, number: int) -> BytesIO:
    (series,) = [s for s in pacs.get(f"/studies/{study}/series")
                 if int(s["MainDicomTags"].get("SeriesNumber", -1)) == number]  # fmt: skip
    with urlopen(pacs.url(f"/instances/{series['Instances'][0]}/file"), timeout=60) as r:
        return BytesIO(r.read())


def tumour_on_t1ce(subject: Path, export: Path) -> np.ndarray:
    """The subject's segmentation on its T1ce series' grid ``[frames, rows, columns]``."""
    import SimpleITK as sitk

    from gliograde.scans.dicom import scan_folder
    from gliograde.scans.geometry import planes_of, stack_of
    from gliograde.scans.space import empty_image

    (study,), _ = scan_folder(export)
    (t1ce,) = [s for s in study.series if "POST" in s.description]
    grid = stack_of("T1ce", planes_of(t1ce.files)).grid()
    seg = sitk.ReadImage(str(subject / f"{subject.name}_seg.nii.gz"), sitk.sitkFloat32)
    on_grid = sitk.Resample(seg, empty_image(grid), sitk.Transform(), sitk.sitkNearestNeighbor)
    return sitk.GetArrayFromImage(on_grid) > 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("subject", type=Path)
    parser.add_argument("out", type=Path)
    a = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp)
        pacs, study, uid = answered_study(a.run, a.subject, root, stack)
        values = read_map(series_file(pacs, study, MAP_SERIES_NUMBER))
        tumour = tumour_on_t1ce(a.subject, root / "export")
        n = len(values)
        peak = int(np.argmax(values.reshape(n, -1).max(axis=1)))
        share, chance = values[tumour].sum() / values.sum(), tumour.sum() / (values > 0).sum()
        top = np.unravel_index(int(np.argmax(values)), values.shape)
        print(f"map mass inside the tumour: {share:.3f} (the tumour's share of the mapped "
              f"voxels: {chance:.3f}); peak on slice {peak + 1} of {n}, which holds tumour: "
              f"{bool(tumour[peak].any())}; the peak voxel is inside the tumour: "
              f"{bool(tumour[top])}")  # fmt: skip
        with ohif_over(pacs.http) as base, chromium(1600, 1000) as page:
            viewer = Viewer(page, base)
            viewer.open_study(uid, "AX T2 FLAIR")
            viewer.select(MAP_SERIES_NUMBER)
            wait_until(lambda: viewer.coloured_pixels() > 500, 90, "no colour")
            viewer.go_to_slice(n - peak)
            a.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(a.out))
        print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
