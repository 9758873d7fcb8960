"""MONAI's own bundle runner, offline, on an exported bundle; and its CSV read back."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

OFFLINE = {  # any attempt to reach the internet through a proxy-aware client fails
    name: "http://127.0.0.1:9"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY")
}


def read_rows(text: str) -> dict[str, dict]:
    return {row["subject"]: row for row in csv.DictReader(text.splitlines())}


def run_bundle(bundle, data, out, *extra):
    cmd = [
        sys.executable, "-m", "monai.bundle", "run",
        "--config_file", str(bundle / "configs" / "inference.json"),
        "--bundle_root", str(bundle),
        "--dataset_dir", str(data),
        "--output_dir", str(out),
        "--device", "cpu",
        *extra,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"} | OFFLINE
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=out.parent)
