"""This process's resident memory and its peak, read from Linux's ``/proc/self``."""

from __future__ import annotations

from pathlib import Path

STATUS = Path("/proc/self/status")


def proc_status() -> dict[str, float]:
    """VmRSS, VmHWM (peak RSS), RssAnon and RssFile of this process, in MB."""
    out = {}
    with open(STATUS) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) / 1024
    return out


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux: ``5`` to ``clear_refs``), so that a
    measurement's peak is not an earlier one's. Returns False where there is no such file."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except FileNotFoundError:  # not Linux: the caller falls back on the lifetime peak
        return False
    return True
