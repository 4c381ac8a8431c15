"""Who has a project open: a shared lock per open session, an exclusive one for restore.

Every open :class:`~.project.Project` holds a shared ``flock`` on ``<project>/project.lock`` for
as long as it is open; :func:`exclusive` takes the lock exclusively and fails at once when any
session (a notebook, a batch run, another process or this one) has the project open. Restoring
a backup swaps the database file, so a session left open across a restore would keep writing
into the file set aside; with this lock a restore refuses instead, and an open that meets a
restore in progress waits briefly, then says so. The kernel drops the lock of a killed process.

Where the folder cannot hold a lock file (read-only media) sessions are not tracked; that is
logged, and restore into such a folder is refused anyway (it cannot write there).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from text2seg_widgets.errors import InputError

__all__ = ["LOCK_NAME", "SessionLock", "exclusive"]

log = logging.getLogger(__name__)

LOCK_NAME = "project.lock"


def _open_lock(folder: Path) -> int | None:
    try:
        return os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        log.debug("no session lock for %s (%s)", folder, exc)
        return None


class SessionLock:
    """A shared lock on a project folder, held from construction until :meth:`release`."""

    def __init__(self, folder: Path, wait_s: float = 10.0) -> None:
        self.folder = folder
        self._fd = _open_lock(folder)
        if self._fd is None:
            return
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self.release()
                    raise InputError(f"the project {folder} is being restored from a backup by "
                                     "another command; open it again when that has finished")
                time.sleep(0.1)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops its lock
            self._fd = None


@contextmanager
def exclusive(folder: Path, action: str) -> Iterator[None]:
    """Hold ``folder``'s lock exclusively for ``action``; :class:`InputError` when it is open."""
    fd = _open_lock(folder)
    if fd is None:
        raise InputError(f"cannot {action}: the project folder {folder} is not writable")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"cannot {action}: the project {folder} is open in another session "
                             "(a notebook, an Annotator or a batch run). Close it there (or stop "
                             "the run), then try again; nothing was changed") from None
        yield
    finally:
        os.close(fd)
