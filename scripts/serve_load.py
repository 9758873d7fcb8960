"""Load and faults for ``gliograde serve``, against a real Orthanc on loopback (a script, not a
timed test). Writes ``--studies`` SYNTHETIC studies (copies of one simulated DICOM export under
new patients and UIDs), sends them from ``--senders`` concurrent senders, and in the middle:

* kills the node with SIGKILL once a quarter of the images are stored, and starts it again;
* aborts one association halfway through a study (that sender sends the study again);
* once half the images are stored, fills the spool's disk (a tmpfs of ``--disk-mb`` when this
  machine lets root mount one, else the node's ``--max-spool``) for ``--full-s`` seconds with a
  filler file.

Senders treat 0xA700 (out of resources) as a PACS does: wait, then send that image again.
At the end it reports the studies received, graded and answered in Orthanc, the lost and the
duplicated (both must be 0), and the seconds per study.

    .venv/bin/python scripts/serve_load.py RUN --studies 20 --senders 4
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import pydicom

from helpers.orthanc import echo, free_port, orthanc, start_node, wait_until

MR = "1.2.840.10008.5.1.4.1.1.4"


def make_studies(work: Path, n: int) -> list[list[Path]]:
    """``n`` studies: one SYNTHETIC head's DICOM export, copied under new patients and UIDs."""
    from pydicom.uid import generate_uid

    from gliograde.io.synth import synth_cohort
    from gliograde.scans.simulate import raw_like, write_raw_export

    synth_cohort(work / "heads", subjects=2, seed=5, skull=True, quiet=True)
    head = min(p for p in (work / "heads").iterdir() if p.is_dir())
    export = write_raw_export(raw_like(head, work / "raw"), work / "export")
    studies = []
    for k in range(n):
        out = work / f"study{k:02d}"
        out.mkdir()
        for f in sorted(export.iterdir()):
            ds = pydicom.dcmread(f)
            for name in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
                setattr(ds, name, generate_uid(entropy_srcs=[str(k), str(getattr(ds, name))]))
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.PatientID = ds.PatientName = f"LOAD-{k:02d}"
            ds.save_as(out / f.name)
        studies.append(sorted(out.iterdir()))
    return studies


class Sender(threading.Thread):
    """Sends its studies one association each; 0xA700 and lost connections are retried."""

    def __init__(self, studies, port: int, abort_first: bool):
        super().__init__(daemon=True)
        self.studies, self.port, self.abort_first = studies, port, abort_first
        self.refused = self.retried = self.stored = 0

    def run(self):
        for k, files in enumerate(self.studies):
            pending = list(files)
            if self.abort_first and k == 0:
                self.send(pending[: len(pending) // 2], abort=True)
            while pending:
                pending = self.send(pending)

    def send(self, files, abort=False):
        """Send ``files``; the ones to send again (refused, or the node was away)."""
        from pynetdicom import AE

        ae = AE(ae_title="LOADSCU")
        ae.add_requested_context(MR)
        assoc = ae.associate("127.0.0.1", self.port, ae_title="GLIOGRADE")
        if not assoc.is_established:
            time.sleep(2)
            self.retried += 1
            return files
        again = []
        for f in files:
            try:
                status = assoc.send_c_store(pydicom.dcmread(f))
            except RuntimeError:  # the association was lost (the node killed): send it again
                status = None
            if getattr(status, "Status", None) == 0x0000:
                self.stored += 1
            else:
                self.refused += int(getattr(status, "Status", None) == 0xA700)
                again.append(f)
        if abort:
            assoc.abort()
            return []
        if assoc.is_established:
            assoc.release()
        if again:
            time.sleep(2)
        return again


def spool_disk(work: Path, megabytes: int) -> tuple[Path, bool]:
    """A folder on a tmpfs of ``megabytes`` when root may mount one (True), else a plain one."""
    folder = work / "disk"
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(folder)],
        capture_output=True,
    )
    return folder, done.returncode == 0


