"""``gliograde serve``: the node's loop. The node opens the run's models once, when it starts
(:class:`Opened`), and keeps them for its life. The SCP spools what arrives; every second, a
study with no new instance for ``settle`` seconds is graded through ``predict``'s own path
(preprocessing, the out-of-distribution guard, the Grader), its DICOM results (the SR, the heat
map, the key images) are written with UIDs derived from the study and the run, and sent to the
PACS, again with back-off until the PACS takes them.

One line per study goes to the log, with the study's key (a hash), never a patient identifier.
"""

from __future__ import annotations

import contextlib
import errno
import io
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gliograde.core.console import say
from gliograde.core.errors import GliogradeError
from gliograde.serve.node import Peer, Tls, send_files, start_node
from gliograde.serve.spool import Spool, StudyRecord

if TYPE_CHECKING:
    from gliograde.infer.grader import Grader
    from gliograde.predict import Prediction, PredictOptions

MAX_BACKOFF_S = 300.0
ROOM_TO_GRADE = 200_000_000
"""Bytes a study's grading may write (converted and preprocessed volumes, QC, its Grad-CAM and
results; measured for the SR alone, before the heat map and key images): a study that
fails with less free on the spool's disk waits for room instead of failing."""
ROOM_TRIES = 10
"""How often such a study is tried again (about 25 min in all) before it fails with its reason:
a study that fails for a reason of its own on a nearly full disk must still be answered."""


@dataclass
class ServeConfig:
    """What ``gliograde serve`` was asked to do."""

    run: Path
    spool: Path
    send_to: Peer
    ae_title: str = "GLIOGRADE"
    host: str = "127.0.0.1"
    port: int = 11112
    allow: tuple[str, ...] = ()
    settle: float = 30.0
    force: bool = False
    max_spool_mb: float | None = None
    tls: Tls | None = None
    device: str = "auto"
    precision: str = "auto"  # the grading's: auto, fp32 or bf16


@dataclass
class Opened:
    """What the node opens once, when it starts, and grades every study with."""

    grader: Grader  # the run's models, read, checked and loaded once
    options: PredictOptions  # how a study is graded (force; the preprocessing cache)
    identity: str  # the weights' checksums: with the study's UID, the seed of its SR's UIDs

    @classmethod
    def open(cls, config: ServeConfig) -> Opened:
        """The run's Grader for ``config`` (a run that cannot grade stops the node now, not
        every study), and the options every study is graded with."""
        from gliograde.predict import PredictOptions, open_grader

        options = PredictOptions(
            force=config.force, device=config.device, precision=config.precision
        )
        grader = open_grader(config.run, options)
        _ = grader.calibration  # read now: a run without a usable calibration.json stops the node
        return cls(grader, options, run_identity(config.run))


class Node:
    """The SCP and the loop that grades and answers, over one spool, with one Grader."""

    def __init__(self, config: ServeConfig):
        self.config = config
        self.opened = Opened.open(config)  # before the spool: a bad run makes no folder
        max_bytes = int(config.max_spool_mb * 1e6) if config.max_spool_mb else None
        self.spool = Spool(config.spool, max_bytes)
        # Preprocessed studies hold patient data: cached in the spool, with its permissions
        self.opened.options.cache = self.spool.cache
        self.stop = threading.Event()

    def run(self) -> None:
        """Serve until :attr:`stop` is set (SIGTERM, Ctrl-C)."""
        c = self.config
        for line in self.spool.recover():
            say(f"serve: {line}")
        server = start_node(
            c.ae_title, (c.host, c.port), self.spool, {"allow": c.allow, "tls": c.tls}
        )
        say(f"serve: {c.ae_title} on {c.host}:{c.port}, spool {c.spool}, answers to {c.send_to}")
        try:
            while not self.stop.wait(1.0):
                self.step()
        finally:
            server.shutdown()

    def step(self, now: float | None = None) -> None:
        """Grade each settled study, and send each SR that is due. A study whose record could
        not be written (the spool's disk full) is left as it was, and taken up again at a later
        step: the node goes on."""
        now = time.time() if now is None else now
        for record in self.spool.records():
            try:
                self.step_study(record, now)
            except OSError as err:
                if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                say(f"serve: study {record.key}: no room on the spool's disk to record it; "
                    "it is taken up again once there is")  # fmt: skip

    def step_study(self, record: StudyRecord, now: float) -> None:
        # "processing" between steps is a grading whose outcome could not be recorded
        waiting = record.state in ("received", "processing")
        settled = now - record.last_instance >= self.config.settle
        if waiting and settled and now >= record.next_grade:
            self.grade(record.key)
        elif record.state == "done" and not record.sent and now >= record.next_send:
            self.send(record.key)

    def grade(self, key: str) -> None:
        """Grade one study as ``predict`` grades a DICOM folder, and write its SR."""
        with self.spool.lock:
            record = self.spool.read(key)
            settled = time.time() - record.last_instance >= self.config.settle
            if record.state not in ("received", "processing") or not settled:  # it changed
                return
            record.state, seen = "processing", record.instances
            self.spool.save(record)
        try:
            outcome = grade_study(self.opened, self.spool, record)
        except Exception as err:
            # The node must go on serving the other studies: whatever stopped this one (our
            # one-line errors, or a library's) is its reason, kept in its record and the log.
            outcome = {"state": "failed", "reason": failure_line(err)}
        with self.spool.lock:
            record = self.spool.read(key)
            if record.instances != seen:  # more images came while it was graded
                record.state = "received"
            elif (
                outcome["state"] == "failed"
                and self.spool.disk_free() < ROOM_TO_GRADE
                and record.grade_attempts < ROOM_TRIES
            ):
                self.wait_for_room(record, outcome["reason"])
            else:
                for name, value in outcome.items():
                    setattr(record, name, value)
            self.spool.save(record)
        say(f"serve: study {key}: {record.instances} images → {record.state}: "
            f"{record.answer or record.reason}")  # fmt: skip
        if record.state == "done":
            self.send(key)

    @staticmethod
    def wait_for_room(record: StudyRecord, reason: str) -> None:
        """A study that failed while the spool's disk was full is not failed: it waits for
        room and is graded again, waiting twice as long after each such try."""
        record.grade_attempts += 1
        wait = min(MAX_BACKOFF_S, 2.0**record.grade_attempts)
        record.state, record.next_grade = "received", time.time() + wait
        record.reason = f"no room on the spool's disk to grade it ({reason}); again in {wait:.0f} s"

    def send(self, key: str) -> None:
        """Send the study's results (SR, heat map, key images); on failure, try again later,
        waiting twice as long each time."""
        record = self.spool.read(key)
        files = [self.spool.root / "sr" / key / name for name in record.result_files]
        try:
            problem = send_files(files, self.config.send_to, self.config.ae_title)
        except Exception as err:  # a send that fails is tried again, and says why
            problem = failure_line(err)
        with self.spool.lock:
            record = self.spool.read(key)
            if problem is None:
                record.sent, record.reason = True, ""
            else:
                record.send_attempts += 1
                wait = min(MAX_BACKOFF_S, 2.0**record.send_attempts)
                record.next_send = time.time() + wait
                record.reason = (
                    f"results not sent ({problem}); try {record.send_attempts + 1} in {wait:.0f} s"
                )
            self.spool.save(record)
        sent = f"results sent to {self.config.send_to}"
        say(f"serve: study {key}: {sent if problem is None else record.reason}")


