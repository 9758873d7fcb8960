"""The node's spool: every instance it acknowledged, on disk before the acknowledgement, and one
record per study with its state.

Layout (the folder and all below it readable by its owner only)::

    SPOOL/studies/KEY/SOP_UID.dcm   the instances received, grouped by study
    SPOOL/studies/KEY.json          the study's record (:class:`StudyRecord`)
    SPOOL/sr/KEY/SR_UID.dcm         the SR made for it (kept, so a resend sends the same one)
    SPOOL/cache/                    the studies preprocessed (the node's preprocessing cache)

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
from gliograde.core.files import fsync_dir

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
    result_files: list[str] = field(default_factory=list)  # the SR first, then the pictures
    sent: bool = False
    send_attempts: int = 0
    next_send: float = 0.0  # when to try sending again (back-off)
    grade_attempts: int = 0  # tries that failed for want of disk space
    next_grade: float = 0.0  # when to try grading again after such a try (back-off)
    late: int = 0  # images that came after the study was answered (kept, not graded)

    @classmethod
    def from_dict(cls, data: dict) -> StudyRecord:
        data = dict(data)
        if "sr_files" in data:  # a spool of a node that sent the SR alone
            data.setdefault("result_files", data.pop("sr_files"))
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


def write_durably(path: Path, data: bytes) -> None:
    """``data`` at ``path``: a temporary file (of this thread), written whole, fsynced, renamed
    into place, the folder fsynced. On an error (a full disk) nothing is left behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:  # a write near a full disk may write part of it
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


class Spool:
    """A spool folder: instances by study, and the studies' records."""

    def __init__(self, root: Path, max_bytes: int | None = None):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.lock = threading.RLock()  # records: the SCP's threads and the grading loop
        self._used: int | None = None
        self.used_bytes()  # measured now, before any instance is added
        for folder in (self.root, self.root / "studies", self.root / "sr", self.cache):
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, 0o700)

    @property
    def cache(self) -> Path:
        """Where the studies are preprocessed (inside the spool: it holds patient data)."""
        return self.root / "cache"

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

    def disk_free(self) -> int:
        """Bytes free on the spool's disk (to an unprivileged writer)."""
        free = os.statvfs(self.root)
        return free.f_bavail * free.f_frsize

    def has_room(self, incoming: int) -> bool:
        """Whether ``incoming`` more bytes fit under ``max_bytes`` and on the disk."""
        if incoming * 2 > self.disk_free():  # keep a margin for the records
            return False
        return self.max_bytes is None or self.used_bytes() + incoming <= self.max_bytes

    def keep(self, study_uid: str, sop_uid: str, data: bytes) -> StudyRecord | None:
        """Write one instance durably and count it in its study's record; None, and nothing
        kept, when it does not fit (``max_bytes``, or the disk). A study that failed is graded
        again with its new images; one already answered is not (its answer stands: the PACS
        never gets a second, different one), and its record counts them.

        Raises:
            OSError: the disk refused the write (the instance is not kept).
        """
        key = study_key(study_uid)
        path = self.folder(key) / instance_name(sop_uid)
        with self.lock:  # one store at a time: room, file and record agree
            new = not path.exists()
            if new and not self.has_room(len(data)):
                return None
            self.folder(key).mkdir(mode=0o700, exist_ok=True)
            write_durably(path, data)
            self._used = self.used_bytes() + len(data) * int(new)
            known = self.record_path(key).is_file()
            record = self.read(key) if known else StudyRecord(key, study_uid)
            record.instances += int(new)
            record.last_instance = time.time()
            if new and record.state == "failed":
                record.state, record.reason = "received", ""
            elif new and record.state == "done":
                record.late += 1
            self.save(record)
        return record

    def recover(self) -> list[str]:
        """After a stop: studies left in processing are graded again, folders whose record was
        not written (a stop between an instance and its record) get one, counts are taken from
        the files, temporary files are removed, and studies still receiving wait a whole
        ``settle`` again (their senders may be sending the rest). Returns a line per change."""
        lines = []
        for tmp in self.root.rglob(".*.tmp"):
            tmp.unlink()
        for folder in sorted(p for p in (self.root / "studies").iterdir() if p.is_dir()):
            files = sorted(folder.glob("*.dcm"))
            if files and not self.record_path(folder.name).is_file():
                self.save(rebuilt_record(folder.name, files))
                lines.append(f"study {folder.name}: record rebuilt ({len(files)} images)")
        for record in self.records():
            count = len(list(self.folder(record.key).glob("*.dcm")))
            if record.state == "processing":
                record.state = "received"
                lines.append(f"study {record.key}: was being graded at the stop; graded again")
            if record.state == "received":
                record.last_instance = time.time()
            record.late += max(0, count - record.instances) if record.state == "done" else 0
            record.instances = count
            self.save(record)
        return lines


def rebuilt_record(key: str, files: list[Path]) -> StudyRecord:
    """The record of a study folder whose record was lost, from its files' headers."""
    import pydicom

    record = StudyRecord(key, "", instances=len(files), last_instance=time.time())
    for path in files:
        try:
            record.study_uid = str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)
            return record
        except (OSError, AttributeError, pydicom.errors.InvalidDicomError):
            continue  # the next file may be readable; none: the study fails below
    record.state, record.reason = "failed", "no readable header in the study's files"
    return record


def status_lines(root: Path) -> list[str]:
    """``gliograde serve --status SPOOL``: a line per study, oldest first (no patient data)."""
    studies = Path(root) / "studies"
    if not studies.is_dir():
        raise GliogradeError(f"{root}: not a spool of gliograde serve (no studies/ in it)")
    records = [StudyRecord.from_dict(json.loads(p.read_text())) for p in studies.glob("*.json")]
    lines = []
    for r in sorted(records, key=lambda r: r.last_instance):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.last_instance))
        sent = "results sent" if r.sent else ("results not sent" if r.result_files else "")
        late = f"{r.late} images came after the answer (not graded again)" if r.late else ""
        extra = " · ".join(x for x in (r.answer, sent, r.reason, late) if x)
        lines.append(f"{r.key}  {r.state:<10} {r.instances:>4} images  last {when}  {extra}")
    return lines or [f"{root}: no study"]
