"""Kept session records on disk: the one place that lists, orders, reads and validates them.

A finished session is ``<data>/records/<id>.json`` (written by the journal, see
:meth:`~assistant.storage.journal.Journal.finish`) with its reports in ``<data>/reports/``.
Ids are ``YYYYmmdd-HHMMSS``, with ``-2``, ``-3`` ... for a second session started in the
same second; they are ordered by that number, not by name (by name ``-2`` would come
before the first). The daemon (the previous actieplan, a report still owed), ``intervisie
report`` and retention all read records through here, so they agree on what is newest.
A damaged record is skipped with one log line where a list is read, and is one clear
:class:`~assistant.errors.JournalError` where it was asked for by id.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from datetime import datetime
from pathlib import Path
from typing import Any

from assistant.command import command
from assistant.core.record import RecordError, SessionRecord, validate_record
from assistant.errors import JournalError

log = logging.getLogger(__name__)

_MAX_RECORD_BYTES = 10_000_000
"""A record holds a session's notes as text: a larger file is not a record."""
_SESSION_ID = re.compile(r"\d{8}-\d{6}(?:-[1-9]\d{0,5})?")


def is_session_id(text: str) -> bool:
    """Whether ``text`` is a session id: ``YYYYmmdd-HHMMSS``, or with ``-2``, ``-3`` ... after it.

    Only files named like one are sessions: nothing else in the data folder (a user's own
    files, when ``data_dir`` points at a folder of theirs) is listed, read or deleted.
    """
    return _SESSION_ID.fullmatch(text) is not None


def is_regular_file(path: Path) -> bool:
    """Whether ``path`` is a regular file itself (not a link, a FIFO or a device)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def records_dir(data_dir: Path) -> Path:
    """Where the records are kept."""
    return data_dir / "records"


def reports_dir(data_dir: Path) -> Path:
    """Where the reports are kept."""
    return data_dir / "reports"


def session_order(session_id: str) -> tuple[str, int]:
    """The sort key of a session id: its start second, then its number within that second."""
    parts = session_id.split("-")
    if len(parts) == 3 and parts[2].isdigit():
        return "-".join(parts[:2]), int(parts[2])
    return session_id, 1


def record_paths(data_dir: Path) -> list[Path]:
    """The kept records, oldest first; JournalError when the folder cannot be read."""
    folder = records_dir(data_dir)
    try:
        paths = [p for p in folder.glob("*.json") if is_session_id(p.stem) and is_regular_file(p)]
    except OSError as exc:
        raise JournalError(f"cannot read the records in {folder}: {exc.strerror}") from exc
    return sorted(paths, key=lambda p: session_order(p.stem))


def read_record(path: Path) -> SessionRecord:
    """One record from its file; JournalError when it cannot be read or is damaged.

    Only a regular file is read (a FIFO would never end), and the session id is the file's
    name, whatever the file says.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as exc:
        raise JournalError(f"cannot read the record {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise JournalError(f"the record {path} is not a regular file; it is left alone")
            data = handle.read(_MAX_RECORD_BYTES + 1)
    except OSError as exc:
        raise JournalError(f"cannot read the record {path}: {exc.strerror}") from exc
    if len(data) > _MAX_RECORD_BYTES:
        raise JournalError(f"the record {path} is damaged (larger than {_MAX_RECORD_BYTES:,} bytes)")
    try:
        raw = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        raise JournalError(f"the record {path} is damaged (not valid JSON)") from None
    try:
        record = validate_record(raw)
    except RecordError as exc:
        raise JournalError(f"the record {path} is damaged ({exc})") from None
    record["id"] = path.stem
    return record


def read_records(data_dir: Path, newest: int | None = None) -> list[tuple[Path, SessionRecord]]:
    """The readable records, oldest first (only the ``newest`` few when given).

    A damaged or unreadable record is left out with one warning; a folder that cannot be
    read gives no records.
    """
    try:
        paths = record_paths(data_dir)
    except JournalError as exc:
        log.warning("%s", exc)
        return []
    if newest is not None:
        paths = paths[-newest:] if newest > 0 else []
    out = []
    for path in paths:
        try:
            out.append((path, read_record(path)))
        except JournalError as exc:
            log.warning("%s; it is left out", exc)
    return out


def find_record(data_dir: Path, which: str = "last") -> SessionRecord:
    """The newest record ("last") or the one with this id; JournalError if there is none."""
    paths = record_paths(data_dir)
    if not paths:
        raise JournalError(f"no sessions have been kept yet (in {records_dir(data_dir)})")
    if which == "last":
        return read_record(paths[-1])
    for path in paths:
        if path.stem == which:
            return read_record(path)
    raise JournalError(f"no session with id {which!r}; '{command('report --list')}' shows the kept sessions")


def _has_note(record: SessionRecord, kind: str) -> bool:
    return any(str(item.get("text") or "").strip() for item in record.get("captures", {}).get(kind, []))


def session_list(data_dir: Path) -> list[dict[str, Any]]:
    """A line of facts per kept session, oldest first (a damaged record says so).

    ``phases`` is how many phases the session entered (the one it was closed in too).
    """
    out: list[dict[str, Any]] = []
    for path in record_paths(data_dir):
        try:
            record = read_record(path)
        except JournalError as exc:
            log.warning("%s", exc)
            out.append({"id": path.stem, "damaged": True})
            continue
        wall = record.get("started_wall")
        started = datetime.fromtimestamp(wall).astimezone() if wall is not None else None
        out.append(
            {
                "id": path.stem,
                "started": started.isoformat(timespec="seconds") if started else None,
                "method": record.get("method"),
                "language": record.get("language"),
                "finished": bool(record.get("finished")),
                "phases": len(record.get("phases") or []),
                "leervraag": _has_note(record, "leervraag"),
                "actieplan": _has_note(record, "actieplan"),
            }
        )
    return out
