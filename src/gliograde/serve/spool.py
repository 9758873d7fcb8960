"""The node's spool: every instance it acknowledged, on disk before the acknowledgement, and one
record per study with its state.

Layout (the folder and all below it readable by its owner only)::

    SPOOL/studies/KEY/SOP_UID.dcm   the instances received, grouped by study
    SPOOL/studies/KEY.json          the study's record (:class:`StudyRecord`)
    SPOOL/sr/KEY/SR_UID.dcm         the SR made for it (kept, so a resend sends the same one)

``KEY`` is a hash of the StudyInstanceUID, and a file's name its SOPInstanceUID when that is a
valid UID (else a hash): no attribute of a DICOM file becomes a path as it is, and no patient
identifier appears in a name. Files are written to a temporary name, fsynced, then renamed, and
the folder fsynced, so that a ``kill -9`` at any moment leaves no half-written instance that
looks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gliograde.core.errors import GliogradeError

STATES = ("received", "processing", "done", "failed")
UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


@dataclass
class StudyRecord:
    """A study's state in the spool (``KEY.json``)."""

    key: str
    study_uid: str
    state: str = "received"  # see STATES
    instances: int = 0
    last_instance: float = 0.0  # when the latest instance arrived (time.time())
    reason: str = ""  # why it failed, or why its SR is not sent yet, in one line
    answer: str = ""  # the grade and its probability, once graded
    sr_files: list[str] = field(default_factory=list)
    sent: bool = False
    send_attempts: int = 0
    next_send: float = 0.0  # when to try sending again (back-off)
    late: int = 0  # images that came after the study was answered (kept, not graded)

    @classmethod
    def from_dict(cls, data: dict) -> StudyRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def study_key(study_uid: str) -> str:
    """The study's folder name: a hash of its UID (no attribute text in paths)."""
    return hashlib.sha256(str(study_uid).encode()).hexdigest()[:20]


def instance_name(sop_uid: str) -> str:
    """A file name for an instance: its SOPInstanceUID when it is a valid UID, else a hash."""
    uid = str(sop_uid)
    if UID.match(uid) and len(uid) <= 64:
        return f"{uid}.dcm"
    return f"{hashlib.sha256(uid.encode()).hexdigest()[:32]}.dcm"


def fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """``data`` at ``path``: a temporary file, fsynced, renamed into place, the folder fsynced."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_folder(path.parent)


class Spool:
    """A spool folder: instances by study, and the studies' records."""

    def __init__(self, root: Path, max_bytes: int | None = None):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.lock = threading.RLock()  # records: the SCP's threads and the grading loop
        self._used: int | None = None
        self.used_bytes()  # measured now, before any instance is added
        for folder in (self.root, self.root / "studies", self.root / "sr"):
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, 0o700)

    def folder(self, key: str) -> Path:
        return self.root / "studies" / key

    def record_path(self, key: str) -> Path:
        return self.root / "studies" / f"{key}.json"

    def read(self, key: str) -> StudyRecord:
        return StudyRecord.from_dict(json.loads(self.record_path(key).read_text()))

    def save(self, record: StudyRecord) -> None:
        data = (json.dumps(asdict(record), indent=2) + "\n").encode()
        write_durably(self.record_path(record.key), data)

    def records(self) -> list[StudyRecord]:
        """Every study's record, oldest first."""
        found = [self.read(p.stem) for p in (self.root / "studies").glob("*.json")]
        return sorted(found, key=lambda r: r.last_instance)

    def used_bytes(self) -> int:
        """The spool's size: measured once, then counted as instances are kept."""
        if self._used is None:
            self._used = sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file())
        return self._used

    def has_room(self, incoming: int) -> bool:
        """Whether ``incoming`` more bytes fit under ``max_bytes`` and on the disk."""
        free = os.statvfs(self.root)
        if incoming * 2 > free.f_bavail * free.f_frsize:  # keep a margin for the records
            return False
        return self.max_bytes is None or self.used_bytes() + incoming <= self.max_bytes

    def keep(self, study_uid: str, sop_uid: str, data: bytes) -> StudyRecord:
        """Write one instance durably and count it in its study's record. A study that failed
        is graded again with its new images; one already answered is not (its answer stands:
        the PACS never gets a second, different one), and its record says so."""
        key = study_key(study_uid)
        folder = self.folder(key)
        if not folder.is_dir():
            folder.mkdir(mode=0o700)
            fsync_folder(folder.parent)
        path = folder / instance_name(sop_uid)
        new = not path.exists()
        write_durably(path, data)
        with self.lock:
            self._used = self.used_bytes() + len(data) * int(new)  # measured at the start
            record = (
                self.read(key) if self.record_path(key).is_file() else StudyRecord(key, study_uid)
            )
            record.instances += int(new)
            record.last_instance = time.time()
            if new and record.state == "failed":
                record.state, record.reason = "received", ""
            elif new and record.state == "done":
                record.late += 1
            self.save(record)
        return record

    def recover(self) -> list[str]:
        """After a stop: studies left in processing are graded again, and folders whose record
        was not written (a stop between the instance and its record) get one. Returns a line
        per study changed."""
        lines = []
        for folder in sorted(p for p in (self.root / "studies").iterdir() if p.is_dir()):
            files = list(folder.glob("*.dcm"))
            if not self.record_path(folder.name).is_file() and files:
                record = StudyRecord(folder.name, study_uid_of(files[0]), instances=len(files))
                record.last_instance = time.time()
                self.save(record)
                lines.append(f"study {folder.name}: record rebuilt ({len(files)} images)")
        for record in self.records():
            if record.state == "processing":
                record.state = "received"
                self.save(record)
                lines.append(f"study {record.key}: was being graded at the stop; graded again")
            elif record.instances != len(list(self.folder(record.key).glob("*.dcm"))):
                record.instances = len(list(self.folder(record.key).glob("*.dcm")))
                self.save(record)
        return lines


def study_uid_of(path: Path) -> str:
    """The StudyInstanceUID in a spooled file's header."""
    import pydicom

    try:
        return str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)
    except (OSError, AttributeError, pydicom.errors.InvalidDicomError) as err:
        raise GliogradeError(f"{path}: spooled file without a study UID ({err})") from err


def status_lines(root: Path) -> list[str]:
    """``gliograde serve --status SPOOL``: a line per study, oldest first (no patient data)."""
    if not (Path(root) / "studies").is_dir():
        raise GliogradeError(f"{root}: not a spool of gliograde serve (no studies/ in it)")
    spool = Spool(root)
    lines = []
    for r in spool.records():
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.last_instance))
        sent = "SR sent" if r.sent else ("SR not sent" if r.sr_files else "")
        late = f"{r.late} images came after the answer (not graded again)" if r.late else ""
        extra = " · ".join(x for x in (r.answer, sent, r.reason, late) if x)
        lines.append(f"{r.key}  {r.state:<10} {r.instances:>4} images  last {when}  {extra}")
    return lines or [f"{root}: no study"]
