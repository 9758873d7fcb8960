"""Run trained models on slices: load safetensors weights, batch, test-time flips.

Inference is fast on a CPU for two reasons, both measured by ``gliograde bench``:

* each batch-norm is folded into the convolution before it (exact up to float rounding);
* where the hardware computes bfloat16 natively (CPUs with AVX-512 BF16 or AMX, GPUs with
  bf16), the convolutions run in bfloat16 under autocast and the outputs are taken in float32:
  about 2× faster on such a CPU. ``--precision fp32`` turns it off. Cross-validation,
  ``evaluate`` and ``predict`` share this function, so reported figures are figures of the
  precision ``predict`` uses on the same machine.

The precision is chosen once, when the models are loaded (:func:`load_models`): they carry it
(:class:`Models`), so models opened once compute in one precision for their whole life.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import torch

from gliograde.core.environment import PRECISION_CHOICES
from gliograde.core.errors import GliogradeError

VARIANTS = ("identity", "flip_lr", "flip_ap")
"""Test-time variants: the slice as is, mirrored left-right, mirrored front-back."""
PRECISIONS = PRECISION_CHOICES
"""``--precision`` of the commands that grade (``auto``: see :func:`inference_dtype`)."""

ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)


@runtime_checkable
class TwoHeaded(Protocol):
    """What :func:`run_models` calls: :meth:`GradeNet.forward_heads
    <gliograde.model.network.GradeNet.forward_heads>` (class logits ``[B, K]``, tumour logit
    ``[B]``), or a stand-in's with the same signature."""

    def forward_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


class Models(list):
    """Models on one device, the precision they compute in (``dtype``), chosen once, how many
    neighbours each side of a slice they read (``context``: 0, or k for 2.5D), and for 3D
    networks the side of the volume they read (``grid``; 0 for 2D)."""

    def __init__(
        self, models: Iterable[torch.nn.Module] = (), dtype=torch.float32, context=0, grid=0
    ):
        super().__init__(models)
        self.dtype = dtype
        self.context = context
        self.grid = grid


def load_models(
    weights: list[Path], device: str = "cpu", fold_bn: bool = True, precision: str = "auto"
) -> Models:
    """:class:`~gliograde.model.network.GradeNet` models from safetensors files, in eval mode,
    their batch-norms folded into the convolutions unless ``fold_bn`` is False (exports keep the
    network's own layers), computing in ``precision`` on ``device`` (:func:`inference_dtype`;
    ``auto`` is float32 for 3D networks on a CPU, the precision they train in there).

    Raises:
        UsageError: ``precision`` is not one of :data:`PRECISIONS` (before any file is read).
    """
    from gliograde.model.backbones import backbone_of
    from gliograde.model.network import GradeNet
    from gliograde.model.weights import check_architecture, load_state_dict, weights_metadata

    models = Models(dtype=inference_dtype(device, precision))
    specs = set()
    for path in weights:
        state = {k: own_copy(v) for k, v in load_state_dict(Path(path)).items()}
        is_safetensors = Path(path).suffix == ".safetensors"
        grid = int(weights_metadata(Path(path)).get("grid", 0)) if is_safetensors else 0
        spec = backbone_of(state, path, grid)
        specs.add(spec)
        # Built on the meta device, then given the file's tensors: no initialisation to overwrite
        # (0.1 to 0.2 s a model). As many classes as it was trained.
        with torch.device("meta"):
            model = GradeNet(num_classes=num_classes_of(state), backbone=spec.name,
                             context=spec.context, grid=spec.grid)  # fmt: skip
        check_architecture(state, model, Path(path))
        model.load_state_dict(state, assign=True)
        # channels_last: about 1.4× faster on CPUs (oneDNN) and on GPUs (cuDNN).
        fold = fold_bn and spec.folds_batch_norms
        model = fold_batch_norms(model.eval()) if fold else model.eval()
        # Module.to(memory_format=...) is valid PyTorch, missing from torch's overloads of `to`
        models.append(model.to(device, memory_format=spec.memory_format))  # type: ignore[call-overload]
    if len(specs) > 1:
        names = ", ".join(sorted(s.label for s in specs))
        raise GliogradeError(
            f"{Path(weights[0]).parent.parent}: its models are of different networks ({names}); "
            "train the missing folds again with the run's own --backbone"
        )
    one = specs.pop() if specs else None
    models.context, models.grid = (one.context, one.grid) if one else (0, 0)
    if models.grid and precision == "auto" and not str(device).startswith("cuda"):
        models.dtype = torch.float32  # as 3D networks train on a CPU (train.precision)
    return models


