"""Privacy: names masked in the notes, and kept sessions deleted after a while or on request.

Teachers talk about pupils and colleagues, so the AVG/GDPR applies to what the device
keeps. Three things happen here:

- **Masking.** What the recogniser heard is checked against a list of common Dutch first
  names (``config/names/nl.txt``), the group's own names (``[privacy] participants``)
  and an optional file of further names; every name becomes the mask (``[naam]``). The
  daemon masks a :class:`~assistant.events.Heard` (or ``Captured``) event *before* the
  session sees it, so the journal, the record, the report and the read-back all hold the
  masked text and no recognised name is ever written to disk. The read-back says the mask ("Ik heb
  genoteerd: ik vind dat naam ..."), so the group hears exactly what will be kept and
  can record it again (double press) when a word was masked by mistake.
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

import dataclasses
import json
import logging
import os
import re
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError, JournalError
from assistant.events import Captured, Event, Heard
from assistant.settings import CONFIG_DIR, PrivacySettings

log = logging.getLogger(__name__)

NAMES_FILE = CONFIG_DIR / "names" / "nl.txt"
"""The shipped list of common Dutch first names."""

TUSSENVOEGSELS = frozenset(
    "van de der den het ter ten te t in op aan bij uit onder voor la le du da di del von vom zu".split()
)
"""Little words in Dutch surnames ("de" in "Jan de Vries"): never masked on their own."""

_TOKEN = re.compile(r"\w+")
# Between the words of a multi-word name: spaces, hyphens ("anne-marie") or an apostrophe.
_NAME_GAP = re.compile(r"[\s\-\u2010\u2011'\u2019]+")
_DAY = 24 * 3600
_ID_DATE = re.compile(r"^(\d{8}-\d{6})(?:-\d+)?$")
_RUNNING_JOURNAL = "current.jsonl"


def fold(word: str) -> str:
    """A word as names are compared: lower case, without accents ("Zoë" -> "zoe")."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _tokens(text: str) -> tuple[str, ...]:
    return tuple(fold(t) for t in _TOKEN.findall(text))


# --- names --------------------------------------------------------------------------------


