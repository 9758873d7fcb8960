"""One writer per store or run folder: a lock file that says who holds it.

The lock is an advisory ``flock`` on ``FOLDER/.gliograde.lock``: the operating system releases it
when the holder exits, even on ``kill -9``, so a crashed run never leaves a folder locked. The
file itself names the holder (process id, host, command, start time) for the message a second
writer gets.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from gliograde.core.console import say
from gliograde.core.errors import GliogradeError

LOCK_NAME = ".gliograde.lock"


class FolderBusy(GliogradeError):
    """Another process is writing the folder."""


@contextlib.contextmanager
def folder_lock(folder: Path, what: str) -> Iterator[None]:
    """Hold ``folder``'s lock while the block runs.

    Args:
        folder: the store or run folder (created when missing).
        what: what this process does there, for the message a second writer gets.

    Raises:
        FolderBusy: another live process holds the lock.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderBusy(f"{folder}: {holder(fd)}; wait for it to finish") from None
        except OSError as err:  # a file system without locks (some NFS, Lustre without flock)
            if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
            say(
                f"note: {folder}: this file system cannot lock files; make sure no other "
                "process writes here at the same time"
            )
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "what": what,
            "command": " ".join(sys.argv),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # an empty lock file: nobody holds it (and stores stay identical)
    finally:
        os.close(fd)  # closing releases the flock


def holder(fd: int) -> str:
    """Who holds the lock, in words, from the lock file."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (UnicodeDecodeError, ValueError):
        info = {}
    if not info:
        return "another process is writing here"
    return (
        f"being written by process {info.get('pid')} on {info.get('host')} "
        f"({info.get('what')}, since {info.get('since')})"
    )


@contextlib.contextmanager
def waiting_lock(path: Path, what: str) -> Iterator[None]:
    """Hold the lock file ``path`` while the block runs, waiting for another holder first.

    For work that a second process should wait on and then reuse, not be refused (a cache
    entry two ``predict`` processes both need). ``what`` names the work in the line said
    while waiting. Released by the operating system if the holder dies.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting: another process is {what}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def lock_if_writing_into(folder: Path, out: Path, what: str) -> contextlib.AbstractContextManager:
    """``folder``'s lock (:func:`folder_lock`) when ``out`` lies inside it; nothing otherwise
    (a command writing elsewhere only reads ``folder``)."""
    if Path(out).resolve().is_relative_to(Path(folder).resolve()):
        return folder_lock(folder, what)
    return contextlib.nullcontext()
