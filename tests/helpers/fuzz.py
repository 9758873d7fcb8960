"""A seeded mutator for the fuzz tests: flip bytes, truncate, rewrite header fields.

Each case is made from a seed, so a failing case is reproduced by its number alone.
"""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np

CASES = int(os.environ.get("GLIOGRADE_FUZZ_CASES", "300"))
"""Cases per reader in total; ``make fuzz`` sets 10,000."""

# NIfTI-1 header fields worth breaking: (offset, struct format)
NIFTI_FIELDS = {
    "sizeof_hdr": (0, "<i"),
    "dim": (40, "<8h"),
    "datatype": (70, "<h"),
    "bitpix": (72, "<h"),
    "pixdim": (76, "<8f"),
    "vox_offset": (108, "<f"),
    "scl_slope": (112, "<f"),
    "scl_inter": (116, "<f"),
    "qform_code": (252, "<h"),
    "sform_code": (254, "<h"),
    "quatern": (256, "<6f"),
    "srow": (280, "<12f"),
    "magic": (344, "4s"),
}
WEIRD_FLOATS = [0.0, -0.0, 1e-30, -1.0, 1e30, float("nan"), float("inf"), -float("inf"), 3.5]
WEIRD_INTS = [0, -1, 1, 2, 3, 7, 8, 255, 256, 4096, 32767, -32768]


def mutate(data: bytes, rng: np.random.Generator, header: bool = False) -> bytes:
    """One random change to ``data``: flipped bytes, a cut, an insertion or a header field."""
    data = bytearray(data)
    choice = rng.integers(0, 5 if header else 4)
    if choice == 0 and data:  # flip a few bytes
        for i in rng.integers(0, len(data), size=int(rng.integers(1, 9))):
            data[i] ^= int(rng.integers(1, 256))
    elif choice == 1:  # truncate
        data = data[: int(rng.integers(0, max(len(data), 1)))]
    elif choice == 2:  # insert junk
        at = int(rng.integers(0, len(data) + 1))
        data[at:at] = rng.integers(0, 256, size=int(rng.integers(1, 64))).astype(np.uint8).tobytes()
    elif choice == 3 and data:  # overwrite a run of bytes
        at = int(rng.integers(0, len(data)))
        n = int(rng.integers(1, 32))
        data[at : at + n] = (
            rng.integers(0, 256, size=len(data[at : at + n])).astype(np.uint8).tobytes()
        )
    elif choice == 4 and len(data) >= 348:
        data = bytearray(rewrite_field(bytes(data), rng))
    return bytes(data)


def rewrite_field(header_and_data: bytes, rng: np.random.Generator) -> bytes:
    """Set one NIfTI header field to an odd value (dims, datatype, offsets, affines, ...)."""
    name = list(NIFTI_FIELDS)[int(rng.integers(0, len(NIFTI_FIELDS)))]
    offset, fmt = NIFTI_FIELDS[name]
    size = struct.calcsize(fmt)
    values = list(struct.unpack_from(fmt, header_and_data, offset))
    i = int(rng.integers(0, len(values)))
    if fmt.endswith("s"):
        values[i] = bytes(rng.integers(0, 256, size=4).astype(np.uint8))
    elif "f" in fmt:
        values[i] = float(WEIRD_FLOATS[int(rng.integers(0, len(WEIRD_FLOATS)))])
    else:
        values[i] = int(WEIRD_INTS[int(rng.integers(0, len(WEIRD_INTS)))])
        if fmt == "<i":
            values[i] = int(rng.choice([0, 348, 540, -348, 2**30]))
    out = bytearray(header_and_data)
    out[offset : offset + size] = struct.pack(fmt, *values)
    return bytes(out)


def mutate_nifti_gz(raw: bytes, rng: np.random.Generator) -> bytes:
    """Mutate a ``.nii.gz`` either inside (then compress again) or in its compressed bytes."""
    if rng.random() < 0.7:
        return gzip.compress(mutate(gzip.decompress(raw), rng, header=True), mtime=0)
    return mutate(raw, rng)
