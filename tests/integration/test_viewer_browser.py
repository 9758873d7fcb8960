"""The viewer page in a real browser: Debian's Chromium, headless, loading it from ``file://``.

These tests need Chromium (``apt-get install chromium``; ``.ci/run`` installs it). They skip
where it is missing, except in CI, where they fail instead.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from gliograde.assess.viewer import ViewerCase, ViewerFiles, write_script, write_viewer
from gliograde.io.cohort import Subject
from helpers.browser import open_viewer

pytestmark = pytest.mark.slow  # Chromium

SUBJECT = "Synth_0002"


@pytest.fixture(scope="module")
def viewer_page(synth_small, tmp_path_factory):
    """A viewer of a SYNTHETIC subject whose map is its tumour, smoothed (peak 1)."""
    from scipy import ndimage

    folder = synth_small / SUBJECT
    files = {r: folder / f"{SUBJECT}_{r}.nii.gz" for r in ("flair", "t1ce", "t1", "t2", "seg")}
    seg = nib.load(files["seg"])
    tumour = np.asanyarray(seg.dataobj) > 0
    cam = ndimage.gaussian_filter(tumour.astype(np.float32), 1.5)
    out = tmp_path_factory.mktemp("viewer")
    nib.save(nib.Nifti1Image(cam / cam.max(), seg.affine), out / "gradcam.nii.gz")
    z = np.flatnonzero(tumour.any(axis=(0, 1)))
    rows = "\n".join(f"{k},HGG,0.7,{float(tumour[:, :, k].mean()):.4f}" for k in z)
    (out / "slices.csv").write_text(f"z,class,p_class,p_tumor\n{rows}\n")
    subject = Subject(SUBJECT, None, files, folder)
    viewer_files = ViewerFiles(subject, out / "gradcam.nii.gz", out / "slices.csv")
    case = ViewerCase(SUBJECT, "HGG", 0.81, "HGG", False, synthetic=True)
    return write_viewer(out / SUBJECT, case, viewer_files, write_script(out))


@pytest.fixture(scope="module")
def opened(browser_page, viewer_page):
    shown = open_viewer(browser_page, viewer_page)
    assert shown.run("window.ggViewer.error") is None
    return shown


def test_the_page_opens_from_file_without_a_console_error_and_draws(opened):
    assert opened.errors == []
    pixels = opened.canvas().astype(float)
    assert pixels.std() > 10  # not a blank (one-colour) canvas
    header = opened.page.inner_text("header")
    assert "SYNTHETIC" in header and "HGG" in header and "0.810" in header


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int)).sum(axis=2) > 30


def test_the_heat_map_shows_in_colour_where_the_tumour_is(opened):
    """Axial view at the map's peak: the pixels the map colours (those that change when its
    opacity goes from 0 to 1) lie inside the box of the tumour's outline (those that change
    when the outline is switched on)."""
    page = opened.page
    page.get_by_role("button", name="axial").click()
    opened.run("ggViewer.setOpacity(0); ggViewer.setOutline(false)")
    plain = opened.canvas()
    opened.run("ggViewer.setOutline(true)")
    edge = changed(plain, opened.canvas())
    opened.run("ggViewer.setOutline(false); ggViewer.setOpacity(1)")
    heated = opened.canvas()
    heat = changed(plain, heated)
    assert edge.sum() > 20 and heat.sum() > 50
    rows, cols = np.nonzero(edge)
    inside = np.zeros_like(heat)
    inside[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
    assert (heat & inside).sum() / heat.sum() > 0.8
    r, b = (heated[heat][:, c].astype(int) for c in (0, 2))
    assert np.median(r - b) > 60  # warm colours (red to yellow), not grey
    opened.run("ggViewer.setThreshold(0.9)")
    assert changed(plain, opened.canvas()).sum() < heat.sum() / 2  # the threshold hides most


def test_clicking_the_strip_moves_the_viewer_to_that_slice(opened):
    data = opened.run("JSON.parse(document.getElementById('gg-data').textContent).slices")
    strip = opened.page.locator("#gg-strip").bounding_box()
    last = len(data["z"]) - 1
    opened.page.mouse.click(strip["x"] + strip["width"] - 6, strip["y"] + strip["height"] / 2)
    opened.page.wait_for_timeout(300)
    assert opened.run("ggViewer.slice") == last
    s_mm = opened.run("ggViewer.nv.frac2mm(ggViewer.nv.scene.crosshairPos)[2]")
    assert s_mm == pytest.approx(data["s_mm"][last], abs=0.5)


def test_the_sequence_buttons_change_the_image(opened):
    before = opened.canvas()
    opened.page.get_by_role("button", name="T2").click()
    opened.page.wait_for_timeout(300)
    assert changed(before, opened.canvas()).mean() > 0.01
