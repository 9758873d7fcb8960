"""Fuzz cases in child processes with limits: a hang inside C code, or an allocation that runs
away, is counted as that case's failure (with its seed, to replay it) instead of stopping the
run.

Each worker is a child process (``python -m helpers.isolated``) with an address-space limit
(``RLIMIT_AS``, inherited by what it starts, such as dcm2niix). It reads seeds on stdin and
answers one JSON line per case. The parent gives each case a wall-clock limit: past it, the
worker is killed, the case counted as a hang, and a new worker started. A worker that dies
(a crash in C code, a signal) is counted the same way for the case it was running.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import queue
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path

MEMORY_MB = int(os.environ.get("GLIOGRADE_FUZZ_MEMORY_MB", "3072"))
TIMEOUT_S = float(os.environ.get("GLIOGRADE_FUZZ_TIMEOUT_S", "60"))
HERE = Path(__file__).resolve().parent


FAILURES = ("traceback", "hang", "died", "memory limit", "wrong volume", "wrong refusal")


@dataclass
class Tally:
    """What the cases gave: a count per outcome (what a case returned, ``one line`` for a
    GliogradeError, or one of :data:`FAILURES`), and a line for each failure."""

    counts: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def add(self, seed: int, kind: str, text: str = "") -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if kind in FAILURES:
            self.failures.append(f"seed {seed}: {kind}: {text}")

    @property
    def cases(self) -> int:
        return sum(self.counts.values())

    def failed(self, kind: str) -> int:
        return self.counts.get(kind, 0)


class Worker:
    """One child process running cases of ``target`` (``module:function``)."""

    def __init__(self, target: str, scratch: Path):
        limit = MEMORY_MB * 2**20

        def limits():
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        env = os.environ | {
            "PYTHONPATH": f"{HERE.parent}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "helpers.isolated", target, str(scratch)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, preexec_fn=limits, env=env, cwd=HERE.parent, start_new_session=True,
        )  # fmt: skip
        self.answers: queue.Queue = queue.Queue()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self) -> None:
        for line in self.process.stdout:
            self.answers.put(line)
        self.answers.put(None)  # the worker is gone

    def run(self, seed: int) -> tuple[str, str]:
        self.process.stdin.write(f"{seed}\n")
        self.process.stdin.flush()
        try:
            line = self.answers.get(timeout=TIMEOUT_S)
        except queue.Empty:
            self.stop()
            return "hang", f"no answer after {TIMEOUT_S:.0f} s"
        if line is None:
            code = self.process.wait()
            self.stop()  # what it started, if still running
            return "died", f"the worker ended with {code} (a crash in C code, or the memory limit)"
        answer = json.loads(line)
        return answer["kind"], answer.get("text", "")

    def stop(self) -> None:
        """Kill the worker and what it started (a hung dcm2niix with it)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def run_cases(target: str, seeds: list[int], workers: int = 2) -> Tally:
    """Run ``target(seed, scratch)`` for each seed in child processes with limits."""
    tally, lock = Tally(), threading.Lock()
    pending = queue.Queue()
    for seed in seeds:
        pending.put(seed)

    def drive(scratch: Path) -> None:
        worker = Worker(target, scratch)
        while True:
            try:
                seed = pending.get_nowait()
            except queue.Empty:
                break
            kind, text = worker.run(seed)
            with lock:
                tally.add(seed, kind, text)
            if kind in ("hang", "died"):
                worker = Worker(target, scratch)
        worker.stop()

    with tempfile.TemporaryDirectory(prefix="gliograde-fuzz-") as root:
        threads = [
            threading.Thread(target=drive, args=(Path(root) / f"w{i}",)) for i in range(workers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return tally


def serve(target: str, scratch: Path) -> None:
    """The worker's loop: one seed per line in, one JSON answer per line out."""
    from gliograde.core.errors import GliogradeError

    module, name = target.split(":")
    case = getattr(importlib.import_module(module), name)
    scratch.mkdir(parents=True, exist_ok=True)
    for line in sys.stdin:
        seed = int(line)
        try:
            answer = {"kind": str(case(seed, scratch) or "answered")}
        except GliogradeError:
            answer = {"kind": "one line"}
        except MemoryError:
            answer = {"kind": "memory limit", "text": f"over {MEMORY_MB} MB"}
        except Exception as err:  # what the case is there to find: counted, with its text
            named = {"WrongVolume": "wrong volume", "WrongRefusal": "wrong refusal"}
            kind = named.get(type(err).__name__, "traceback")
            answer = {"kind": kind, "text": traceback.format_exc(limit=4)[-1500:]}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    serve(sys.argv[1], Path(sys.argv[2]))
