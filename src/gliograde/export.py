"""``gliograde export``: a run's models as safetensors, TorchScript or ONNX, checked on export.

Each model of the run (one per fold, or the ``--full`` one) is written to ``OUT/NAME.EXT`` and
then read back with the runtime that will serve it (safetensors → PyTorch, TorchScript →
``torch.jit.load``, ONNX → onnxruntime) and compared with the PyTorch model on random slices:
an export whose largest logit difference exceeds :data:`PARITY_TOLERANCE` is an error.
``OUT/export.json`` records the input the models expect (``[N, 4, H, W]`` float32, channels
FLAIR, T1ce, T1, T2, preprocessed as the run's store; a 2.5D run's ``[N, 4·(2k+1), H, W]``, each
slice with its k neighbours below and above) and, per format, the measured differences.

The exported network returns both heads: ``grade_logits`` ``[N, K]`` (one per class of the
target: LGG, HGG for the grade; softmax for the class probabilities) and ``tumor_logit`` ``[N]``
(sigmoid for P(slice shows tumour)).
"""

from __future__ import annotations

import logging
import shutil
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gliograde import MODALITIES
from gliograde.core.errors import GliogradeError, UsageError
from gliograde.core.files import read_json, write_json

FORMATS = {"safetensors": ".safetensors", "torchscript": ".pt", "onnx": ".onnx"}
BUNDLE = "monai-bundle"
PARITY_TOLERANCE = 1e-4
OUTPUTS = ("grade_logits", "tumor_logit")


class BothHeads(nn.Module):
    """A :class:`gliograde.model.GradeNet` whose ``forward`` returns both heads."""

    def __init__(self, net: nn.Module):
        from gliograde.model.network import GradeNet

        if not isinstance(net, GradeNet):
            raise TypeError(f"BothHeads wraps a GradeNet, not a {type(net).__name__}")
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.forward_heads(x)


@dataclass
class Exported:
    """One exported model and its measured parity with PyTorch."""

    file: str
    max_abs_diff: float


def write_model(
    model: BothHeads, fmt: str, path: Path, example: torch.Tensor, metadata: dict[str, str]
) -> None:
    """``metadata``: the trained weights file's (its slice size; a 3D network's grid)."""
    if fmt == "safetensors":
        from safetensors.torch import save_file

        state = {k: v.contiguous() for k, v in model.net.state_dict().items()}
        save_file(state, path, metadata=metadata)
    elif fmt == "torchscript":
        with warnings.catch_warnings():  # deprecated in PyTorch, but still what many servers load
            warnings.simplefilter("ignore")
            torch.jit.trace(model, example).save(str(path))
    else:
        write_onnx(model, path, example)


def write_onnx(model: BothHeads, path: Path, example: torch.Tensor) -> None:
    try:
        import onnxscript  # noqa: F401  (the exporter needs it; say so before it fails deep down)
    except ImportError as err:
        raise GliogradeError(
            "--format onnx needs the onnx packages: pip install 'gliograde[export]'"
        ) from err
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=["slices"],
            output_names=list(OUTPUTS),
            dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1)}},
            dynamo=True,
            external_data=False,  # one self-contained file (ResNet18 is far below 2 GB)
            verbose=False,
        )


def run_exported(fmt: str, path: Path, x: torch.Tensor) -> list[np.ndarray]:
    """The exported file's outputs on ``x``, computed by the runtime that serves that format."""
    if fmt == "safetensors":
        from gliograde.infer.models import load_models

        with torch.inference_mode():
            return [t.numpy() for t in BothHeads(load_models([path], fold_bn=False)[0])(x)]
    if fmt == "torchscript":
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit is deprecated; the file is ours
            return [t.numpy() for t in torch.jit.load(str(path))(x)]
    try:
        import onnxruntime
    except ImportError as err:
        raise GliogradeError(
            "checking an ONNX export needs onnxruntime: pip install 'gliograde[export]'"
        ) from err
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(list(OUTPUTS), {"slices": x.numpy()})


def parity(model: BothHeads, fmt: str, path: Path, x: torch.Tensor, device: str = "cpu") -> float:
    """Largest absolute difference between PyTorch's logits (on ``device``) and the exported
    file's (read back by its own runtime on the CPU)."""
    # TF32 convolutions on NVIDIA GPUs differ from float32 by ~1e-3: compare float32 with float32.
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.inference_mode():
            reference = [t.float().cpu().numpy() for t in model.to(device)(x.to(device))]
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
        model.to("cpu")
    got = run_exported(fmt, path, x)
    return float(max(np.abs(a - b).max() for a, b in zip(reference, got)))


