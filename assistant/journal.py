"""The journal of the running session and the records of finished ones.

Every event that changed the session is appended as one JSON line to
``<data>/current.jsonl`` and flushed to disk before the daemon acts on the next one,
so after a power cut the session can be rebuilt by replaying the lines. A finished (or
abandoned) session becomes one record, ``<data>/records/<id>.json``, written atomically;
its journal is then deleted, since the record holds everything the method needs.

What the group says is private: the directories are 0700 and the files 0600.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import JournalError

log = logging.getLogger(__name__)

JOURNAL_VERSION = 1


@dataclass
class Pending:
    """An unfinished session found on disk."""

    header: dict[str, Any]
    entries: list[dict[str, Any]]
    torn: bool
    """The last line was cut off (the power went while it was written)."""

    @property
    def last_t(self) -> float:
        """Session time of the last journaled event."""
        return float(self.entries[-1]["t"]) if self.entries else float(self.header.get("t", 0.0))

    @property
    def last_wall(self) -> float:
        """Wall-clock time of the last journaled event."""
        return float(self.entries[-1]["wall"]) if self.entries else float(self.header["wall"])


def _private_dir(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.stat().st_mode & 0o077:
            path.chmod(0o700)
    except OSError as exc:
        raise JournalError(f"cannot use the data directory {path}: {exc.strerror}") from exc


def _write_private(path: Path, data: bytes) -> None:
    """Write a file atomically with mode 0600: a crash leaves the old file or the new one."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """Journal and records in one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / "current.jsonl"
        self.records_dir = data_dir / "records"
        self._fd: int | None = None
        _private_dir(self.data_dir)
        _private_dir(self.records_dir)

    # --- writing ------------------------------------------------------------------

    def start(self, header: dict[str, Any]) -> str:
        """Begin a new session's journal; returns the session id."""
        self.close()
        wall = float(header.get("wall", time.time()))
        base = time.strftime("%Y%m%d-%H%M%S", time.localtime(wall))
        session_id, n = base, 1
        while (self.records_dir / f"{session_id}.json").exists():
            n += 1
            session_id = f"{base}-{n}"
        line = {"journal": JOURNAL_VERSION, "id": session_id, "wall": wall, **header}
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
            self._write(line)
            _fsync_dir(self.data_dir)
        except OSError as exc:
            raise JournalError(f"cannot write the journal {self.path}: {exc.strerror}") from exc
        return session_id

    def reopen(self) -> None:
        """Go on appending to the journal of a resumed session."""
        self.close()
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise JournalError(f"cannot write the journal {self.path}: {exc.strerror}") from exc

    def append(self, entry: dict[str, Any]) -> None:
        """Add one event line and make sure it is on disk."""
        if self._fd is None:
            raise JournalError("no session journal is open")
        try:
            self._write(entry)
        except OSError as exc:
            raise JournalError(f"cannot write the journal {self.path}: {exc.strerror}") from exc

    def _write(self, entry: dict[str, Any]) -> None:
        assert self._fd is not None
        data = (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        os.write(self._fd, data)
        os.fsync(self._fd)

    def finish(self, record: dict[str, Any]) -> Path:
        """Keep the session's record and drop its journal."""
        session_id = record["id"]
        path = self.records_dir / f"{session_id}.json"
        try:
            _write_private(path, json.dumps(record, ensure_ascii=False, indent=2).encode())
            self.close()
            self.path.unlink(missing_ok=True)
            _fsync_dir(self.data_dir)
        except OSError as exc:
            raise JournalError(f"cannot save the session record {path}: {exc.strerror}") from exc
        log.info("session %s saved to %s", session_id, path)
        return path

    def close(self) -> None:
        """Close the journal file (it stays on disk)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # --- reading ------------------------------------------------------------------

    def pending(self) -> Pending | None:
        """The unfinished session on disk, if any.

        A torn last line (the power went mid-write) is dropped and reported; a damaged
        line elsewhere, or a missing header, makes the journal unusable.
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise JournalError(f"cannot read the journal {self.path}: {exc.strerror}") from exc
        lines = raw.split(b"\n")
        torn = False
        if lines and lines[-1] == b"":
            lines.pop()
        elif lines:
            torn = True  # no newline at the end: the last write did not complete
        parsed: list[dict[str, Any]] = []
        for number, line in enumerate(lines, start=1):
            try:
                item = json.loads(line)
                if not isinstance(item, dict):
                    raise ValueError("not an object")
            except ValueError:
                if number == len(lines):
                    torn = True
                    break
                raise JournalError(f"the journal {self.path} is damaged at line {number}") from None
            parsed.append(item)
        if torn:
            log.warning("the journal's last line was cut off (power cut while writing); it was ignored")
            self._rewrite(parsed)
        if not parsed or parsed[0].get("journal") != JOURNAL_VERSION:
            raise JournalError(f"the journal {self.path} has no valid header")
        return Pending(header=parsed[0], entries=parsed[1:], torn=torn)

    def _rewrite(self, items: list[dict[str, Any]]) -> None:
        """Drop a torn tail so that new lines start on a line of their own."""
        data = "".join(json.dumps(i, ensure_ascii=False, separators=(",", ":")) + "\n" for i in items)
        try:
            _write_private(self.path, data.encode())
        except OSError as exc:
            raise JournalError(f"cannot repair the journal {self.path}: {exc.strerror}") from exc

    def discard(self) -> None:
        """Delete an unusable journal (after its content was reported)."""
        self.close()
        self.path.unlink(missing_ok=True)

    def records(self) -> list[Path]:
        """Records of finished sessions, oldest first."""
        return sorted(self.records_dir.glob("*.json"))
