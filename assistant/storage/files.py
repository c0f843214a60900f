"""Private files on the data disk: folders only their owner may enter, files written
atomically with mode 0600, and the ``fsync`` of a folder that makes a rename last.

What the group says is private: the journal, the records and the reports all go
through these.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from assistant.errors import JournalError


def private_dir(path: Path) -> None:
    """Create ``path`` (and its parents) with mode 0700, or narrow it to 0700.

    Raises :class:`JournalError` when that is not possible.
    """
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.stat().st_mode & 0o077:
            path.chmod(0o700)
    except OSError as exc:
        raise JournalError(f"cannot use the data directory {path}: {exc.strerror}") from exc


def write_all(fd: int, data: bytes) -> None:
    """Write every byte: a nearly full disk can take part of a write and refuse the rest."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:  # pragma: no cover - a regular file never does this
            raise OSError(errno.EIO, "the write made no progress")
        view = view[written:]


def write_private(path: Path, data: bytes) -> None:
    """Write a file atomically with mode 0600: a crash leaves the old file or the new one.

    A failed write removes its temporary file, so it does not keep the space it took. The
    temporary file is always made anew: a leftover, or a link someone planted under its
    name, is removed first and never written through.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # read-only: nothing was left there either
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries to disk, so a file created, renamed or removed in it stays so.

    Raises OSError.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
