"""Two ``predict`` processes on the same DICOM export share the preprocessing cache
(``GLIOGRADE_CACHE``): one preprocesses, the other waits and reuses its entry; an entry is
published whole or not at all, so a ``kill -9`` mid-way leaves nothing that looks complete.

Real processes on a SYNTHETIC raw export, graded with ``--force`` (the tiny run was trained
on phantoms, so the export is out of its distribution).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers.exports import synthetic_export

pytestmark = pytest.mark.slow  # processes sharing one cache, one killed; a trained run

WAITING = "waiting: another process is preprocessing"


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return synthetic_export(tmp_path_factory.mktemp("export"))


class Predict:
    """``gliograde predict RUN EXPORT --force --json`` in its own process, its stderr read
    line by line as it comes."""

    def __init__(self, run: Path, export: Path, cache: Path):
        cmd = [sys.executable, "-m", "gliograde", "predict", str(run), str(export)]
        env = os.environ | {"GLIOGRADE_CACHE": str(cache)}
        self.process = subprocess.Popen(
            [*cmd, "--force", "--json", "--device", "cpu"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            start_new_session=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line)

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def answer(self) -> list[dict]:
        out = self.process.stdout.read()
        assert self.process.wait(timeout=600) == 0, "".join(self.lines)[-2000:]
        self.reader.join(timeout=10)
        return json.loads(out)


class Watcher(threading.Thread):
    """Looks at the cache every few milliseconds: every temporary folder seen, and every
    published entry seen without its ``done.json`` (which must never happen)."""

    def __init__(self, entries: Path):
        super().__init__(daemon=True)
        self.entries, self.stop = entries, threading.Event()
        self.temporary: set[str] = set()
        self.incomplete: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            for p in list(self.entries.iterdir()) if self.entries.is_dir() else []:
                if p.name.startswith(".") and ".tmp-" in p.name:
                    self.temporary.add(p.name)
                elif not p.name.startswith(".") and not (p / "done.json").is_file():
                    self.incomplete.append(p.name)
            time.sleep(0.005)


def wait_for(condition, what: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_processes_on_one_export_share_one_entry_and_a_crash_leaves_none(
    export, tiny_run, tmp_path
):
    cache = tmp_path / "cache"
    entries = cache / "preprocessed"
    watcher = Watcher(entries)
    watcher.start()
    run = tiny_run[1]

    first = Predict(run, export, cache)
    wait_for(lambda: watcher.temporary, "the first process to start preprocessing")
    second = Predict(run, export, cache)
    wait_for(lambda: second.said(WAITING), "the second process to wait for the first")
    # mid-preprocessing, with its dcm2niix if one runs: nothing may look complete
    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.wait()
    assert not [p for p in entries.iterdir() if not p.name.startswith(".")]

    # The second takes over (the crashed one's temporary folder removed); a third waits for it
    wait_for(lambda: f"tmp-{second.process.pid}" in " ".join(watcher.temporary), "a takeover")
    third = Predict(run, export, cache)
    answers = second.answer(), third.answer()
    watcher.stop.set()
    watcher.join()

    # the third waited for the second (or found its entry done) and never made one of its own
    assert not [t for t in watcher.temporary if f"tmp-{third.process.pid}" in t]
    (a,), (b,) = answers
    assert "error" not in a and a["flag"] == "uncertain" and a["out_of_distribution"]
    assert (a["grade"], a["p_hgg"], a["qc"]) == (b["grade"], b["p_hgg"], b["qc"])
    assert watcher.incomplete == []
    (entry,) = [p for p in entries.iterdir() if not p.name.startswith(".")]
    assert (entry / "done.json").is_file()
    assert [p.name for p in entries.iterdir() if ".tmp-" in p.name] == []