def export_run(
    run: Path, fmt: str, out: Path | None = None, seed: int = 0, device: str = "auto"
) -> list[Exported]:
    """Export every model of ``run`` in ``fmt`` and check each against PyTorch.

    Args:
        run: a trained run folder.
        fmt: ``safetensors``, ``torchscript``, ``onnx``, or ``monai-bundle`` (the whole
            ensemble as a MONAI Bundle that answers as ``predict``, see :mod:`gliograde.bundle`;
            nothing is converted, so there is no parity to check and the list is empty).
        out: where to write (default ``RUN/export``).
        seed: seed of the random slices the parity check uses.
        device: where the PyTorch reference runs (``auto``, ``cpu`` or ``cuda``).

    Returns:
        One :class:`Exported` per model.

    Raises:
        UsageError: unknown format.
        GliogradeError: no model in the run, a missing optional package, or an export that
            differs from PyTorch by more than :data:`PARITY_TOLERANCE`.
    """
    from gliograde.core.devices import resolve_device
    from gliograde.run import Run

    if fmt == BUNDLE:
        from gliograde.bundle import write_bundle

        write_bundle(Path(run), Path(out) if out is not None else Path(run) / "bundle")
        return []
    if fmt not in FORMATS:
        choices = ", ".join([*FORMATS, BUNDLE])
        raise UsageError(f"--format {fmt}: choose one of {choices}")
    opened = Run.open(run)
    weights = opened.weights()
    size = opened.manifest.slice_size
    out = Path(out) if out is not None else opened.path / "export"
    out.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    spec = opened.train_config.spec
    example = torch.randn(2, *spec.input_shape(size), generator=generator)
    # Another batch size than the example's: the check also shows that the batch axis is free.
    check_batch = torch.randn(3, *spec.input_shape(size), generator=generator)
    dev = resolve_device(device)
    done = [export_one(path, fmt, out, example, check_batch, dev) for path in weights]
    inputs = ModelInput(
        list(spec.input_shape(size)), spec.channel_names(MODALITIES),
        opened.manifest.options.to_dict() | volume_recipe(spec),
        "volumes" if spec.is_3d else "slices",
    )  # fmt: skip
    write_record(out / "export.json", fmt, done, inputs, opened.target.classes)
    copy_model_card(opened.path, out)
    return done


def volume_recipe(spec) -> dict:
    """For a 3D network's export: how its volume is made from the preprocessed slices
    (:class:`~gliograde.store.volumes.VolumesRecord`); empty for 2D."""
    if not spec.is_3d:
        return {}
    from gliograde.store.volumes import VolumesRecord

    return {"volume": asdict(VolumesRecord(spec.grid)) | {"made_by": "gliograde.store.volumes"}}


def copy_model_card(run: Path, out: Path) -> None:
    """The run's ``MODEL_CARD.md``, written afresh from its ``metrics.json``, beside its
    exported models."""
    from gliograde.assess.modelcard import write_model_card
    from gliograde.run import Run

    card = write_model_card(Run.open(run))
    shutil.copyfile(card, Path(out) / card.name)


def export_one(path: Path, fmt: str, out: Path, example, check_batch, device: str) -> Exported:
    """Write one model in ``fmt``, read it back with its runtime, and refuse a mismatch."""
    from gliograde.infer.models import load_models
    from gliograde.model.weights import weights_metadata

    model = BothHeads(load_models([path], fold_bn=False)[0]).eval()
    target = out / f"{path.parent.name}{FORMATS[fmt]}"
    write_model(model, fmt, target, example, weights_metadata(path))
    diff = parity(model, fmt, target, check_batch, device)
    if not diff <= PARITY_TOLERANCE:
        raise GliogradeError(
            f"{target}: the export differs from PyTorch by {diff:.2e} (> "
            f"{PARITY_TOLERANCE:.0e}) on random slices; do not use it, and report it"
        )
    return Exported(target.name, diff)


@dataclass(frozen=True)
class ModelInput:
    """What the exported models take: inputs of ``shape`` (``[C, size, size]`` slices, or 3D
    ``[4, G, G, G]`` volumes) with these ``channels`` (2.5D: ``flair@-1`` is the FLAIR of the
    slice below), preprocessed with ``options``."""

    shape: list[int]
    channels: list[str]
    options: dict
    name: str = "slices"


def write_record(
    path: Path, fmt: str, done: list[Exported], inputs: ModelInput, classes: tuple
) -> None:
    """``export.json``: the input the models expect, their outputs, and each format's parity."""
    formats = read_json(path).get("formats", {})
    formats[fmt] = [asdict(e) for e in done]
    record = {
        "input": {
            "name": inputs.name,
            "shape": ["N", *inputs.shape],
            "dtype": "float32",
            "channels": inputs.channels,
            "preprocessing": inputs.options,
        },
        "outputs": {
            "grade_logits": f"[N, {len(classes)}]: {', '.join(classes)}",
            "tumor_logit": "[N]",
        },
        "parity_tolerance": PARITY_TOLERANCE,
        "formats": formats,
    }
    write_json(path, record)
