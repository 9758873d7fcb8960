"""``predict --report``'s page, from predict's answers."""

import base64

import numpy as np

from gliograde.io.target import Target
from gliograde.predict.page import write_predictions_report
from helpers.answers import failed, graded


def test_the_predictions_page_shows_the_qc_picture(tmp_path):
    """predict --report embeds each preprocessed subject's qc.png, and an error as its line."""
    qc = tmp_path / "qc.png"
    qc.write_bytes(b"\x89PNG\r\n\x1a\nnot-really-an-image")
    answers = [
        graded("P1", 0.8, 0.9, extra={"preprocessed": True, "qc": str(qc)}),
        failed("P2", "no T2 found"),
    ]
    page = write_predictions_report(answers, tmp_path, tmp_path / "p.html").read_text()
    assert base64.b64encode(qc.read_bytes()).decode() in page
    assert "HGG · P(HGG) 0.800 (uncalibrated 0.900)" in page and "no T2 found" in page
    assert "40 slices, without segmentation" in page and "Look at the QC picture" in page


def test_a_card_shows_another_target_its_flag_its_notes_and_its_viewer(tmp_path):
    viewer = tmp_path / "explain" / "P1" / "viewer.html"
    who = Target("WHO_grade", ("2", "3", "4"))
    answer = graded(
        "P1", np.array([0.1, 0.2, 0.7]), target=who, flag=True, uncertainty=0.61234,
        extra={"viewer": str(viewer), "out_of_distribution": ["intensities <unlike>"]},
    )  # fmt: skip
    page = write_predictions_report([answer], tmp_path, tmp_path / "p.html").read_text()
    assert "WHO_grade: 4 · P(2) 0.100, P(3) 0.200, P(4) 0.700" in page
    assert 'uncertainty 0.612 (<span class="bad">uncertain</span>)' in page
    assert "href='explain/P1/viewer.html'" in page
    assert "[&#x27;intensities &lt;unlike&gt;&#x27;]" in page  # escaped, as the list reads
    assert "QC picture" not in page
