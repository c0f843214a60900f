"""Unpacking a downloaded model archive: only a single model folder, nothing outside it.

Every entry is checked before anything is written (no absolute paths, no ``..``, no
symbolic links, one top folder); folders get mode 0755 and files 0644.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from assistant.errors import ModelError
from assistant.vosk_models.catalog import CHUNK, ModelInfo, describe_error
from assistant.vosk_models.check import require_space

log = logging.getLogger(__name__)

# Models are public data that the service (another user) must read, whatever the
# umask of the person installing them: these modes are set explicitly.
DIR_MODE = 0o755
"""Mode of the model's folders (and of the models folder)."""
FILE_MODE = 0o644
"""Mode of the model's files."""


def unpack(archive: Path, dest: Path, info: ModelInfo) -> Path:
    """Unpack the archive into the empty folder ``dest``; returns the model folder in it."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"the download of {info.name} is not a zip archive ({exc}): try again") from None
    with zf:
        top, members = _plan(zf, info)
        require_space(dest, sum(member.file_size for member, _ in members), "the unpacked model")
        for member, rel in members:
            path = dest.joinpath(*rel.parts)
            if member.is_dir():
                _make_dirs(dest, rel.parts)
            else:
                _make_dirs(dest, rel.parts[:-1])
                _extract(zf, member, path, info)
    if top != info.name:
        log.debug("the archive's folder is %s; installing it as %s", top, info.name)
    return dest / top


def _plan(zf: zipfile.ZipFile, info: ModelInfo) -> tuple[str, list[tuple[zipfile.ZipInfo, PurePosixPath]]]:
    """The archive's members as safe relative paths, and its single top folder."""
    members = []
    tops = set()
    for member in zf.infolist():
        problem = _unsafe(member)
        if problem:
            raise ModelError(f"refusing the archive of {info.name}: its entry {member.filename!r} {problem}")
        rel = PurePosixPath(member.filename)
        if not rel.parts:
            continue
        if len(rel.parts) == 1 and not member.is_dir():
            raise ModelError(
                f"refusing the archive of {info.name}: the file {member.filename!r} is outside its model folder"
            )
        tops.add(rel.parts[0])
        members.append((member, rel))
    if len(tops) != 1:
        found = ", ".join(sorted(tops)) or "nothing"
        raise ModelError(f"refusing the archive of {info.name}: expected one model folder in it, found {found}")
    return tops.pop(), members


def _unsafe(member: zipfile.ZipInfo) -> str | None:
    """Why an archive entry must not be unpacked, or None."""
    name = member.filename
    if "\x00" in name:
        return "has a NUL character in its name"
    if name.startswith("/"):
        return "is an absolute path"
    if "\\" in name:
        return "has a backslash in its name"
    if ".." in PurePosixPath(name).parts:
        return "points outside the folder (..)"
    if stat.S_ISLNK(member.external_attr >> 16):
        return "is a symbolic link"
    return None


def _make_dirs(root: Path, parts: tuple[str, ...]) -> None:
    current = root
    for part in parts:
        current = current / part
        try:
            current.mkdir(mode=DIR_MODE)
        except FileExistsError:
            if not current.is_dir() or current.is_symlink():
                raise ModelError(f"the archive has both a file and a folder named {part!r}") from None
            continue
        except OSError as exc:
            raise ModelError(f"cannot unpack into {root.parent} ({describe_error(exc)})") from None
        os.chmod(current, DIR_MODE)


def _extract(zf: zipfile.ZipFile, member: zipfile.ZipInfo, path: Path, info: ModelInfo) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        raise ModelError(f"refusing the archive of {info.name}: {member.filename!r} is in it twice") from None
    except OSError as exc:
        raise ModelError(f"cannot unpack into {path.parent} ({describe_error(exc)})") from None
    try:
        with os.fdopen(fd, "wb") as out, zf.open(member) as source:
            os.fchmod(out.fileno(), FILE_MODE)
            shutil.copyfileobj(source, out, CHUNK)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ModelError(f"the archive of {info.name} is damaged at {member.filename!r} ({exc}): try again") from None
    except (NotImplementedError, RuntimeError) as exc:
        raise ModelError(f"cannot unpack {member.filename!r} of {info.name} ({exc})") from None
    except OSError as exc:
        raise ModelError(f"cannot unpack into {path.parent} ({describe_error(exc)})") from None
