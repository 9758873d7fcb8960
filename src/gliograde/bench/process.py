"""Each measurement in a fresh process, with its peak memory sampled while it runs."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

from gliograde.core.rss import proc_status, reset_peak_rss


class PeakMemory(threading.Thread):
    """Samples ``/proc/self/status`` every 10 ms and keeps the peaks (RSS, RssAnon)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_rss = self.peak_anon = 0.0
        self._done = threading.Event()

    def run(self):
        while not self._done.is_set():
            s = proc_status()
            self.peak_rss = max(self.peak_rss, s["VmRSS"])
            self.peak_anon = max(self.peak_anon, s["RssAnon"])
            time.sleep(0.01)

    def __enter__(self):
        reset_peak_rss()
        self.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self.join()
        s = proc_status()
        self.peak_rss = max(self.peak_rss, s["VmRSS"], s["VmHWM"])
        self.peak_anon = max(self.peak_anon, s["RssAnon"])


def in_fresh_process(measure: str, **kwargs) -> dict:
    """Run ``measure(**kwargs)`` of this module in a new Python process; return its result."""
    cmd = [sys.executable, "-m", "gliograde.bench", measure, json.dumps(kwargs)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"bench {measure} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
