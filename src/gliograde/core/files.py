"""Files written so that a crash never leaves a half-written one that looks complete."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def write_json(path: Path, obj) -> None:
    """Write JSON atomically: a temporary file beside it, then a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)


def write_text(path: Path, text: str) -> None:
    """Write text atomically: a temporary file beside it, then a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def read_json(path: Path) -> dict:
    """A JSON file's content; ``{}`` when the file does not exist."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else {}


def merge_json(path: Path, key: str, value) -> dict:
    """Set ``key`` in a JSON object file (created when missing), atomically; returns the object."""
    obj = read_json(path)
    obj[key] = value
    write_json(path, obj)
    return obj


def save_npy(path: Path, array: np.ndarray) -> None:
    """Write a ``.npy`` file and make sure its bytes are on disk."""
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (new files, renames) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


RESULT_PACKAGES = ("gliograde", "numpy", "nibabel", "torch", "monai", "lightning")


def package_versions(names: tuple[str, ...] = RESULT_PACKAGES) -> dict[str, str]:
    """Versions of ``names`` (default: gliograde and the libraries that shape its results)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out
