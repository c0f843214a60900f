"""The journal of the running session and the records of finished ones.

Every event that changed the session is appended as one JSON line to
``<data>/current.jsonl`` and flushed to disk before the daemon acts on the next one,
so after a power cut the session can be rebuilt by replaying the lines. A finished (or
abandoned) session becomes one record, ``<data>/records/<id>.json``, written atomically;
its journal is then deleted, since the record holds everything the method needs.

The data disk can fail while a session runs: full (ENOSPC), read-only (EROFS, for
example after the kernel remounted a damaged SD card), or broken (EIO). The journal
therefore keeps the whole running session in memory as well. When a write fails it
raises :class:`JournalError` once and from then on only keeps lines (and finished
records) in memory; :meth:`Journal.flush` retries, and when the disk works again it
writes the journal anew as a whole, atomically, so what was missed is saved and a
half-written line cannot stay behind in the middle of the file.

The file is opened for each append and closed again, so an administrator (or the
kernel) can remount the data disk read-only between two events. A data folder the
assistant may not write to (a read-only home, a folder of another user) is the same: the
journal never fails to open, its first write fails like a full disk's, and it is retried.

What is read back is hostile until checked: only a regular file is read (never through a
link, never a FIFO, which would block the start), at most :data:`MAX_JOURNAL_BYTES` and
:data:`MAX_JOURNAL_LINES` of it (a larger one is set aside under a name of its own in the
data folder, not read and not deleted), JSON nested too deep is a damaged line, and a
session id that is not ``YYYYmmdd-HHMMSS[-N]`` is replaced by a new one before it is
used as a file name. A record whose file name is blocked (a folder of that name) is kept
under the next free id, so it never holds up the records of later sessions.

What the group says is private: the directories are 0700 and the files 0600. A torn
line is reported by its event name and size only, never by its content.

A clean stop (SIGTERM, SIGINT, the quit key) in the middle of a session writes one last
line, ``{"event": "stopped", ...}`` (:func:`stopped_line`), so the next start can tell a
deliberate stop from a power cut: :attr:`Pending.stopped` is that line when it is the
journal's last. It is no event of the session and is never replayed.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.core.record import SessionRecord
from assistant.errors import JournalError
from assistant.storage.files import FolderRefused, checked_dir, fsync_dir, private_dir, write_all, write_private
from assistant.storage.records import is_session_id

log = logging.getLogger(__name__)

JOURNAL_VERSION = 1

# Errors of one file name rather than of the disk (a folder, or something else that cannot be
# replaced, where the record would go): that record is kept under another id instead. Any other
# error (full, read-only, broken, not writable) is the disk's: everything waits for it.
_BLOCKED_NAME = frozenset({errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP})
MAX_JOURNAL_BYTES = 16_000_000
"""A session writes a few hundred kB (each line an event, a note at most a few kB): a larger
journal is not one the assistant wrote, and reading it whole could take all the memory."""
MAX_JOURNAL_LINES = 100_000
"""Likewise for lines: each becomes a Python object, and is replayed at every start."""
_EVENT_NAME = re.compile(rb'"event":"([a-z_]{1,30})"')
STOPPED = "stopped"
"""The event name of the line a clean stop writes (not a session event: never replayed)."""


def stopped_line(t: float, wall: float) -> dict[str, Any]:
    """The journal line of a deliberate stop at session time ``t`` and wall clock ``wall``."""
    return {"event": STOPPED, "t": t, "wall": wall}


@dataclass
class Pending:
    """An unfinished session found on disk."""

    header: dict[str, Any]
    entries: list[dict[str, Any]]
    torn: bool
    """The last line was cut off (the power went while it was written)."""
    dropped: str = ""
    """What was left out because it was torn or damaged (for the log; no note text)."""
    stopped: dict[str, Any] | None = None
    """The "stopped" line when it is the journal's last: the session was stopped on purpose
    (not by a power cut). Stop lines are not in :attr:`entries`."""

    @property
    def _last(self) -> dict[str, Any]:
        if self.stopped is not None:
            return self.stopped
        return self.entries[-1] if self.entries else self.header

    @property
    def last_t(self) -> float:
        """Session time of the last journaled event (or of the deliberate stop)."""
        if self.stopped is not None:
            # Never before the last event (a stop line written by hand, or by a clock that jumped).
            return max([float(self.stopped["t"]), *(float(e["t"]) for e in self.entries[-1:])])
        return float(self.entries[-1]["t"]) if self.entries else float(self.header.get("t", 0.0))

    @property
    def last_wall(self) -> float:
        """Wall-clock time of the last journaled event (or of the deliberate stop)."""
        return float(self._last["wall"])


def _line(item: dict[str, Any]) -> bytes:
    return (json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _describe(fragment: bytes) -> str:
    """What a torn or damaged line was, without its content (it may hold a note)."""
    match = _EVENT_NAME.search(fragment)
    kind = f"a '{match.group(1).decode()}' event" if match else "an event whose name was lost"
    return f"{len(fragment)} bytes of {kind}"


def blocked_name(exc: BaseException) -> bool:
    """Whether a write failed because of its file name (a folder of that name), not the disk."""
    cause = exc.__cause__ if isinstance(exc, JournalError) and exc.__cause__ is not None else exc
    return isinstance(cause, OSError) and cause.errno in _BLOCKED_NAME


def _shown(text: object) -> str:
    """A value from a file, safe for one log line: escaped and cut short."""
    shown = ascii(text)
    return shown if len(shown) <= 60 else f"{shown[:50]}... ({len(str(text))} characters)"


def _wall_id(wall: object) -> str:
    """``YYYYmmdd-HHMMSS`` of a wall-clock time; of now when it is not a usable time."""
    try:
        return time.strftime("%Y%m%d-%H%M%S", time.localtime(float(wall)))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        return time.strftime("%Y%m%d-%H%M%S")


def _strerror(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


class JournalCutAtStart(JournalError):
    """The journal holds no whole line: the power went as its session started."""


class Journal:
    """Journal and records in one data directory."""

    def __init__(self, data_dir: Path, wall: Callable[[], float] = time.time) -> None:
        self.data_dir = data_dir
        self._wall = wall
        """The wall clock (the daemon's): it dates a journal set aside, which retention reads."""
        self.refused_at_start = False
        """The data folder was refused at start, and the log said why (see ``service.app``)."""
        self.path = data_dir / "current.jsonl"
        self.records_dir = data_dir / "records"
        self._lines: list[bytes] = []
        """The running session's journal, header first (all of it, also what is on disk)."""
        self._on_disk = 0
        """How many of ``_lines`` are known to be on disk."""
        self._rewrite = False
        """The file may not match ``_lines`` (a write failed): write it anew as a whole."""
        self._failing = False
        """A write failed and the disk has not worked since."""
        self._unsaved: list[SessionRecord] = []
        """Records of finished sessions that could not be written yet."""
        self._stale = False
        """The file on disk belongs to a finished session whose record is not saved yet."""
        self.session_id: str | None = None
        """The id of the session whose journal this is (also while it is only in memory)."""
        self._aside_due = False
        """The file on disk could not be read or is too large, and is not ours to overwrite: it
        is set aside (renamed) before a new journal is written, and never deleted."""
        try:
            self._dirs()
        except JournalError as exc:
            # A full or read-only disk, or a folder the assistant may not write to: sessions are
            # kept in memory, the first write fails (the group is told once) and is retried.
            log.debug("the data directory is not usable yet: %s", exc)

    # --- state --------------------------------------------------------------------

    @property
    def behind(self) -> bool:
        """Whether something is kept only in memory (a write failed): :meth:`flush` retries."""
        return self._failing or self._rewrite or bool(self._unsaved) or self._on_disk < len(self._lines)

    @property
    def unsaved_lines(self) -> int:
        """Journal lines of the running session that are only in memory."""
        return len(self._lines) - self._on_disk if not self._rewrite else len(self._lines)

    @property
    def unsaved_records(self) -> list[SessionRecord]:
        """Records of finished sessions that are only in memory (oldest first)."""
        return list(self._unsaved)

    def drop_unsaved(self, session_id: str) -> bool:
        """Forget a finished session's record that is only in memory; True if there was one."""
        kept = [r for r in self._unsaved if r.get("id") != session_id]
        dropped = len(kept) != len(self._unsaved)
        self._unsaved = kept
        return dropped

    # --- writing ------------------------------------------------------------------

    def start(self, header: dict[str, Any]) -> str:
        """Begin a new session's journal; returns the session id.

        JournalError when it cannot be written: the session's lines are then kept in
        memory (see :meth:`flush`).
        """
        wall = float(header.get("wall", time.time()))
        session_id = self._new_id(wall)
        self.session_id = session_id
        self._lines = [_line({"journal": JOURNAL_VERSION, "id": session_id, "wall": wall, **header})]
        self._on_disk = 0
        self._rewrite = True  # a new file, whatever was there
        self._stale = False
        self._sync()
        return session_id

    def reopen(self) -> None:
        """Go on appending to the journal of a resumed session (read by :meth:`pending`)."""

    def _new_id(self, wall: object, avoid: str = "") -> str:
        """A free session id for a session started at ``wall`` (now when that is no time).

        Not one of a kept record, of a record waiting in memory, nor ``avoid``.
        """
        base = _wall_id(wall)
        taken = {str(r.get("id")) for r in self._unsaved} | {avoid}
        session_id, n = base, 1
        while session_id in taken or os.path.lexists(self.records_dir / f"{session_id}.json"):
            n += 1
            session_id = f"{base}-{n}"
        return session_id

    def append(self, entry: dict[str, Any]) -> None:
        """Add one event line and make sure it is on disk.

        JournalError when that fails; the line is kept in memory all the same. While
        the disk is failing, lines are only kept (no write is tried until :meth:`flush`).
        """
        if not self._lines:
            raise JournalError("no session journal is open")
        self._lines.append(_line(entry))
        if self._failing:
            return
        self._sync()

    def flush(self) -> bool:
        """Retry what could not be written; True when everything is on disk.

        Raises JournalError (with the reason) when the disk still fails.
        """
        if not self.behind:
            return True
        self._failing = True  # until this attempt succeeds
        try:
            self._dirs()
            self._save_unsaved()
            if self._lines:
                self._write_lines()
            elif self._stale:
                self._remove_journal()
        except OSError as exc:
            raise JournalError(f"cannot write to the data directory {self.data_dir}: {_strerror(exc)}") from exc
        self._failing = False
        return True

    def finish(self, record: SessionRecord) -> Path:
        """Keep the session's record and drop its journal.

        JournalError when the record cannot be written: it is then kept in memory and
        written by :meth:`flush`; the journal on disk stays until then.
        """
        path = self.records_dir / f"{record['id']}.json"
        self._lines, self._on_disk, self._rewrite = [], 0, False
        try:
            if self._failing:
                raise OSError(errno.EIO, "the data disk is still failing")
            self._dirs()
            self._save_record(record)
        except (OSError, JournalError) as exc:
            # Its journal stays on disk (if it got there) until the record is written.
            self._unsaved.append(record)
            self._stale = self._failing = True
            raise JournalError(f"cannot save the session record {path}: {_strerror(exc)}") from exc
        try:
            self._remove_journal()
        except OSError as exc:
            self._stale = self._failing = True
            raise JournalError(f"cannot remove the finished journal {self.path}: {_strerror(exc)}") from exc
        return path

    def usable(self) -> bool:
        """Whether the data folder and its ``records/`` and ``reports/`` may be used now.

        False while one is refused (a link, shared, another user's; see
        :func:`~assistant.storage.files.check_dir`): nothing is then read, resumed or
        deleted in it. Writes find out by themselves (they fail, and are retried), so
        an administrator who mends the folder while the device runs gets saving back.
        """
        try:
            for folder in (self.data_dir, self.records_dir, self.data_dir / "reports"):
                checked_dir(folder)
        except FolderRefused:
            return False
        except JournalError:
            pass  # cannot be opened (yet): the reads and writes say so themselves
        return True

    def _dirs(self) -> None:
        private_dir(self.data_dir)
        private_dir(self.records_dir)

    def _sync(self) -> None:
        """Write the lines not yet on disk; on failure keep them and raise JournalError."""
        try:
            self._write_lines()
        except OSError as exc:
            self._failing = True
            raise JournalError(f"cannot write the journal {self.path}: {_strerror(exc)}") from exc

    def _write_lines(self) -> None:
        if self._rewrite:
            # The whole journal, atomically: a failed append may have left half a line.
            self._dirs()
            if self._aside_due:
                aside = self._set_aside()
                log.warning("the journal %s that could not be read was set aside as %s", self.path, aside)
            write_private(self.path, b"".join(self._lines))
            self._rewrite = False
            self._on_disk = len(self._lines)
            return
        if self._on_disk == len(self._lines):
            return
        try:
            # Never through a link planted since the journal was written whole.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
            try:
                write_all(fd, b"".join(self._lines[self._on_disk :]))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            self._rewrite = True
            raise
        self._on_disk = len(self._lines)

    def _save_unsaved(self) -> None:
        """Write every record kept in memory; one that fails never holds up the others.

        Raises the first OSError after trying them all.
        """
        first: OSError | None = None
        left = []
        for record in self._unsaved:
            try:
                self._save_record(record)
            except OSError as exc:
                left.append(record)
                first = first or exc
        self._unsaved = left
        if first is not None:
            raise first

    def _save_record(self, record: SessionRecord) -> None:
        """Write ``records/<id>.json``; under the next free id when that name is blocked.

        A record's id becomes a file name: one that is not a session id (it came from a
        file) is replaced, so nothing is written outside the records folder or under a
        name no command would list. The record's ``id`` is changed in place, so its
        report follows it.
        """
        session_id = str(record.get("id"))
        if not is_session_id(session_id):
            new_id = self._new_id(record.get("started_wall"))
            log.warning("the session id %s is not a session id: the session is kept as %s", _shown(session_id), new_id)
            record["id"] = session_id = new_id
        path = self.records_dir / f"{session_id}.json"
        try:
            write_private(path, json.dumps(record, ensure_ascii=False, indent=2).encode())
        except OSError as exc:
            if not blocked_name(exc):
                raise
            new_id = self._new_id(record.get("started_wall"), avoid=session_id)
            log.warning("the record %s cannot be written (%s): the session is kept as %s instead",
                        path, _strerror(exc), new_id)
            record["id"] = new_id
            path = self.records_dir / f"{new_id}.json"
            write_private(path, json.dumps(record, ensure_ascii=False, indent=2).encode())
        log.info("session %s saved to %s", record["id"], path)

    def _remove_journal(self) -> None:
        if self.path.exists():
            self.path.unlink()
            fsync_dir(self.data_dir)
        self._stale = False

    # --- reading ------------------------------------------------------------------

    def pending(self) -> Pending | None:
        """The unfinished session on disk, if any.

        A torn last line (the power went mid-write) is dropped and reported once, with
        what it was; so is a damaged line further up (a bad sector), together with
        everything after it, since events only make sense in order. A missing or
        damaged header makes the journal unusable (JournalError). The journal is
        repaired on disk at once; on a disk that cannot be written it is repaired in
        memory and written when the disk works again.

        A journal that is not a regular file (a link, a FIFO, a folder) is not read; one
        larger than :data:`MAX_JOURNAL_BYTES` or :data:`MAX_JOURNAL_LINES`, or one that
        cannot be read, is set aside (never deleted); each is one JournalError. A session
        id that is not one is replaced by a new id (kept in the header on disk too).
        """
        if not self.usable():
            return None  # said at start (the folder is refused); nothing is read through it
        raw = self._read()
        if raw is None:
            return None
        body = raw.rstrip(b"\0")  # a power cut can leave the file longer than what was written
        lines = body.split(b"\n")
        tail = lines.pop()  # b"" when the last line ended properly
        parsed: list[dict[str, Any]] = []
        kept: list[bytes] = []
        dropped = ""
        for number, line in enumerate(lines, start=1):
            try:
                item = json.loads(line)
                if not isinstance(item, dict):
                    raise ValueError("not an object")
            except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
                if number == 1:
                    raise JournalError(f"the journal {self.path} has no valid header") from None
                rest = len(lines) - number + (1 if tail else 0)
                dropped = f"line {number} is damaged ({_describe(line)}); it and the {rest} lines after it were dropped"
                log.error(
                    "the journal %s is damaged: the session resumes from the %d events before line %d; %s",
                    self.path, len(parsed) - 1, number, dropped,
                )
                break
            parsed.append(item)
            kept.append(line + b"\n")
        torn = bool(tail) or len(body) != len(raw)
        if not lines:
            # Nothing but a first line cut short: the power went as the session started.
            what = f"{len(tail)} bytes" if tail else f"{len(raw)} zero bytes" if raw else "an empty file"
            raise JournalCutAtStart(
                f"the journal {self.path} was cut off as its session started (power cut while writing "
                f"its first line: {what}); nothing of that session was kept"
            )
        if not parsed:
            raise JournalError(f"the journal {self.path} has no valid header")
        if torn and not dropped:
            if tail:
                dropped = f"{_describe(tail)} (line {len(lines) + 1})"
            else:
                dropped = f"{len(raw) - len(body)} zero bytes after the last line"
            log.warning(
                "the journal's last line was cut off (power cut while writing): dropped %s; "
                "the session resumes from the line before it", dropped,
            )
        if not parsed or parsed[0].get("journal") != JOURNAL_VERSION:
            raise JournalError(f"the journal {self.path} has no valid header")
        self._lines, self._on_disk = kept, len(kept)
        self._rewrite = self._stale = False
        renamed = self._checked_id(parsed[0])
        if renamed:
            kept[0] = _line(parsed[0])
        self.session_id = str(parsed[0]["id"])
        if dropped or renamed:
            self._rewrite = True
            try:
                self._write_lines()
            except OSError as exc:
                self._failing = True
                log.warning("the journal %s cannot be repaired now (%s); it is repaired when the disk works again",
                            self.path, _strerror(exc))
        entries = parsed[1:]
        # Only a stop that is the last line counts: the session went on after an earlier one.
        stopped = entries[-1] if entries and entries[-1].get("event") == STOPPED else None
        entries = [e for e in entries if e.get("event") != STOPPED]
        return Pending(header=parsed[0], entries=entries, torn=torn, dropped=dropped, stopped=stopped)

    def _read(self) -> bytes | None:
        """The journal's bytes; None when there is none. JournalError when it is not read.

        Opened without following a link and without blocking on a FIFO; only a regular file
        is read, and at most :data:`MAX_JOURNAL_BYTES` of it.
        """
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise JournalError(f"the journal {self.path} is a symbolic link, not a journal the assistant "
                                   "wrote: it is not followed or read") from None
            self._aside_due = True  # not ours to overwrite: set aside before a new journal is written
            raise JournalError(f"cannot read the journal {self.path}: {_strerror(exc)}") from exc
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                kind = "a FIFO" if stat.S_ISFIFO(mode) else "a folder" if stat.S_ISDIR(mode) else "a special file"
                raise JournalError(f"the journal {self.path} is {kind}, not a regular file: it is not read")
            chunks, size = [], 0
            while size <= MAX_JOURNAL_BYTES:
                chunk = os.read(fd, MAX_JOURNAL_BYTES + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except OSError as exc:
            if isinstance(exc, JournalError):
                raise
            self._aside_due = True
            raise JournalError(f"cannot read the journal {self.path}: {_strerror(exc)}") from exc
        finally:
            os.close(fd)
        raw = b"".join(chunks)
        if size > MAX_JOURNAL_BYTES:
            self._too_large(f"more than {MAX_JOURNAL_BYTES:,} bytes")
        if raw.count(b"\n") > MAX_JOURNAL_LINES:
            self._too_large(f"more than {MAX_JOURNAL_LINES:,} lines")
        return raw

    def _too_large(self, what: str) -> None:
        """Set a journal too large to be the assistant's aside and raise JournalError."""
        self._aside_due = True
        try:
            aside = self._set_aside()
        except OSError as exc:
            raise JournalError(
                f"the journal {self.path} holds {what}, more than a session writes: it is not read, and cannot be "
                f"set aside now ({_strerror(exc)}); it is set aside before a new session is saved"
            ) from None
        raise JournalError(
            f"the journal {self.path} holds {what}, more than a session writes: it is not read, and was set "
            f"aside as {aside} (delete it when nobody needs it)"
        )

    def _set_aside(self) -> Path:
        """Rename the journal on disk to ``journal-set-aside-<now>.jsonl`` in the data folder.

        A journal the assistant cannot use but did not prove empty is never deleted: it may
        hold a session. Raises OSError when the rename fails (the journal then stays).
        """
        base = f"journal-set-aside-{_wall_id(self._wall())}"
        aside, n = self.data_dir / f"{base}.jsonl", 1
        while os.path.lexists(aside):
            n += 1
            aside = self.data_dir / f"{base}-{n}.jsonl"
        if os.path.lexists(self.path):
            os.rename(self.path, aside)
            fsync_dir(self.data_dir)
        self._aside_due = False
        return aside

    def _checked_id(self, header: dict[str, Any]) -> bool:
        """Give the header a new session id when its id is not one; True when it did.

        The id becomes a file name (the record, the report): ``../../x``, ``sub/dir``, an
        empty id or a NUL would write outside the data folder, under a name no command
        lists, or not at all. The session is kept under the new id, with its notes.
        """
        old = header.get("id")
        if isinstance(old, str) and is_session_id(old):
            return False
        header["id"] = self._new_id(header.get("wall"))
        log.warning("the journal %s has %s as its session id, which is not a session id: the session is kept as %s",
                    self.path, _shown(old), header["id"])
        return True

    def discard(self) -> None:
        """Delete an unusable journal (after its content was reported).

        One that could not be read or was too large is not deleted: it stays until it is
        set aside, before the next journal is written.
        """
        self._lines, self._on_disk, self._rewrite = [], 0, False
        if self._aside_due:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            # It is replaced when the next session starts and the disk works again.
            log.warning("the unusable journal %s cannot be deleted now: %s", self.path, _strerror(exc))