def read_names(path: Path) -> list[str]:
    """The names in a name file: one per line, ``#`` starts a comment.

    Raises ConfigError (naming the file) when it cannot be read.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, None, "name file not found") from None
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read the name file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(path, None, "the name file is not valid UTF-8 text") from None
    names = []
    for line in text.splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(name)
    return names


def participant_patterns(name: str) -> list[tuple[str, ...]]:
    """What to mask for one participant: the whole name and its parts.

    "Jan de Vries" gives "jan de vries", "jan", "de vries" and "vries" (and "jan de
    vries" in any case), never "de" alone; single letters (initials) are not masked on
    their own.
    """
    words = _tokens(name)
    out: set[tuple[str, ...]] = set()
    for start in range(len(words)):
        for end in range(start + 1, len(words) + 1):
            part = words[start:end]
            if part[-1] in TUSSENVOEGSELS or all(w in TUSSENVOEGSELS for w in part):
                continue
            if len(part) == 1 and len(part[0]) < 2:
                continue
            out.add(part)
    if words:
        out.add(words)
    return sorted(out, key=len, reverse=True)


class NameMasker:
    """Replaces names in recognised text by a mask, at word boundaries only."""

    def __init__(self, names: Iterable[Iterable[str] | str], mask: str) -> None:
        """``names``: names as text ("anne-marie") or as folded word sequences."""
        self.mask_text = mask
        self._by_first: dict[str, list[tuple[str, ...]]] = {}
        for name in names:
            words = _tokens(name) if isinstance(name, str) else tuple(name)
            if words and words not in self._by_first.get(words[0], []):
                self._by_first.setdefault(words[0], []).append(words)
        for candidates in self._by_first.values():
            candidates.sort(key=len, reverse=True)  # the longest name wins: "jan willem" over "jan"
        self._names = {name for candidates in self._by_first.values() for name in candidates}
        self._longest = max((len(name) for name in self._names), default=0)

    @property
    def size(self) -> int:
        """How many names (and name parts) are masked."""
        return sum(len(c) for c in self._by_first.values())

    def mask(self, text: str) -> str:
        """``text`` with every name replaced by the mask."""
        text = unicodedata.normalize("NFC", text)  # an accent as a separate mark is part of its word
        found = list(_TOKEN.finditer(text))
        folded = [fold(m.group()) for m in found]
        out: list[str] = []
        position = i = 0
        while i < len(found):
            length = self._match(folded, i, lambda k: text[found[k - 1].end() : found[k].start()])
            if length:
                out.append(text[position : found[i].start()])
                out.append(self.mask_text)
                position = found[i + length - 1].end()
                i += length
            else:
                i += 1
        out.append(text[position:])
        return "".join(out)

    def mask_words(self, words: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The recogniser's per-word list, masked the same way as its text.

        A name of several words becomes one entry, with the lowest confidence of its words.
        """
        tokens = [_tokens(str(word.get("word", ""))) for word in words]
        out: list[dict[str, Any]] = []
        i = 0
        while i < len(words):
            last = -1
            joined: tuple[str, ...] = ()
            for j in range(i, min(i + self._longest, len(words))):
                joined += tokens[j]
                if joined and joined in self._names:
                    last = j
            if last < 0:
                entry = dict(words[i])
                entry["word"] = self.mask(str(entry.get("word", "")))
                out.append(entry)
                i += 1
                continue
            merged = dict(words[i])
            merged["word"] = self.mask_text
            confs = [w.get("conf") for w in words[i : last + 1]]
            numbers = [float(c) for c in confs if isinstance(c, (int, float)) and not isinstance(c, bool)]
            if numbers and len(numbers) == len(confs):
                merged["conf"] = min(numbers)
            if "end" in words[last]:
                merged["end"] = words[last]["end"]
            out.append(merged)
            i = last + 1
        return out

    def event(self, event: Event) -> Event:
        """An event with the recognised text in it masked (other events as they are)."""
        if isinstance(event, Heard):
            text, words = self.mask(event.text), self.mask_words(list(event.words))
            if text == event.text and words == event.words:
                return event
            return dataclasses.replace(event, text=text, words=words)
        if isinstance(event, Captured):
            extra = dict(event.extra)
            if isinstance(extra.get("words"), list):
                extra["words"] = self.mask_words([w for w in extra["words"] if isinstance(w, dict)])
            return dataclasses.replace(event, text=self.mask(event.text), extra=extra)
        return event

    def record(self, record: dict[str, Any]) -> dict[str, Any]:
        """A copy of a session record with the text of every note masked.

        For records kept before masking was switched on: their reports are masked too.
        """
        captures = record.get("captures")
        if not isinstance(captures, dict):
            return record
        masked: dict[str, Any] = {}
        for kind, items in captures.items():
            if not isinstance(items, list):
                masked[kind] = items
                continue
            masked[kind] = []
            for item in items:
                if isinstance(item, dict):
                    item = dict(item)
                    if isinstance(item.get("text"), str):
                        item["text"] = self.mask(item["text"])
                    if isinstance(item.get("words"), list):
                        item["words"] = self.mask_words([w for w in item["words"] if isinstance(w, dict)])
                masked[kind].append(item)
        return {**record, "captures": masked}

    def _match(self, folded: list[str], i: int, gap: Any) -> int:
        """Length (in tokens) of the longest name starting at token ``i``, or 0."""
        for name in self._by_first.get(folded[i], ()):
            n = len(name)
            if tuple(folded[i : i + n]) != name:
                continue
            if all(_NAME_GAP.fullmatch(gap(k)) for k in range(i + 1, i + n)):
                return n
        return 0


def make_masker(settings: PrivacySettings, default_mask: str, names_file: Path = NAMES_FILE) -> NameMasker | None:
    """The masker the settings ask for, or None when masking is switched off.

    A name file that cannot be read is logged as one error and left out: the other
    names are still masked and the session goes on.
    """
    if not settings.mask_names:
        log.info("names in notes are not masked ([privacy] mask_names = false)")
        return None
    names: list[Iterable[str] | str] = []
    files = [names_file] + ([Path(settings.names_file).expanduser()] if settings.names_file else [])
    for path in files:
        try:
            names.extend(read_names(path))
        except ConfigError as exc:
            log.error("%s; names from this file are not masked", exc)
    for participant in settings.participants:
        names.extend(participant_patterns(participant))
    masker = NameMasker(names, settings.mask or default_mask)
    log.debug("names in notes are masked (%d names)", masker.size)
    return masker


# --- kept sessions ------------------------------------------------------------------------


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
    """Every kept session in the data directory (records, reports), oldest id first."""
    groups: dict[str, list[Path]] = {}
    for folder, suffixes in (("records", (".json", ".tmp")), ("reports", (".md", ".json", ".tmp"))):
        path = data_dir / folder
        try:
            entries = [p for p in path.iterdir() if p.is_file() and p.suffix in suffixes]
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise JournalError(f"cannot read {path}: {exc.strerror}") from exc
        for entry in entries:
            groups.setdefault(_session_id(entry), []).append(entry)
    return [_dated(sid, sorted(files)) for sid, files in sorted(groups.items())]


def _dated(session_id: str, files: list[Path]) -> KeptSession:
    record = next((p for p in files if p.parent.name == "records" and p.name == f"{session_id}.json"), None)
    if record is not None:
        try:
            started = json.loads(record.read_text(encoding="utf-8")).get("started_wall")
            if isinstance(started, (int, float)) and not isinstance(started, bool):
                return KeptSession(session_id, float(started), "record", tuple(files))
        except (OSError, ValueError, AttributeError):
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
    """The id of the session that is running or waiting to be resumed, if any."""
    path = data_dir / _RUNNING_JOURNAL
    try:
        with open(path, "rb") as handle:
            first = handle.readline()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise JournalError(f"cannot read the journal {path}: {exc.strerror}") from exc
    try:
        header = json.loads(first)
        return str(header["id"]) if isinstance(header, dict) and header.get("id") else "(unknown id)"
    except ValueError:
        return "(unknown id)"


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
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            pass  # the deletion itself succeeded; only its durability is not forced


def expired(sessions: Iterable[KeptSession], retention_days: int, now: float) -> list[KeptSession]:
    """The sessions that started more than ``retention_days`` before ``now``."""
    limit = now - retention_days * _DAY
    return [s for s in sessions if s.started is not None and s.started < limit]


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
    raise JournalError(f"no session with id {session_id!r}; 'intervisie report --list' shows the kept sessions")


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
    return deleted, failed


def _delete_or_raise(session: KeptSession) -> None:
    failed = delete_session(session)
    if failed:
        raise JournalError(f"could not delete {', '.join(str(p) for p in failed)} of session {session.id}")
