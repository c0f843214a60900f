"""The volume level chosen at the table, kept in the data folder across restarts.

``volume.json`` holds one number and nothing else: ``{"volume": 0.7}``. It is written
like every file of the assistant (0600, atomically: a new file made with
``O_EXCL|O_NOFOLLOW`` and renamed over the old one) and read as any file on the disk may
be: damaged, huge, a FIFO, a link, another user's. Such a file is not used; the caller
says so in one line and takes the configured volume.

It holds no session data: retention and ``intervisie forget`` leave it alone.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
from pathlib import Path

from assistant.errors import JournalError
from assistant.storage.files import shown, write_private

VOLUME_FILE = "volume.json"
"""The file's name in the data folder."""
MAX_VOLUME_BYTES = 256
"""A longer file is not one the assistant wrote: it is not read any further."""


class VolumeFileError(JournalError):
    """The kept volume cannot be read or used; the message is one line saying why."""


def volume_path(data_dir: Path) -> Path:
    """Where the level is kept in a data folder."""
    return data_dir / VOLUME_FILE


def read_volume(data_dir: Path) -> float | None:
    """The kept level (a finite number, not yet checked against any bounds); None when
    none was kept. :class:`VolumeFileError` when the file is there but not usable.

    Opened without following a link and without blocking on a FIFO; only a regular file
    of the assistant's own user is read, and at most :data:`MAX_VOLUME_BYTES` of it.
    """
    path = volume_path(data_dir)
    where = f"the kept volume {shown(path)}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise VolumeFileError(f"{where} is a symbolic link: it is not followed") from None
        raise VolumeFileError(f"cannot read {where}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a folder" if stat.S_ISDIR(info.st_mode) else "a special file"
            raise VolumeFileError(f"{where} is {kind}, not a regular file: it is not read")
        if info.st_uid != os.geteuid():
            raise VolumeFileError(f"{where} belongs to another user: it is not used")
        data = os.read(fd, MAX_VOLUME_BYTES + 1)
    except VolumeFileError:
        raise
    except OSError as exc:
        raise VolumeFileError(f"cannot read {where}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_VOLUME_BYTES:
        raise VolumeFileError(f"{where} is damaged (larger than {MAX_VOLUME_BYTES} bytes)")
    try:
        raw = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        raise VolumeFileError(f"{where} is damaged (not valid JSON)") from None
    level = raw.get("volume") if isinstance(raw, dict) and set(raw) == {"volume"} else None
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not math.isfinite(level):
        raise VolumeFileError(f'{where} is damaged (expected {{"volume": a number}})')
    return float(level)


def write_volume(data_dir: Path, level: float) -> None:
    """Keep ``level`` (0600, atomically); OSError when it cannot be written."""
    write_private(volume_path(data_dir), json.dumps({"volume": round(level, 4)}).encode() + b"\n")