def fill(folder: Path, seconds: float, log) -> None:
    """Fill the spool's disk with a filler file for ``seconds``, then free it."""
    filler = folder / "filler"
    free = shutil.disk_usage(folder).free
    with open(filler, "wb") as f:
        f.truncate(0)
        chunk = b"\0" * (1 << 20)
        try:
            for _ in range(max(0, free // len(chunk) - 1)):
                f.write(chunk)
        except OSError as err:  # the senders' images took the last of it first: full all the same
            if err.errno != errno.ENOSPC:
                raise
    log(f"spool disk filled ({shutil.disk_usage(folder).free / 1e6:.1f} MB free) for {seconds} s")
    time.sleep(seconds)
    filler.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--studies", type=int, default=20)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--disk-mb", type=int, default=1500)
    parser.add_argument("--full-s", type=float, default=20.0)
    parser.add_argument("--timeout-s", type=float, default=3600.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gliograde-load-"))
    started = time.time()

    def log(message):
        print(f"[{time.time() - started:6.0f} s] {message}", flush=True)

    studies = make_studies(work, args.studies)
    log(f"{len(studies)} SYNTHETIC studies of {len(studies[0])} images each in {work}")
    disk, mounted = spool_disk(work, args.disk_mb)
    log(f"spool on {'a tmpfs of ' + str(args.disk_mb) + ' MB' if mounted else 'the work disk'}")
    port = free_port()
    os.environ["GLIOGRADE_CACHE"] = str(work / "cache")
    with orthanc(work / "orthanc", ("GLIOGRADE", port, "127.0.0.1")) as pacs:
        node_log = work / "node.log"
        options = ("--force", "--settle", "10", "--allow", "LOADSCU")
        if not mounted:
            options += ("--max-spool", str(args.disk_mb))

        def node():
            process = start_node(args.run, disk / "spool", port, pacs, *options, log=node_log)
            wait_until(lambda: echo(port, "LOADSCU"), 60, "the node did not start")
            return process

        process = node()
        shares = [studies[i :: args.senders] for i in range(args.senders)]
        senders = [Sender(s, port, abort_first=(i == 0)) for i, s in enumerate(shares)]
        for s in senders:
            s.start()
        total = sum(len(files) for files in studies)

        def wait_for_share(share: float) -> None:  # faults land while images are still coming
            while sum(s.stored for s in senders) < share * total:
                time.sleep(0.05)

        wait_for_share(0.25)
        process.send_signal(signal.SIGKILL)
        process.wait()
        log("node killed (SIGKILL)")
        process = node()
        log("node started again")
        if mounted:
            wait_for_share(0.5)
            fill(disk, args.full_s, log)
        for s in senders:
            s.join()
        refused = sum(s.refused for s in senders)
        log(f"all sent; {refused} images refused with 0xA700 and sent again")
        result = wait_for_answers(pacs, studies, args.timeout_s, log)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    records = [json.loads(p.read_text()) for p in (disk / "spool" / "studies").glob("*.json")]
    result = {
        "studies_received": len(records),
        "studies_graded": sum(r["state"] == "done" for r in records),
        "images_in_spool": sum(r["instances"] for r in records),
    } | result
    if mounted:
        subprocess.run(["umount", str(disk)], check=False)
    report = result | {"seconds_per_study": round((time.time() - started) / len(studies), 1)}
    print(json.dumps(report, indent=2))
    return 0 if report["lost"] == 0 and report["duplicates"] == 0 else 1


def wait_for_answers(pacs, studies, timeout_s: float, log) -> dict:
    """Poll Orthanc until every study has its SR (or the timeout); count what arrived."""
    uids = [str(pydicom.dcmread(s[0], stop_before_pixels=True).StudyInstanceUID) for s in studies]
    deadline = time.time() + timeout_s
    while True:
        counts = {}
        for uid in uids:
            found = pacs.post("/tools/find", {"Level": "Study", "Query": {"StudyInstanceUID": uid}})
            series = pacs.get(f"/studies/{found[0]}/series") if found else []
            srs = [s for s in series if s["MainDicomTags"].get("Modality") == "SR"]
            counts[uid] = sum(len(s["Instances"]) for s in srs)
        answered = sum(1 for c in counts.values() if c >= 1)
        if answered == len(uids) or time.time() > deadline:
            break
        time.sleep(10)
    log(f"{answered} of {len(uids)} studies answered in Orthanc")
    return {
        "studies_sent": len(uids),
        "srs_in_orthanc": sum(counts.values()),
        "studies_answered": answered,
        "lost": len(uids) - answered,
        "duplicates": sum(max(0, c - 1) for c in counts.values()),
    }


if __name__ == "__main__":
    sys.exit(main())
