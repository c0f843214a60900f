"""Kept sessions deleted after a while or on request.

- **Retention.** Records and reports of sessions that started more than
  ``retention_days`` ago are deleted when the daemon starts and after each session.
  A session's date is its record's ``started_wall``; without a readable record (a
  damaged one, or a report whose record is gone), the date in its id (the local start
  time, ``YYYYmmdd-HHMMSS``); failing that, the newest modification time of its files.
- **Forgetting.** ``intervisie forget ID`` and ``intervisie forget --all`` delete kept
  sessions at once. The session that is still running, or waiting in ``current.jsonl``
  to be resumed after a restart, is never deleted here: the daemon holds its journal
  open and would write its record at the end anyway, so deleting it would only look
  done. It can be forgotten once it has ended.

The logs name sessions by id and date only, never by what was said.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from assistant.command import command
from assistant.errors import JournalError
from assistant.storage.files import fsync_dir
from assistant.storage.records import is_regular_file, is_session_id, read_record, session_order

log = logging.getLogger(__name__)

_DAY = 24 * 3600
_ID_DATE = re.compile(r"^(\d{8}-\d{6})(?:-\d+)?$")
_RUNNING_JOURNAL = "current.jsonl"
_HEADER_BYTES = 64 * 1024
"""Longest first line of a journal read for its session id."""


@dataclass(frozen=True)
class KeptSession:
    """A kept session as files on disk: its record and reports."""

    id: str
    started: float | None
    """When it started (seconds since the epoch), or None when no date was found."""
    dated_by: str
    """Where the date came from: "record", "id" or "file" (modification time)."""
    files: tuple[Path, ...]

    def date(self) -> str:
        """The start as local date and time ("2026-11-29 14:03"), or "date unknown"."""
        if self.started is None:
            return "date unknown"
        return datetime.fromtimestamp(self.started).strftime("%Y-%m-%d %H:%M")

    def kinds(self) -> str:
        """What is kept, for messages: "record, report" (never the contents)."""
        names = {p.parent.name for p in self.files if not p.name.startswith(".")}
        parts = [label for folder, label in (("records", "record"), ("reports", "report")) if folder in names]
        return ", ".join(parts) or "unfinished writes"


def _session_id(path: Path) -> str:
    name = path.name
    if name.startswith("."):
        # Left over by an atomic write that was cut off: ".ID.json.tmp", ".ID.md.x1y2.tmp".
        return name[1:].split(".", 1)[0]
    return path.stem


def kept_sessions(data_dir: Path) -> list[KeptSession]:
    """Every kept session in the data directory (records, reports), oldest first.

    Only regular files named after a session id count (``ID.json``, ``ID.md``, ``ID.html`` and the
    ``.ID.json.tmp`` of a write that was cut off): anything else in the folders is not the
    assistant's, and is never listed or deleted.
    """
    groups: dict[str, list[Path]] = {}
    for folder, suffixes in (("records", (".json", ".tmp")), ("reports", (".md", ".json", ".html", ".tmp"))):
        path = data_dir / folder
        try:
            entries = [
                p for p in path.iterdir()
                if p.suffix in suffixes and is_session_id(_session_id(p)) and is_regular_file(p)
            ]
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise JournalError(f"cannot read {path}: {exc.strerror}") from exc
        for entry in entries:
            groups.setdefault(_session_id(entry), []).append(entry)
    ordered = sorted(groups.items(), key=lambda group: session_order(group[0]))
    return [_dated(sid, sorted(files)) for sid, files in ordered]


def _dated(session_id: str, files: list[Path]) -> KeptSession:
    record = next((p for p in files if p.parent.name == "records" and p.name == f"{session_id}.json"), None)
    if record is not None:
        try:
            started = read_record(record).get("started_wall")
            if started is not None:
                return KeptSession(session_id, float(started), "record", tuple(files))
        except JournalError:
            pass  # a damaged record: dated by its id or its files below
    match = _ID_DATE.match(session_id)
    if match:
        try:
            started = time.mktime(time.strptime(match.group(1), "%Y%m%d-%H%M%S"))
            return KeptSession(session_id, started, "id", tuple(files))
        except (ValueError, OverflowError):
            pass
    try:
        newest = max(p.stat().st_mtime for p in files)
    except OSError:
        return KeptSession(session_id, None, "file", tuple(files))
    return KeptSession(session_id, newest, "file", tuple(files))


def running_session(data_dir: Path) -> str | None:
    """The id of the session that is running or waiting to be resumed, if any.

    Only its first line is read, and only from a regular file: a FIFO, a link or a
    device in the journal's place is not waited for, followed or read without end.
    """
    path = data_dir / _RUNNING_JOURNAL
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "(unknown id)"  # a link in the journal's place: not followed
        raise JournalError(f"cannot read the journal {path}: {exc.strerror}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "(unknown id)"  # a FIFO, a folder or a device in the journal's place
        with os.fdopen(os.dup(fd), "rb") as handle:
            first = handle.readline(_HEADER_BYTES)
    except OSError as exc:
        raise JournalError(f"cannot read the journal {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    try:
        header = json.loads(first)
    except (ValueError, RecursionError):
        return "(unknown id)"
    session_id = header.get("id") if isinstance(header, dict) else None
    return session_id if isinstance(session_id, str) and is_session_id(session_id) else "(unknown id)"


def delete_session(session: KeptSession, sync: bool = True) -> list[Path]:
    """Delete a kept session's files; returns the ones that could not be deleted.

    ``sync``: make the deletion durable now (callers deleting many sessions sync once).
    """
    failed = []
    for path in session.files:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.error("cannot delete %s: %s", path, exc.strerror)
            failed.append(path)
    if sync:
        _sync_folders({p.parent for p in session.files})
    return failed


def _sync_folders(folders: Iterable[Path]) -> None:
    for folder in folders:
        try:
            fsync_dir(folder)
        except OSError:
            pass  # the deletion itself succeeded; only its durability is not forced


def expired(sessions: Iterable[KeptSession], retention_days: int, now: float) -> list[KeptSession]:
    """The sessions that started more than ``retention_days`` before ``now``."""
    limit = now - retention_days * _DAY
    return [s for s in sessions if s.started is not None and s.started < limit]


_SET_ASIDE = re.compile(r"journal-set-aside-(\d{8}-\d{6})(?:-[1-9]\d{0,5})?\.jsonl")
"""A journal the daemon could not read back and renamed rather than delete (see the journal)."""


def set_aside_journals(data_dir: Path) -> list[tuple[Path, float | None]]:
    """The journals set aside in the data folder, with the time each was set aside.

    They may hold a session's notes, so retention and ``forget --all`` treat them as the
    sessions are treated. Only regular files with exactly that name count.
    """
    try:
        names = os.listdir(data_dir)
    except OSError:
        return []
    found: list[tuple[Path, float | None]] = []
    for name in sorted(names):
        match = _SET_ASIDE.fullmatch(name)
        path = data_dir / name
        if match is None or not is_regular_file(path):
            continue
        try:
            when: float | None = time.mktime(time.strptime(match.group(1), "%Y%m%d-%H%M%S"))
        except (ValueError, OverflowError):
            when = None
        found.append((path, when))
    return found


def _delete_set_aside(paths: Iterable[Path]) -> list[Path]:
    """Delete set-aside journals; the ones deleted (a failure is logged)."""
    deleted = []
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.error("cannot delete the set-aside journal %s: %s", path, exc.strerror)
            continue
        deleted.append(path)
    return deleted


def apply_retention(data_dir: Path, retention_days: int, now: float | None = None) -> list[KeptSession]:
    """Delete the sessions older than the retention period; returns those deleted.

    Problems are logged, never raised: the group's session goes on whatever happens.
    """
    now = time.time() if now is None else now
    try:
        old = expired(kept_sessions(data_dir), retention_days, now)
    except JournalError as exc:
        log.error("%s; old sessions were not deleted", exc)
        return []
    deleted = []
    for session in old:
        if delete_session(session, sync=False):
            continue
        deleted.append(session)
        log.info(
            "deleted session %s (started %s, dated by its %s): older than %d days",
            session.id, session.date(), session.dated_by, retention_days,
        )
    _sync_folders({p.parent for s in old for p in s.files})
    limit = now - retention_days * _DAY
    expired_journals = [path for path, when in set_aside_journals(data_dir) if when is not None and when < limit]
    for path in _delete_set_aside(expired_journals):
        log.info("deleted the set-aside journal %s: older than %d days", path.name, retention_days)
    return deleted


def forget(data_dir: Path, session_id: str) -> KeptSession:
    """Delete one kept session now; JournalError when there is no such session (or it runs)."""
    if session_id == running_session(data_dir):
        raise JournalError(
            f"session {session_id} is still running (or will be resumed after a restart) and was not deleted; "
            "forget it when it has ended"
        )
    for session in kept_sessions(data_dir):
        if session.id == session_id:
            _delete_or_raise(session)
            log.info("deleted session %s (started %s) on request", session.id, session.date())
            return session
    raise JournalError(f"no session with id {session_id!r}; '{command('report --list')}' shows the kept sessions")


def forget_all(data_dir: Path) -> tuple[list[KeptSession], list[KeptSession]]:
    """Delete every kept session now (the running one is left alone); (deleted, failed).

    A file that cannot be deleted is logged; the other sessions are deleted all the same.
    """
    sessions = kept_sessions(data_dir)
    deleted, failed = [], []
    for session in sessions:
        if delete_session(session, sync=False):
            failed.append(session)
            continue
        deleted.append(session)
        log.info("deleted session %s (started %s) on request", session.id, session.date())
    _sync_folders({p.parent for s in sessions for p in s.files})
    for path in _delete_set_aside(path for path, _when in set_aside_journals(data_dir)):
        log.info("deleted the set-aside journal %s on request", path.name)
    return deleted, failed


def _delete_or_raise(session: KeptSession) -> None:
    failed = delete_session(session)
    if failed:
        raise JournalError(f"could not delete {', '.join(str(p) for p in failed)} of session {session.id}")
