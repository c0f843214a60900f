"""Private files on the data disk: folders only their owner may enter, files written
atomically with mode 0600, and the ``fsync`` of a folder that makes a rename last.

What the group says is private: the journal, the records and the reports all go
through these.

A data folder is only used when it is the assistant's own: owned by the user it runs
as, writable by no one else, and not a symbolic link itself (links higher up the path,
``/home`` -> ``/data/home``, are the administrator's business and are followed). Only a
folder the assistant made itself is set to 0700; an existing one is never changed, so a
``data_dir`` pointing at ``/tmp`` or a shared folder is refused instead of locking
everyone else out of it.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
from pathlib import Path

from assistant.errors import JournalError

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_ADVICE = "choose a data_dir only the assistant's user can write to"


class FolderRefused(JournalError):
    """A data folder the assistant will not use: a link, shared with others, or someone else's.

    It does not pass by itself, but an administrator may mend it while the device runs:
    the daemon treats it as a full disk (said once, kept in memory, tried again quietly).
    """

    def __init__(self, message: str, owner: str | None = None) -> None:
        super().__init__(message)
        self.owner = owner
        """The user the folder belongs to, when that is why it was refused."""


def shown(path: Path | str) -> str:
    """A path as one printable line (a name may hold a line break or an escape sequence)."""
    text = str(path)
    return text if text.isprintable() else ascii(text)[1:-1]


def user_name(uid: int) -> str:
    """The name of a user id, or the number when it has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def private_dir(path: Path) -> None:
    """Make ``path`` (and its parents) with mode 0700, or check that the existing one is ours.

    A folder made here is set to 0700 whatever the umask; an existing one is never
    changed. Raises :class:`FolderRefused` for a link, a folder others may write to
    (world- or group-writable, sticky) or one of another user, and :class:`JournalError`
    when the folder cannot be made or opened (its ``__cause__`` is the ``OSError``).
    """
    os.close(open_private_dir(path))


def open_private_dir(path: Path) -> int:
    """:func:`private_dir`, returning an open descriptor of the folder (close it).

    The checks are made on the opened folder (``O_NOFOLLOW``), so a link put in its
    place after a look cannot be followed.
    """
    made = _make(path)
    fd = open_dir(path)
    try:
        info = os.fstat(fd)
        if made and info.st_uid == os.geteuid():
            os.fchmod(fd, 0o700)  # the umask may have taken more, or left too much
            info = os.fstat(fd)
        check_dir(path, info)
    except BaseException:
        os.close(fd)
        raise
    return fd


def checked_dir(path: Path, foreign_ok: bool = False) -> bool:
    """Check an existing folder as :func:`private_dir` does, without making or changing it.

    False when there is no such folder. ``foreign_ok``: another user's folder is
    accepted (root reading the service's sessions with ``sudo intervisie report``).
    """
    try:
        fd = open_dir(path, foreign_ok)
    except JournalError as exc:
        if isinstance(exc.__cause__, FileNotFoundError):
            return False
        raise
    try:
        check_dir(path, os.fstat(fd), foreign_ok)
    finally:
        os.close(fd)
    return True


def open_dir(path: Path, foreign_ok: bool = False) -> int:
    """Open a folder itself, never through a link; FolderRefused for a link or a non-folder.

    A folder that may not be opened is refused as another user's when it is one.
    """
    try:
        return os.open(path, _OPEN_DIR)
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.ELOOP):
            raise FolderRefused(_not_a_folder(path)) from None
        if exc.errno == errno.EACCES:
            try:
                info = os.lstat(path)
            except OSError:
                pass
            else:
                check_dir(path, info, foreign_ok)
        raise JournalError(f"cannot use the data directory {shown(path)}: {exc.strerror}") from exc


def check_dir(path: Path, info: os.stat_result, foreign_ok: bool = False) -> None:
    """Raise FolderRefused when the folder described by ``info`` is not the assistant's own."""
    me = os.geteuid()
    mode = stat.S_IMODE(info.st_mode)
    if mode & (stat.S_ISVTX | stat.S_IWOTH) or (mode & stat.S_IWGRP and not _own_group(info)):
        # No advice to chmod it: a shared folder (/tmp) is meant to be shared.
        raise FolderRefused(
            f"the data folder {shown(path)} is shared (mode {mode:04o}: other users may write to it), so it is "
            f"not used and left as it is: {_ADVICE}"
        )
    if info.st_uid != me and not foreign_ok:
        owner, user = user_name(info.st_uid), user_name(me)
        switch = f"run intervisie as {owner} (sudo -u {owner} intervisie ...) or " if info.st_uid != 0 else ""
        raise FolderRefused(
            f"the data folder {shown(path)} belongs to the user {owner}, not to {user} (the user the assistant "
            f"runs as), so it is not used: {switch}{_ADVICE}",
            owner=owner,
        )


def _own_group(info: os.stat_result) -> bool:
    """Whether the folder's group is its owner's own private group (Debian's user groups).

    Such a group has only that user in it, so a group-writable folder (umask 002) is
    still private.
    """
    try:
        group = grp.getgrgid(info.st_gid)
        owner = pwd.getpwuid(info.st_uid)
    except KeyError:
        return False
    return group.gr_name == owner.pw_name and owner.pw_gid == info.st_gid and not set(group.gr_mem) - {owner.pw_name}


def _make(path: Path) -> bool:
    """Make the folder (and missing parents); True when it was made here."""
    try:
        os.mkdir(path, 0o700)
        return True
    except FileExistsError:
        return False
    except FileNotFoundError:
        pass  # a parent is missing: made below
    except OSError as exc:
        if os.path.lexists(path):
            return False  # a read-only disk says EROFS even for a folder that is there
        raise JournalError(f"cannot use the data directory {shown(path)}: {exc.strerror}") from exc
    try:
        _make_parents(path)
        os.mkdir(path, 0o700)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        raise JournalError(f"cannot use the data directory {shown(path)}: {exc.strerror}") from exc


def _make_parents(path: Path) -> None:
    """Make the missing folders above ``path`` with mode 0755 at most (``mkdir -p``).

    Never writable by others, whatever the umask: someone who could write to a parent
    could swap the data folder for a link of theirs.
    """
    missing = []
    parent = path.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o755)  # the umask can only take more away
        except FileExistsError:
            pass


def _not_a_folder(path: Path) -> str:
    try:
        is_link = stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        is_link = False
    if is_link:
        return f"the data folder {shown(path)} is a symbolic link, so it is not used and nothing is changed through it: {_ADVICE}"
    return f"the data folder {shown(path)} is not a folder, so it is not used: {_ADVICE}"


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