def failure_line(err: BaseException) -> str:
    """A study's failure in one line: gliograde's own message, or the error's type and text."""
    if isinstance(err, GliogradeError):
        return str(err)
    return f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"


def grade_study(opened: Opened, spool: Spool, record: StudyRecord) -> dict:
    """The study graded through ``predict`` on its spool folder with the node's open Grader,
    and its DICOM results written (the SR, the heat map, the key images: ``predict
    --dicom-out``'s): the record's new fields (done with its answer and files, or failed with
    the reason)."""
    import shutil
    from dataclasses import replace

    from gliograde.predict import grade_inputs

    maps = spool.root / "maps" / record.key  # the Grad-CAM volumes, until the package is made
    options = replace(opened.options, explain=maps)
    try:
        # the notes said while grading name the subject (made from the PatientID): counted here
        with contextlib.redirect_stderr(io.StringIO()) as said:
            predictions = grade_inputs(opened.grader, [spool.folder(record.key)], options)
        if said.getvalue().strip():
            lines = len(said.getvalue().strip().splitlines())
            say(f"serve: study {record.key}: {lines} note(s) while grading (not shown: may name "
                "the patient; predict on the spooled study shows them)")  # fmt: skip
        graded = [p for p in predictions if p.error is None and p.dicom is not None]
        if len(predictions) != 1 or len(graded) != 1:
            reasons = "; ".join(p.error for p in predictions if p.error) or "no patient found"
            return {"state": "failed", "reason": reasons}
        files = write_results(graded[0], spool.root / "sr" / record.key, opened, record)
    finally:
        if maps.exists():  # patient data: a failure to remove it fails the study, loudly
            shutil.rmtree(maps)
    answer = answer_line(graded[0])
    return {"state": "done", "reason": "", "answer": answer, "result_files": files}


def write_results(prediction: Prediction, out: Path, opened: Opened, record: StudyRecord):
    """The study's package (:func:`~gliograde.predict.package.write_package`) in ``out``, its
    UIDs seeded by the study and the run; the files' names, the SR first."""
    from gliograde import __version__
    from gliograde.predict.package import write_package

    seed = f"{record.study_uid}|{opened.identity}"
    # highdicom's warnings quote the headers' values (a patient's name among them): said here
    # by kind only, so that no patient identifier reaches the log
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        package = write_package(prediction, out, __version__, seed)
    for kind in sorted({w.category.__name__ for w in caught}):
        say(f"serve: study {record.key}: {kind} writing its DICOM results (not shown: may "
            "name the patient)")  # fmt: skip
    if package.heatmap is None:  # its reason may quote a path that names the patient
        say(f"serve: study {record.key}: SR without heat map or key images "
            f"({len(package.notes)} note(s), not shown: may name the patient)")  # fmt: skip
    return [f.name for f in package.files]


def answer_line(prediction: Prediction) -> str:
    """``HGG, P(HGG) 0.812, confident``, or the same for another target."""
    from gliograde.predict.formats import rounded

    r = prediction.graded_result
    flag = "uncertain" if r.flag else "confident"
    if prediction.target.is_grade:
        return f"{r.answer}, P(HGG) {rounded(r.p[1]):.3f}, {flag}"
    return f"{r.answer}, {flag}"


def run_identity(run: Path) -> str:
    """What identifies a run's answers: its weights' checksums (``checksums.json``)."""
    checksums = Path(run) / "checksums.json"
    return checksums.read_text() if checksums.is_file() else str(Path(run).resolve())
