"""Load weights without running code hidden in a file.

Checkpoints are read with ``torch.load(weights_only=True)``, which refuses pickles that would
import or call anything other than tensors and plain containers; ``.safetensors`` files hold no
code at all.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from gliograde.core.errors import GliogradeError, UnsafeFileError

RECOVER = "copy the run folder again from where it was trained, or train it again"


def load_checkpoint(path: Path) -> dict:
    """A checkpoint or state dict, read safely.

    Raises:
        UnsafeFileError: the file's pickle would run code (nothing is run).
        GliogradeError: the file is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise GliogradeError(f"{path}: model file not found")
    if path.stat().st_size == 0:
        raise GliogradeError(f"{path}: empty model file (0 bytes); {RECOVER}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except SafetensorError as err:
            text = " ".join(str(err).split())[:120]
            raise GliogradeError(
                f"{path}: corrupt or truncated weights ({text}); {RECOVER}"
            ) from err
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeFileError(
            f"{path}: refused: loading it would run code or build objects other than weights "
            "(only tensors are accepted); get the model from a source you trust, as safetensors"
        ) from err
    except (RuntimeError, EOFError, OSError) as err:  # torch.load's errors for a damaged file
        raise GliogradeError(f"{path}: not a readable PyTorch file ({err}); {RECOVER}") from err


def weights_metadata(path: Path) -> dict[str, str]:
    """The metadata a safetensors weights file records (``slice_size``; a 3D network's
    ``grid``).

    Raises:
        GliogradeError: the file is not readable safetensors.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except SafetensorError as err:
        text = " ".join(str(err).split())[:120]
        raise GliogradeError(f"{path}: corrupt or truncated weights ({text}); {RECOVER}") from err


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a plain state dict, a Lightning checkpoint or a safetensors file."""
    obj = load_checkpoint(path)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise GliogradeError(f"{path}: holds no state dict of tensors")
    return state


def check_architecture(state: dict[str, torch.Tensor], model: torch.nn.Module, path: Path) -> None:
    """Refuse weights that do not fit ``model`` (another network, channels or classes).

    Raises:
        GliogradeError: naming the first key that is missing, unexpected or of another shape.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        example = (missing + unexpected)[0]
        raise GliogradeError(
            f"{path}: weights of another network ({len(missing)} missing, {len(unexpected)} "
            f"unexpected keys, e.g. {example}); this run's models are gliograde's ResNet18 with "
            "a tumour head"
        )
    for k, v in own.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise GliogradeError(
                f"{path}: {k} has shape {tuple(state[k].shape)}, expected {tuple(v.shape)} "
                "(weights of a network with other channels or classes)"
            )


def sha256_of(path: Path) -> str:
    """The file's SHA-256, in hex."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