def model_inputs(
    models: list[torch.nn.Module], x: torch.Tensor, rows: np.ndarray | None = None
) -> torch.Tensor:
    """A patient's slices ``[n, 4, H, W]`` (all of them, in slice order) as ``models`` take
    them, those of ``rows`` only when given: as they are, or for 2.5D models each with its
    neighbours (:func:`~gliograde.store.context.neighbour_positions`); for 3D models, the
    patient's volume ``[1, 4, G, G, G]`` (:func:`~gliograde.store.volumes.volume_of`; ``rows``
    ignored: a volume holds every slice)."""
    from gliograde.store.context import neighbour_positions

    grid = getattr(models, "grid", 0)
    if grid:
        from gliograde.store.volumes import volume_of

        return volume_of(x, grid)[0][None]
    k = getattr(models, "context", 0)
    if not k:
        return x if rows is None else x[torch.as_tensor(rows, dtype=torch.long)]
    idx = neighbour_positions(len(x), k)
    idx = idx if rows is None else idx[np.asarray(rows, dtype=np.int64)]
    return x[torch.from_numpy(idx)].flatten(1, 2)


def own_copy(t: torch.Tensor) -> torch.Tensor:
    """A copy of a loaded tensor, floats in float32. A safetensors tensor is a view into the
    file's memory map: a model holding one would crash (SIGBUS) once the file is replaced."""
    return t.to(torch.float32 if t.is_floating_point() else t.dtype, copy=True)


def num_classes_of(state: dict[str, torch.Tensor]) -> int:
    """How many classes a saved :class:`~gliograde.model.network.GradeNet` answers (2 when its
    class head is missing: :func:`check_architecture` then names the key)."""
    head = state.get("backbone.fc.weight")
    return 2 if head is None else int(head.shape[0])


