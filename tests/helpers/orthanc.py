"""A real PACS for tests: Debian's Orthanc, started on loopback ports with a temporary
configuration and database, and its REST API; and ``gliograde serve`` as a process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
AET = "ORTHANC"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Pacs:
    """A running Orthanc: its REST address and DICOM port."""

    http: int
    dicom: int

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http}{path}"

    def get(self, path: str):
        with urllib.request.urlopen(self.url(path), timeout=30) as r:
            return json.loads(r.read())

    def post(self, path: str, body: bytes | dict, timeout: float = 120):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(self.url(path), data=data, method="POST")
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return json.loads(r.read() or b"null")

    def upload(self, folder: Path) -> set[str]:
        """Every file of ``folder`` through the REST API; the Orthanc ids of their studies."""
        return {self.post("/instances", f.read_bytes())["ParentStudy"] for f in folder.iterdir()}

    def modalities_of(self, study: str) -> list[str]:
        return [s["MainDicomTags"].get("Modality") for s in self.get(f"/studies/{study}/series")]


@contextmanager
def orthanc(folder: Path, node: tuple[str, int, str], plugins: dict | None = None):
    """Orthanc on loopback, knowing ``node`` (AET, port, host '127.0.0.1') as modality
    ``gliograde``; stopped and its database removed afterwards. ``plugins``: each plugin's
    library → its configuration section and value (such as Orthanc's DICOMweb)."""
    aet, port, host = node
    pacs = Pacs(free_port(), free_port())
    config = {
        "Name": "gliograde-tests",
        "StorageDirectory": str(folder / "db"),
        "IndexDirectory": str(folder / "db"),
        "HttpPort": pacs.http,
        "DicomPort": pacs.dicom,
        "DicomAet": AET,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomModalities": {"gliograde": [aet, host, port]},
        "DicomAlwaysAllowStore": True,
        "DicomCheckModalityHost": False,
        "Plugins": [str(library) for library in (plugins or {})],
        "StableAge": 1,
        "DicomScuTimeout": 60,
    }
    for section, value in (plugins or {}).values():
        config[section] = value
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "orthanc.json").write_text(json.dumps(config))
    log = open(folder / "orthanc.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen([ORTHANC, str(folder / "orthanc.json")], stdout=log, stderr=log)
    try:
        wait_until(lambda: pacs.get("/system"), 30, f"Orthanc did not start: {folder}/orthanc.log")
        yield pacs
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def wait_until(check, seconds: float, message: str):
    """``check()``'s first truthy value within ``seconds`` (errors count as not yet)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            value = check()
            if value:
                return value
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(message)


def start_node(run: Path, spool: Path, port: int, pacs: Pacs, *options: str, log: Path):
    """``gliograde serve`` as its own process (so that a test can kill -9 it)."""
    cmd = [
        sys.executable, "-m", "gliograde", "serve", str(run), "--spool", str(spool),
        "--port", str(port), "--send-to", f"127.0.0.1:{pacs.dicom}:{AET}", "--device", "cpu",
        *options,
    ]  # fmt: skip
    out = open(log, "ab")  # noqa: SIM115 (the process holds it)
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


def echo(port: int, calling: str = "TESTSCU") -> bool:
    """A C-ECHO to the node on ``port``: True when it answered success."""
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="GLIOGRADE")
    if not assoc.is_established:
        return False
    status = assoc.send_c_echo()
    assoc.release()
    return getattr(status, "Status", None) == 0x0000
