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
kernel) can remount the data disk read-only between two events.

What the group says is private: the directories are 0700 and the files 0600. A torn
line is reported by its event name and size only, never by its content.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.core.record import SessionRecord
from assistant.errors import JournalError
from assistant.storage.files import fsync_dir, private_dir, write_all, write_private

log = logging.getLogger(__name__)

JOURNAL_VERSION = 1

# Errors of a data disk that may come back by itself (space freed, remounted, card
# reseated): the journal waits for it instead of giving up.
_PASSING = frozenset({errno.ENOSPC, errno.EROFS, errno.EIO, errno.EDQUOT})
_EVENT_NAME = re.compile(rb'"event":"([a-z_]{1,30})"')


@dataclass
class Pending:
    """An unfinished session found on disk."""

    header: dict[str, Any]
    entries: list[dict[str, Any]]
    torn: bool
    """The last line was cut off (the power went while it was written)."""
    dropped: str = ""
    """What was left out because it was torn or damaged (for the log; no note text)."""

    @property
    def last_t(self) -> float:
        """Session time of the last journaled event."""
        return float(self.entries[-1]["t"]) if self.entries else float(self.header.get("t", 0.0))

    @property
    def last_wall(self) -> float:
        """Wall-clock time of the last journaled event."""
        return float(self.entries[-1]["wall"]) if self.entries else float(self.header["wall"])


def _line(item: dict[str, Any]) -> bytes:
    return (json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _describe(fragment: bytes) -> str:
    """What a torn or damaged line was, without its content (it may hold a note)."""
    match = _EVENT_NAME.search(fragment)
    kind = f"a '{match.group(1).decode()}' event" if match else "an event whose name was lost"
    return f"{len(fragment)} bytes of {kind}"


def _strerror(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


class JournalCutAtStart(JournalError):
    """The journal holds no whole line: the power went as its session started."""


class Journal:
    """Journal and records in one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
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
        try:
            self._dirs()
        except JournalError as exc:
            if not _passing(exc):
                raise
            # A full or read-only disk at start-up: sessions are kept in memory until it works.
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

    # --- writing ------------------------------------------------------------------

    def start(self, header: dict[str, Any]) -> str:
        """Begin a new session's journal; returns the session id.

        JournalError when it cannot be written: the session's lines are then kept in
        memory (see :meth:`flush`).
        """
        wall = float(header.get("wall", time.time()))
        base = time.strftime("%Y%m%d-%H%M%S", time.localtime(wall))
        taken = {str(r.get("id")) for r in self._unsaved}
        session_id, n = base, 1
        while session_id in taken or (self.records_dir / f"{session_id}.json").exists():
            n += 1
            session_id = f"{base}-{n}"
        self.session_id = session_id
        self._lines = [_line({"journal": JOURNAL_VERSION, "id": session_id, "wall": wall, **header})]
        self._on_disk = 0
        self._rewrite = True  # a new file, whatever was there
        self._stale = False
        self._sync()
        return session_id

    def reopen(self) -> None:
        """Go on appending to the journal of a resumed session (read by :meth:`pending`)."""

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
            while self._unsaved:
                self._save_record(self._unsaved[0])
                self._unsaved.pop(0)
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
        session_id = record["id"]
        path = self.records_dir / f"{session_id}.json"
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
            write_private(self.path, b"".join(self._lines))
            self._rewrite = False
            self._on_disk = len(self._lines)
            return
        if self._on_disk == len(self._lines):
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            try:
                write_all(fd, b"".join(self._lines[self._on_disk :]))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            self._rewrite = True
            raise
        self._on_disk = len(self._lines)

    def _save_record(self, record: SessionRecord) -> None:
        path = self.records_dir / f"{record['id']}.json"
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
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise JournalError(f"cannot read the journal {self.path}: {exc.strerror}") from exc
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
            except ValueError:
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
        self.session_id = str(parsed[0].get("id"))
        if dropped:
            self._rewrite = True
            try:
                self._write_lines()
            except OSError as exc:
                self._failing = True
                log.warning("the journal %s cannot be repaired now (%s); it is repaired when the disk works again",
                            self.path, _strerror(exc))
        return Pending(header=parsed[0], entries=parsed[1:], torn=torn, dropped=dropped)

    def discard(self) -> None:
        """Delete an unusable journal (after its content was reported)."""
        self._lines, self._on_disk, self._rewrite = [], 0, False
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            # It is replaced when the next session starts and the disk works again.
            log.warning("the unusable journal %s cannot be deleted now: %s", self.path, _strerror(exc))



def _passing(exc: JournalError) -> bool:
    """Whether the error is one a data disk recovers from (full, read-only, I/O)."""
    cause = exc.__cause__
    return isinstance(cause, OSError) and cause.errno in _PASSING
