"""The session report: what the group reads afterwards, in Markdown and JSON.

A report is always built from a session record (see :mod:`assistant.storage.records`), never
kept as the only copy of anything, so it can be rebuilt at any time. When a session
ends the daemon writes ``<data>/reports/<id>.md`` and ``<data>/reports/<id>.json``;
``intervisie report`` rebuilds and prints it.

The report is in the record's language; its headings and labels are the ``[report]``
table of the locale files. Words the recogniser was unsure of are marked ``word(?)``.

The time table measures every phase against one thing, the method's plan: its difference
column is the actual time minus the planned time (negative for a phase that was shortened
or ended early), and every total is the sum of the column above it. (Measured against the
shortened lengths, the phases' overtime and the session's did not add up.)
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from assistant.config import load_method, load_phrases
from assistant.core.method import CAPTURE_KINDS, SINGLE_NOTES, Method
from assistant.core.phrases import Phrases
from assistant.core.record import SessionRecord
from assistant.core.settings import LANGUAGES
from assistant.errors import ConfigError, JournalError
from assistant.storage.files import private_dir, write_private
from assistant.storage.records import reports_dir

log = logging.getLogger(__name__)

RUNNING_NOTES = tuple(kind for kind in CAPTURE_KINDS if kind not in SINGLE_NOTES)
"""Shown as a list of items (the brainstorm's ideas, the closing takeaways)."""

UNSURE_MARK = "(?)"
"""Put after a word the recogniser was unsure of, in the Markdown report."""

_MARKDOWN_SPECIAL = set("\\`*_[]<>#|")
_METHOD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""A method id that may be looked up as a file in config/methods."""
_DASH = "–"


# --- captured items -------------------------------------------------------------------


@dataclass(frozen=True)
class Heading:
    """One of the notes a report shows, in the method's order."""

    key: str
    running: bool
    """Shown as a list of items (ideas, advice); else a single note with its attempts."""
    heading: str


@dataclass(frozen=True)
class Note:
    """One captured item of a record, as the report shows it."""

    text: str
    accepted: bool
    words: tuple[tuple[str, float], ...] = ()
    """The recognised words with their confidence (0 to 1), when the recogniser gave them."""
    attempt: int | None = None
    person: int | None = None
    phase: int | None = None
    t: float | None = None
    first_person: bool | None = None

    @classmethod
    def from_item(cls, item: Any) -> Note | None:
        """The note for a record's item, or None for an item without text."""
        if not isinstance(item, dict) or not str(item.get("text") or "").strip():
            return None
        words: list[tuple[str, float]] = []
        for word in item.get("words") or []:
            if isinstance(word, dict) and isinstance(word.get("conf"), (int, float)):
                words.append((printable(str(word.get("word", ""))), float(word["conf"])))
        return cls(
            text=printable(str(item["text"])).strip(),
            accepted=bool(item.get("accepted", True)),
            words=tuple(words),
            attempt=_int_or_none(item.get("attempt")),
            person=_int_or_none(item.get("person")),
            phase=_int_or_none(item.get("phase")),
            t=float(item["t"]) if isinstance(item.get("t"), (int, float)) else None,
            first_person=item["first_person"] if isinstance(item.get("first_person"), bool) else None,
        )

    def unsure(self, below: float) -> list[str]:
        """The words recognised with a confidence below ``below``, in order."""
        return [word for word, conf in self.words if conf < below]

    def marked(self, below: float, escape: Callable[[str], str] | None = None) -> str:
        """The text for Markdown, each unsure word followed by the mark; ``escape``
        (Markdown's by default) makes each word safe for the page it goes into."""
        # The text is the recogniser's words joined by spaces; walk both side by side,
        # allowing for a word the text lacks (so one mismatch does not shift every mark).
        position = 0
        out: list[str] = []
        for token in self.text.split():
            conf = None
            for k in range(position, min(position + 3, len(self.words))):
                if _same_word(self.words[k][0], token):
                    conf, position = self.words[k][1], k + 1
                    break
            out.append((escape or _escape)(token) + (UNSURE_MARK if conf is not None and conf < below else ""))
        return " ".join(out)

    def data(self, below: float) -> dict[str, Any]:
        """The note in the JSON report."""
        out: dict[str, Any] = {"text": self.text, "accepted": self.accepted}
        for name in ("attempt", "person", "phase", "t", "first_person"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out["low_confidence"] = self.unsure(below)
        return out


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _same_word(a: str, b: str) -> bool:
    strip = ".,;:!?\"'()"
    return a.casefold().strip(strip) == b.casefold().strip(strip)


def printable(text: str) -> str:
    """``text`` with every control character (C0, DEL, C1; tabs and line breaks too) shown
    as ``\\uXXXX``: a damaged or planted record must not steer the terminal of whoever
    reads its report (an escape sequence), nor break a Markdown line."""
    return "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) == "Cc" else c for c in text)


def _escape(text: str) -> str:
    return "".join(f"\\{c}" if c in _MARKDOWN_SPECIAL else c for c in printable(text))


def single_note(items: Any) -> tuple[Note | None, list[Note]]:
    """The note to show for a single-note kind, and the other attempts in order.

    The last accepted attempt is the note; without one, the last attempt (to be shown
    as not confirmed).
    """
    notes = [n for n in (Note.from_item(i) for i in items or []) if n is not None]
    if not notes:
        return None, []
    accepted = [i for i, n in enumerate(notes) if n.accepted]
    chosen = accepted[-1] if accepted else len(notes) - 1
    return notes[chosen], notes[:chosen] + notes[chosen + 1 :]


def running_notes(items: Any) -> list[Note]:
    """The items of a running note (ideas, takeaways) that have text, in order."""
    return [n for n in (Note.from_item(i) for i in items or []) if n is not None]


# --- the report -----------------------------------------------------------------------


def clock(seconds: float) -> str:
    """A length of time as minutes:seconds ("12:05"); minutes go past 60."""
    whole = int(round(max(0.0, seconds)))
    return f"{whole // 60}:{whole % 60:02d}"


def _whole(seconds: float) -> int:
    """Seconds rounded as :func:`clock` shows them."""
    return int(round(max(0.0, seconds))) if seconds >= 0 else -int(round(-seconds))


def signed_clock(seconds: float) -> str:
    """A difference as minutes:seconds with its sign ("+2:00", "-0:30"); a dash when it is
    under half a second either way."""
    whole = _whole(seconds)
    if whole == 0:
        return _DASH
    return f"{'+' if whole > 0 else '-'}{clock(abs(whole))}"


def _local(wall: Any) -> datetime | None:
    if isinstance(wall, bool) or not isinstance(wall, (int, float)):
        return None
    return datetime.fromtimestamp(wall).astimezone()


class Report:
    """The report of one session record, in one language."""

    def __init__(
        self,
        record: SessionRecord,
        phrases: Phrases,
        low_confidence: float = 0.5,
        method: Method | None = None,
    ) -> None:
        self.record = record
        self.phrases = phrases
        self.low_confidence = low_confidence
        self.method = method
        """The record's method in its language, when it could be loaded (for its name
        and the phases an unfinished session did not reach)."""
        self._texts = phrases.table("report")

    def _t(self, key: str, **fields: Any) -> str:
        return self._texts[key].format(**fields)

    # --- content ----------------------------------------------------------------------

    @property
    def method_name(self) -> str:
        """The method's name in the report's language (its id if the method is unknown)."""
        return self.method.name if self.method is not None else printable(str(self.record.get("method", "")))

    def phases(self) -> list[dict[str, Any]]:
        """The phases the session went through, planned against actual (seconds)."""
        out = []
        for phase in self.record.get("phases") or []:
            planned = float(phase.get("planned_seconds", 0.0))
            adjusted = float(phase.get("adjusted_seconds", planned))
            extended = float(phase.get("extended_seconds", 0.0))
            out.append(
                {
                    "number": phase.get("number"),
                    "key": phase.get("key", ""),
                    "name": phase.get("name", ""),
                    "planned_seconds": planned,
                    "adjusted_seconds": adjusted,
                    # Shortened at its start by time balance; more time once its time was up.
                    "shortened": adjusted - extended < planned,
                    "extended_seconds": extended,
                    "actual_seconds": float(phase.get("actual_seconds", 0.0)),
                    "difference_seconds": round(float(phase.get("actual_seconds", 0.0)) - planned, 3),
                    "overtime_seconds": float(phase.get("overtime_seconds", 0.0)),
                    "paused_seconds": float(phase.get("paused_seconds", 0.0)),
                }
            )
        return out

    def phases_not_reached(self) -> list[dict[str, Any]]:
        """Phases of the method an unfinished session never got to."""
        if self.method is None or self.record.get("finished"):
            return []
        reached = {p.get("number") for p in self.record.get("phases") or []}
        return [
            {"number": p.number, "key": p.key, "name": p.name, "planned_seconds": p.seconds}
            for p in self.method.phases
            if p.number not in reached
        ]

    def notes(self) -> list[Heading]:
        """The notes to show, in order: those the record lists (the method's, from issue 12
        on), else those of its method file, else the five built-in ones; then anything
        captured that none of these names, so nothing kept is left out of the report."""
        heads = self._texts
        listed: dict[str, Heading] = {}
        raw = self.record.get("notes")
        if isinstance(raw, list) and raw:
            for item in raw:
                if not isinstance(item, dict):
                    continue
                key = printable(str(item.get("key", "")))
                heading = item.get("heading") or heads.get(key) or key
                listed.setdefault(key, Heading(key, bool(item.get("list")), printable(str(heading))))
        elif self.method is not None:
            for note in self.method.notes:
                listed[note.key] = Heading(note.key, note.running, note.heading or heads.get(note.key, note.key))
        else:
            for kind in CAPTURE_KINDS:
                listed[kind] = Heading(kind, kind not in SINGLE_NOTES, heads[kind])
        captures = self.record.get("captures") or {}
        for key, items in captures.items():
            shown = printable(str(key))
            if shown not in listed:
                single = any(isinstance(i, dict) and "attempt" in i for i in items or [])
                listed[shown] = Heading(shown, not single, shown)
        return list(listed.values())

    def _captured(self, key: str) -> Any:
        captures = self.record.get("captures") or {}
        if key in captures:
            return captures[key]
        # A key shown with its control characters made visible: find the one it came from.
        return next((items for k, items in captures.items() if printable(str(k)) == key), None)

    def single(self, kind: str) -> tuple[Note | None, list[Note]]:
        """A single note (leervraag, kernvraag, actieplan) and its other attempts."""
        return single_note(self._captured(kind))

    def items(self, kind: str) -> list[Note]:
        """The items of a running note (ideas, takeaways)."""
        return running_notes(self._captured(kind))

    # --- JSON -------------------------------------------------------------------------

    def data(self) -> dict[str, Any]:
        """The report as plain data (for the JSON file)."""
        r = self.record
        below = self.low_confidence
        started, ended = _local(r.get("started_wall")), _local(r.get("ended_wall"))
        phases = self.phases()
        out: dict[str, Any] = {
            "id": r.get("id"),
            "started": started.isoformat(timespec="seconds") if started else None,
            "ended": ended.isoformat(timespec="seconds") if ended else None,
            "method": r.get("method"),
            "method_name": self.method_name,
            "language": r.get("language", self.phrases.language),
            "participants": r.get("participants", 0),
            "finished": bool(r.get("finished")),
            "schedule_mode": r.get("schedule_mode"),
            "phases": phases,
            "phases_not_reached": self.phases_not_reached(),
            "planned_seconds": float(r.get("planned_seconds", 0.0)),
            "actual_seconds": float(r.get("actual_seconds", sum(p["actual_seconds"] for p in phases))),
            "difference_seconds": round(sum(p["difference_seconds"] for p in phases), 3),
            "paused_seconds": round(sum(p["paused_seconds"] for p in phases), 3),
            "extended_seconds": round(sum(p["extended_seconds"] for p in phases), 3),
            "available_seconds": r.get("available_seconds"),
            "method_seconds": r.get("method_seconds", r.get("planned_seconds")),
            "low_confidence_below": below,
        }
        for kind in SINGLE_NOTES:
            note, others = self.single(kind)
            out[kind] = None if note is None else {
                **note.data(below),
                "earlier_attempts": [n.data(below) for n in others],
            }
        for kind in RUNNING_NOTES:
            out[kind] = [n.data(below) for n in self.items(kind)]
        # Every note of the session's method in its order, built-in or the method's own.
        out["notes"] = []
        for head in self.notes():
            entry: dict[str, Any] = {"key": head.key, "heading": head.heading, "list": head.running}
            if head.running:
                entry["items"] = [n.data(below) for n in self.items(head.key)]
            else:
                note, others = self.single(head.key)
                entry["note"] = None if note is None else {
                    **note.data(below), "earlier_attempts": [n.data(below) for n in others]
                }
            out["notes"].append(entry)
        return out

    # --- Markdown ---------------------------------------------------------------------

    def markdown(self) -> str:
        """The report as Markdown, for the group to read."""
        r = self.record
        lines = [f"# {_escape(self._t('title', method=self.method_name))}", ""]
        participants = r.get("participants") or 0
        language = str(r.get("language", self.phrases.language))
        lines += [
            f"- **{self._t('date')}:** {self._when()}",
            f"- **{self._t('method')}:** {_escape(self.method_name)}",
            f"- **{self._t('language')}:** {self._texts.get(f'language_{language}', language)}",
            f"- **{self._t('participants')}:** {participants if participants else self._t('not_counted')}",
            "",
            self._t("finished") if r.get("finished") else self._t("unfinished"),
            "",
            f"## {self._t('time')}",
            "",
            *self._time_table(),
        ]
        marked = False
        for head in self.notes():
            lines += ["", f"## {_escape(head.heading)}", ""]
            if head.running:
                body = self._list_lines(self.items(head.key))
            else:
                body = self._single_lines(*self.single(head.key))
            lines += body
            marked = marked or any(UNSURE_MARK in line for line in body)
        if marked:
            percent = f"{self.low_confidence * 100:g}"
            lines += ["", "---", "", f"*{_escape(self._t('unsure', percent=percent))}*"]
        return "\n".join(lines) + "\n"

    def _when(self) -> str:
        started, ended = _local(self.record.get("started_wall")), _local(self.record.get("ended_wall"))
        if started is None:
            return self._t("unknown")
        date = self._t("date_format", day=f"{started.day:02d}", month=f"{started.month:02d}", year=started.year)
        end = ended.strftime("%H:%M") if ended is not None else self._t("unknown")
        return self._t("when", date=date, start=started.strftime("%H:%M"), end=end)

    def _time_table(self) -> list[str]:
        """Each phase's plan, actual time, difference and pause; each total is its column's sum."""
        head = [self._t(k) for k in ("phase", "planned", "actual", "difference", "paused")]
        lines = [f"| {' | '.join(head)} |", "|:---|---:|---:|---:|---:|"]
        phases = self.phases()
        not_reached = self.phases_not_reached()
        # Each cell in whole seconds, and each total the sum of its cells: the columns add up.
        for p in phases:
            planned = self.planned_cell(p)
            cells = [
                f"{p['number']}. {_escape(str(p['name']))}",
                planned,
                clock(p["actual_seconds"]),
                signed_clock(p["difference_seconds"]),
                clock(p["paused_seconds"]) if p["paused_seconds"] >= 0.5 else _DASH,
            ]
            lines.append(f"| {' | '.join(cells)} |")
        for p in not_reached:
            name = f"{p['number']}. {_escape(p['name'])}"
            cells = [name, clock(p["planned_seconds"]), self._t("not_reached"), "", ""]
            lines.append(f"| {' | '.join(cells)} |")
        # The sums of the rows above: the plan of every phase shown, reached or not.
        planned_total = sum(_whole(p["planned_seconds"]) for p in [*phases, *not_reached])
        actual_total = sum(_whole(p["actual_seconds"]) for p in phases)
        difference_total = sum(_whole(p["difference_seconds"]) for p in phases)
        paused_total = sum(_whole(p["paused_seconds"]) for p in phases if p["paused_seconds"] >= 0.5)
        cells = [
            f"**{self._t('total')}**",
            f"**{clock(planned_total)}**",
            f"**{clock(actual_total)}**",
            f"**{signed_clock(difference_total)}**" if difference_total else _DASH,
            f"**{clock(paused_total)}**" if paused_total else _DASH,
        ]
        lines.append(f"| {' | '.join(cells)} |")
        lines += ["", f"*{_escape(self._t('time_note'))}*"]
        fitted = self.fitted_note()
        if fitted:
            lines += ["", f"*{_escape(fitted)}*"]
        return lines

    def planned_cell(self, p: dict[str, Any]) -> str:
        """A phase's plan as the time table shows it: the plan, what time balance shortened
        it to at its start, and the time added once its time was up ("+5:00 erbij")."""
        planned = clock(p["planned_seconds"])
        if p["shortened"]:
            adjusted = p["adjusted_seconds"] - p["extended_seconds"]
            planned = self._t("shortened", planned=planned, adjusted=clock(adjusted))
        if p["extended_seconds"] >= 0.5:
            planned = self._t("extended", planned=planned, extended=signed_clock(p["extended_seconds"]))
        return planned

    def fitted_note(self) -> str:
        """The sentence under the time table of a session fitted into the time the group
        had ("" when it was not): the plan was shortened for it."""
        r = self.record
        available, own, planned = r.get("available_seconds"), r.get("method_seconds"), r.get("planned_seconds")
        if not available or own is None or planned is None or planned >= own:
            return ""
        return self._t("fitted", available=clock(available), planned=clock(planned), method=clock(own))

    def _single_lines(self, note: Note | None, earlier: list[Note]) -> list[str]:
        if note is None:
            return [self._t("nothing")]
        below = self.low_confidence
        lines = [f"> {note.marked(below)}"]
        if not note.accepted:
            lines += ["", f"*({self._t('not_confirmed')})*"]
        if earlier:
            lines += ["", f"{self._t('earlier_attempts')}:", ""]
            for n in earlier:
                label = f"{self._t('attempt', number=n.attempt)}: " if n.attempt is not None else ""
                lines.append(f"- {label}{n.marked(below)}")
        return lines

    def _list_lines(self, notes: list[Note]) -> list[str]:
        if not notes:
            return [self._t("nothing")]
        lines = []
        for n in notes:
            label = f"{self._t('person', number=n.person)}: " if n.person is not None else ""
            lines.append(f"- {label}{n.marked(self.low_confidence)}")
        return lines


def build_report(
    record: SessionRecord,
    low_confidence: float = 0.5,
    phrases: Phrases | None = None,
    method: Method | None = None,
) -> Report:
    """The report of a record, in the record's language.

    ``phrases`` and ``method`` are used when they match the record (the daemon passes
    its own); otherwise they are loaded for the record's language and method.
    """
    language = str(record.get("language") or "nl")
    if language not in LANGUAGES:
        language = "nl"
    if phrases is None or phrases.language != language:
        phrases = load_phrases(language)
        method = None  # the caller's method is in the caller's language, not the record's
    method_id = str(record.get("method") or "")
    if method is None or method.id != method_id:
        method = _find_method(method_id, language)
    return Report(record, phrases, low_confidence, method)


def _find_method(method_id: str, language: str) -> Method | None:
    # The id comes from a record on disk: only a plain name is looked up as a file.
    if _METHOD_ID.fullmatch(method_id) is None:
        return None
    try:
        method = load_method(method_id, language)
    except ConfigError:
        log.debug("method %r not found; the report uses its id", method_id)
        return None
    return method if method.id == method_id else None


# --- files ----------------------------------------------------------------------------


def write_report(
    data_dir: Path,
    record: SessionRecord,
    low_confidence: float = 0.5,
    phrases: Phrases | None = None,
    method: Method | None = None,
) -> tuple[Path, Path]:
    """Write ``reports/<id>.md``, ``reports/<id>.json`` and ``reports/<id>.html``; returns
    the first two's paths.

    The folder is 0700 and the files 0600, each written atomically. Raises
    JournalError when they cannot be written.
    """
    from assistant.storage.html import html_page  # it builds on this module's Report

    report = build_report(record, low_confidence, phrases, method)
    folder = reports_dir(data_dir)
    session_id = str(record["id"])
    md, js = folder / f"{session_id}.md", folder / f"{session_id}.json"
    try:
        private_dir(folder)
        write_private(md, report.markdown().encode())
        write_private(js, (json.dumps(report.data(), ensure_ascii=False, indent=2) + "\n").encode())
        write_private(folder / f"{session_id}.html", html_page(report).encode())
    except (OSError, JournalError) as exc:
        cause = exc.__cause__ if isinstance(exc, JournalError) and isinstance(exc.__cause__, OSError) else exc
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
        raise JournalError(f"cannot write the report in {folder}: {reason}") from cause
    log.info("report of session %s written to %s", session_id, md)
    return md, js
