"""The data folder's lock: one daemon at a time in one data folder.

Two daemons on one folder would resume each other's session, overwrite each other's
record and delete each other's journal. The daemon therefore holds an exclusive
``flock`` on ``<data>/intervisie.lock`` while it runs; the file holds the holder's
process id, so a second daemon can say which process to stop. The kernel drops the
lock when its holder ends, however it ends (a power cut leaves no stale lock).

The lock is held on a read-only descriptor: like the journal, it never keeps the data
disk from being remounted read-only. The file is opened without following a link, and
removed when the daemon stops (what is kept in the folder stays the sessions alone); a
daemon that took the lock on a file just removed sees so and takes it again.
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
_ATTEMPTS = 5
"""How often a lock taken on a file that was removed meanwhile is taken again."""


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
        """Remove the lock file and drop the lock (removed first, while it is still ours)."""
        if self._fd is None:
            return
        try:
            if _same_file(self._fd, self.path):
                os.unlink(self.path)
        except OSError as exc:
            log.debug("the lock file %s stays: %s", self.path, exc.strerror)  # a read-only disk
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
    try:
        for _attempt in range(_ATTEMPTS):
            fd = _open_lock(folder, data_dir / LOCK_NAME)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                pid = _holder(fd)
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise FolderBusy(data_dir, pid) from None
                raise JournalError(f"cannot lock the data folder {shown(data_dir)}: {exc.strerror}") from exc
            if _same_file(fd, LOCK_NAME, folder):
                _write_pid(folder, fd)
                return DataFolderLock(fd, data_dir / LOCK_NAME)
            os.close(fd)  # its holder removed it as it stopped: lock the new one
        raise JournalError(f"cannot lock the data folder {shown(data_dir)}: its lock file keeps changing")
    finally:
        os.close(folder)


def _open_lock(folder: int, path: Path) -> int:
    """Open (or make, mode 0600) the lock file in the opened data folder, read-only, never through a link."""
    try:
        fd = os.open(LOCK_NAME, os.O_RDONLY | os.O_CREAT | _OPEN, 0o600, dir_fd=folder)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FolderRefused(_not_regular(path, "a symbolic link")) from None
        if exc.errno == errno.EISDIR:
            raise FolderRefused(_not_regular(path, "a folder")) from None
        raise JournalError(f"cannot open the lock file {shown(path)}: {exc.strerror}") from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise FolderRefused(_not_regular(path, "not a regular file"))
    return fd


def _same_file(fd: int, name: Path | str, folder: int | None = None) -> bool:
    """Whether ``name`` (in ``folder``) is still the file open as ``fd``."""
    try:
        there = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except OSError:
        return False
    here = os.fstat(fd)
    return (there.st_dev, there.st_ino) == (here.st_dev, here.st_ino)


def _not_regular(path: Path, what: str) -> str:
    return f"the lock file {shown(path)} is {what}, so the data folder is not used: remove it"


def _holder(fd: int) -> int | None:
    """The process id the lock's holder wrote, if it is there yet."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and 0 < len(text) <= 10 else None


def _write_pid(folder: int, locked: int) -> None:
    """Write our process id into the held lock file, through a descriptor closed at once.

    A read-only or full disk leaves it without (the lock holds all the same).
    """
    try:
        fd = os.open(LOCK_NAME, os.O_WRONLY | _OPEN, dir_fd=folder)
    except OSError as exc:
        log.debug("cannot write the process id into the lock file: %s", exc.strerror)
        return
    try:
        if _same_file(locked, LOCK_NAME, folder) and os.fstat(fd).st_ino == os.fstat(locked).st_ino:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError as exc:
        log.debug("cannot write the process id into the lock file: %s", exc.strerror)
    finally:
        os.close(fd)
