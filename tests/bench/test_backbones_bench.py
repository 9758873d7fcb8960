"""The bench's backbone lines: each backbone trained alone, its rate and its peak memory."""

from __future__ import annotations

import pytest


@pytest.mark.slow  # optimizer steps, a few seconds
@pytest.mark.parametrize("backbone", ["densenet121", "resnet18-2.5d"])
def test_a_backbone_alone_is_measured_with_its_own_input(backbone):
    from gliograde.bench.training import measure_model_alone

    m = measure_model_alone(32, 2, 1, backbone=backbone)
    assert m["backbone"] == backbone and m["slices_per_s"] > 0
    assert m["peak_rss_mb"] > 100 and m["peak_gpu_mb"] is None  # no GPU in the tests


def test_the_backbone_lines_show_each_rate_and_peak():
    from gliograde.bench.printing import backbone_lines

    measured = {
        "resnet18": {"size": 240, "batch_size": 32, "slices_per_s": 41.25, "peak_rss_mb": 2310.4},
        "densenet121": {"size": 240, "batch_size": 32, "slices_per_s": 12.0, "peak_rss_mb": 5120.0,
                        "peak_gpu_mb": 900.0},
    }  # fmt: skip
    lines = backbone_lines(measured)
    assert "240×240, batch 32" in lines[1]
    assert lines[2].split()[-3:] == ["41.2", "2310", "n/a"]
    assert lines[3].split()[-3:] == ["12.0", "5120", "900"]
    assert backbone_lines(None) == []  # results written before the section
