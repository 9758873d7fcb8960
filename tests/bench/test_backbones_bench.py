"""The bench's backbone lines: each backbone trained alone, its rate and its peak memory."""

from __future__ import annotations

import pytest


@pytest.mark.slow  # optimizer steps, a few seconds
@pytest.mark.parametrize("backbone", ["densenet121", "resnet18-2.5d", "resnet10-3d"])
def test_a_backbone_alone_is_measured_with_its_own_input(backbone, monkeypatch):
    import gliograde.model.backbones as backbones
    from gliograde.bench.training import measure_model_alone

    monkeypatch.setattr(backbones, "DEFAULT_GRID", 32)  # the bench's is 96: minutes here
    m = measure_model_alone(32, 2, 1, backbone=backbone)
    assert m["backbone"] == backbone and m["slices_per_s"] > 0
    assert m["peak_rss_mb"] > 100 and m["peak_gpu_mb"] is None  # no GPU in the tests
    assert m["grid"] == (32 if backbone.endswith("-3d") else 0)


def test_the_backbone_lines_show_each_rate_and_peak():
    from gliograde.bench.printing import backbone_lines

    measured = {
        "resnet18": {"size": 240, "batch_size": 32, "slices_per_s": 41.25, "peak_rss_mb": 2310.4,
                     "grid": 0, "precision": "bf16"},
        "densenet121": {"size": 240, "batch_size": 32, "slices_per_s": 12.0, "peak_rss_mb": 5120.0,
                        "peak_gpu_mb": 900.0},
        "resnet10-3d": {"size": 240, "batch_size": 4, "slices_per_s": 2.55, "peak_rss_mb": 1473.0,
                        "grid": 96, "precision": "fp32"},
    }  # fmt: skip
    lines = backbone_lines(measured)
    assert "resnet18: 240×240 slices, batch 32, bf16" in lines[2]
    assert lines[2].split()[-3:] == ["41.25", "2310", "n/a"]
    assert lines[3].split()[-3:] == ["12.00", "5120", "900"]
    assert "resnet10-3d: 96³ volumes, batch 4, fp32" in lines[4]
    assert lines[4].split()[-3:] == ["2.55", "1473", "n/a"]
    assert backbone_lines(None) == []  # results written before the section
