"""Run trained models on slices: load safetensors weights, batch, average the models."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch


def load_models(weights: list[Path], device: str = "cpu") -> list[torch.nn.Module]:
    """:class:`gliograde.model.GradeNet` models from ``model.safetensors`` files, in eval mode."""
    from gliograde.model import GradeNet
    from gliograde.safeio import load_state_dict

    models = []
    for path in weights:
        model = GradeNet()
        model.load_state_dict(load_state_dict(Path(path)))
        models.append(model.to(device).eval())
    return models


@torch.inference_mode()
def run_models(
    models: list[torch.nn.Module],
    slices: Iterable[torch.Tensor],
    device: str = "cpu",
    batch_size: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """P(HGG) and P(tumour) per slice, averaged over ``models``.

    Args:
        slices: tensors ``[4, H, W]`` (or a tensor ``[N, 4, H, W]``).
    """
    p_hgg, p_tumor = [], []
    batch: list[torch.Tensor] = []

    def flush():
        x = torch.stack(batch).to(device, torch.float32)
        ph, pt = 0.0, 0.0
        for model in models:
            logits, tumor_logit = model.forward_heads(x)
            ph = ph + torch.softmax(logits.float(), 1)[:, 1]
            pt = pt + torch.sigmoid(tumor_logit.float())
        p_hgg.append((ph / len(models)).cpu())
        p_tumor.append((pt / len(models)).cpu())
        batch.clear()

    for x in slices:
        batch.append(torch.as_tensor(x))
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    if not p_hgg:
        return np.zeros(0), np.zeros(0)
    return torch.cat(p_hgg).numpy().astype(np.float64), torch.cat(p_tumor).numpy().astype(
        np.float64
    )
