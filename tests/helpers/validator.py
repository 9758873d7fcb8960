"""David Clunie's DICOM validator (dciodvfy, from dicom3tools: a dev dependency) as a test
oracle: what it calls an error in a file we wrote."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def validator_errors(path: Path, reads_as: str) -> list[str]:
    """dciodvfy's error lines on ``path``, after checking that it read the file as the IOD
    ``reads_as`` (such as ``ComprehensiveSR``, ``ParametricMap``, ``SC``)."""
    tool = shutil.which("dciodvfy") or str(Path(sys.executable).parent / "dciodvfy")
    result = subprocess.run([tool, str(path)], capture_output=True, text=True, check=False)
    lines = (result.stdout + result.stderr).splitlines()
    assert any(reads_as in line for line in lines), lines[:5]  # it did read it as that IOD
    return [line for line in lines if line.startswith("Error")]
