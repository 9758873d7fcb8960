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


def load_checkpoint(path: Path) -> dict:
    """A checkpoint or state dict, read safely.

    Raises:
        UnsafeFileError: the file's pickle would run code (nothing is run).
        GliogradeError: the file is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise GliogradeError(f"{path}: model file not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeFileError(
            f"{path}: refused: loading it would run code or build objects other than weights "
            "(only tensors are accepted); get the model from a source you trust, as safetensors"
        ) from err
    except (RuntimeError, EOFError, OSError) as err:
        raise GliogradeError(f"{path}: not a readable PyTorch file ({err})") from err


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a plain state dict, a Lightning checkpoint or a safetensors file."""
    obj = load_checkpoint(path)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise GliogradeError(f"{path}: holds no state dict of tensors")
    return state
