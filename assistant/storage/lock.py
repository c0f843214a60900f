"""The data folder's lock: one daemon at a time in one data folder.

Two daemons on one folder would resume each other's session, overwrite each other's
record and delete each other's journal. The daemon therefore holds an exclusive
``flock`` on ``<data>/intervisie.lock`` while it runs; the file holds the holder's
process id, so a second daemon can say which process to stop. The kernel drops the
lock when its holder ends, however it ends (a power cut leaves no stale lock). The
file stays behind; it is opened without following a link and is never a session.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
from pathlib import Path

from assistant.errors import JournalError
from assistant.storage.files import FolderRefused, open_private_dir, shown

log = logging.getLogger(__name__)

LOCK_NAME = "intervisie.lock"
_OPEN = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CANNOT_WRITE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT})


class FolderBusy(JournalError):
    """Another process holds the data folder's lock (another daemon uses the folder)."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        holder = f"process {pid}" if pid is not None else "a process that could not be named"
        super().__init__(
            f"another intervisie ({holder}) is using the data folder {shown(data_dir)}; stop it first "
            "(sudo systemctl stop intervisie, if it is the service), or give this one a data_dir of its own"
        )
        self.pid = pid


class DataFolderLock:
    """The held lock of a data folder; :meth:`release` (or the end of the process) drops it."""

    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    def release(self) -> None:
        """Drop the lock (closing the file drops it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def lock_data_folder(data_dir: Path) -> DataFolderLock:
    """Make (or check) the data folder and take its lock.

    Raises :class:`FolderBusy` when another process holds it, :class:`FolderRefused`
    when the folder or the lock file must not be used (a link, shared, someone else's,
    not a regular file), and :class:`JournalError` when the folder or the lock file
    cannot be made or opened (``__cause__`` is the ``OSError``).
    """
    folder = open_private_dir(data_dir)
    path = data_dir / LOCK_NAME
    try:
        fd = _open_lock(folder, path)
    finally:
        os.close(folder)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        pid = _holder(fd)
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise FolderBusy(data_dir, pid) from None
        raise JournalError(f"cannot lock the data folder {shown(data_dir)}: {exc.strerror}") from exc
    _write_pid(fd)
    return DataFolderLock(fd, path)


def _open_lock(folder: int, path: Path) -> int:
    """Open (or make, mode 0600) the lock file in the opened data folder, never through a link."""
    try:
        fd = os.open(LOCK_NAME, os.O_RDWR | os.O_CREAT | _OPEN, 0o600, dir_fd=folder)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FolderRefused(_not_regular(path, "a symbolic link")) from None
        if exc.errno == errno.EISDIR:
            raise FolderRefused(_not_regular(path, "a folder")) from None
        if exc.errno not in _CANNOT_WRITE:
            raise JournalError(f"cannot open the lock file {shown(path)}: {exc.strerror}") from exc
        try:
            # A read-only disk (or a lock file of root's): an existing file locks all the same.
            fd = os.open(LOCK_NAME, os.O_RDONLY | _OPEN, dir_fd=folder)
        except OSError:
            raise JournalError(f"cannot open the lock file {shown(path)}: {exc.strerror}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FolderRefused(_not_regular(path, "not a regular file"))
    return fd


def _not_regular(path: Path, what: str) -> str:
    return f"the lock file {shown(path)} is {what}, so the data folder is not used: remove it"


def _holder(fd: int) -> int | None:
    """The process id the lock's holder wrote, if it is there yet."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and 0 < len(text) <= 10 else None


def _write_pid(fd: int) -> None:
    """Write our process id into the held lock file (a read-only disk leaves the old one)."""
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError as exc:
        log.debug("cannot write the process id into the lock file: %s", exc.strerror)