def fold_batch_norms(model: ModuleT) -> ModuleT:
    """Fold each ``BatchNorm2d`` into the ``Conv2d`` it follows, in place (eval mode only).

    In the ResNet every batch-norm follows a convolution: ``bnK`` follows ``convK`` (the stem
    and each block), and in a ``downsample`` ``Sequential`` item 1 follows item 0.

    Raises:
        ValueError: the model is in training mode, or a batch-norm follows no matching conv.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if model.training:
        raise ValueError("fold_batch_norms needs a model in eval mode (call .eval() first)")
    for module in list(model.modules()):
        children = dict(module.named_children())
        for name, bn in children.items():
            if not isinstance(bn, torch.nn.BatchNorm2d):
                continue
            conv_name = "conv" + name[2:] if name.startswith("bn") else str(int(name) - 1)
            conv = children.get(conv_name)
            if not isinstance(conv, torch.nn.Conv2d) or conv.out_channels != bn.num_features:
                raise ValueError(f"batch-norm {name} follows no matching convolution")
            setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
            setattr(module, name, torch.nn.Identity())
    return model


def inference_dtype(device: str, precision: str = "auto") -> torch.dtype:
    """The dtype of ``precision`` on ``device``: ``auto`` is bfloat16 where ``device`` computes
    it natively, else float32 (see the module's docstring).

    Raises:
        UsageError: ``precision`` is neither ``auto``, ``fp32`` nor ``bf16``.
    """
    from gliograde.core.devices import native_bf16
    from gliograde.core.errors import UsageError

    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision}: choose auto, fp32 or bf16")
    if precision != "auto":
        return torch.bfloat16 if precision == "bf16" else torch.float32
    return torch.bfloat16 if native_bf16(device) else torch.float32


def dtype_name(dtype: torch.dtype) -> str:
    """``bf16`` or ``fp32``: how a precision is recorded with every figure it makes (another
    machine may use the other)."""
    return "bf16" if dtype == torch.bfloat16 else "fp32"


def precision_name(device: str, precision: str = "auto") -> str:
    """``bf16`` or ``fp32``: what ``precision`` resolves to on ``device``."""
    return dtype_name(inference_dtype(device, precision))


def inference_record(device: str, precision: str = "auto") -> dict[str, Any]:
    """What ``metrics.json`` records of how the models ran: precision and device."""
    return {"precision": precision_name(device, precision), "device": str(device)}


def autocast_for(device: str | torch.device, dtype: torch.dtype):
    """The autocast context for ``dtype`` on ``device`` (a no-op for float32)."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast("cuda" if str(device).startswith("cuda") else "cpu", dtype=dtype)


def variant(x: torch.Tensor, name: str) -> torch.Tensor:
    if name == "flip_lr":
        return torch.flip(x, dims=(-2,))  # slices are (x, y): x runs left-right
    if name == "flip_ap":
        return torch.flip(x, dims=(-1,))
    return x


def models_device(models: list[torch.nn.Module]) -> torch.device:
    """The device the models sit on (where their inputs must go)."""
    for tensor in (*models[0].parameters(), *models[0].buffers()) if models else ():
        return tensor.device
    return torch.device("cpu")


def models_dtype(models: list[torch.nn.Module]) -> torch.dtype:
    """The precision the models compute in: the one :func:`load_models` chose for them, else
    ``auto``'s on their device."""
    dtype = getattr(models, "dtype", None)
    return dtype if dtype is not None else inference_dtype(str(models_device(models)))


@torch.inference_mode()
def run_models(
    models: list[torch.nn.Module],
    slices: Iterable[torch.Tensor],
    batch_size: int = 16,
    variants: tuple[str, ...] = ("identity",),
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities and P(tumour) of every slice, for every model and test-time variant.

    Args:
        slices: tensors ``[4, H, W]`` (or a tensor ``[N, 4, H, W]``).

    Returns:
        (p_class, p_tumor): ``[n_models, n_variants, n_slices, n_classes]`` (a softmax over the
        classes) and ``[n_models, n_variants, n_slices]``.
    """
    p_class: list[torch.Tensor] = []
    p_tumor: list[torch.Tensor] = []
    batch: list[torch.Tensor] = []
    device = models_device(models)
    dtype = models_dtype(models)

    def flush():
        x = torch.stack(batch).to(device, torch.float32)
        layout = torch.channels_last_3d if x.dim() == 5 else torch.channels_last
        x = x.contiguous(memory_format=layout)
        ph, pt = None, torch.empty(len(models), len(variants), len(batch))
        for m, model in enumerate(models):
            if not isinstance(model, TwoHeaded):
                raise TypeError(f"{type(model).__name__} has no forward_heads: not a GradeNet")
            for v, name in enumerate(variants):
                with autocast_for(device, dtype):
                    logits, tumor_logit = model.forward_heads(variant(x, name))
                if ph is None:  # as many classes as the models answer
                    ph = torch.empty(*pt.shape, logits.shape[1])
                ph[m, v] = torch.softmax(logits.float(), 1).cpu()
                pt[m, v] = torch.sigmoid(tumor_logit.float()).cpu()
        if ph is None:
            raise ValueError("run_models needs at least one model and one variant")
        p_class.append(ph)
        p_tumor.append(pt)
        batch.clear()

    for x in slices:
        batch.append(torch.as_tensor(x))
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    if not p_class:
        k = 2
        if models:  # as many classes as the models answer: the outputs of the class head
            fc = models[0].get_submodule("backbone.fc")
            if not isinstance(fc, torch.nn.Linear):
                raise TypeError(f"{type(models[0]).__name__}'s backbone.fc is not a Linear layer")
            k = fc.out_features
        return np.zeros((len(models), len(variants), 0, k)), np.zeros(
            (len(models), len(variants), 0)
        )
    return torch.cat(p_class, dim=2).double().numpy(), torch.cat(p_tumor, dim=2).double().numpy()


def slice_outputs(models: list[torch.nn.Module], x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities ``[models, N, K]`` and P(tumour) ``[models, N]`` of each slice
    ``[N, 4, H, W]`` as it is."""
    p_class, p_tumor = run_models(models, x)
    return p_class[:, 0], p_tumor[:, 0]
