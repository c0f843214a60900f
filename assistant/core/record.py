"""The session record: what is kept of a session, as one typed value.

The session builds it (:meth:`~assistant.core.session.Session.record`), the service adds
the id and the wall-clock times, storage writes it as ``records/<id>.json`` and reads it
back through :func:`validate_record`, and the report is built from it. A record read from
disk may be damaged or written by hand: :func:`validate_record` checks every field that
is there and raises :class:`RecordError` naming the first one that is wrong, so the rest
of the program can trust what it gets.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, TypedDict, cast

from assistant.errors import AssistantError

if TYPE_CHECKING:
    from assistant.core.schedule import PhaseRun


class RecordError(AssistantError, ValueError):
    """A record that is damaged: a field of the wrong type or out of range."""


class WordRecord(TypedDict, total=False):
    """One recognised word with the recogniser's confidence (0 to 1)."""

    word: str
    conf: float
    start: float
    end: float


class CaptureItem(TypedDict, total=False):
    """One thing written down: an attempt at a single note, or one item of a running note."""

    text: str
    accepted: bool
    """Kept (a confirmed single note, or any running-note item) or only an attempt."""
    t: float
    """Session time it was heard."""
    phase: int
    attempt: int
    person: int
    """Whose turn it was in a round (the closing sentences)."""
    first_person: bool
    """Whether a leervraag is about the case-giver's own actions ("ik", "mijn" ...)."""
    words: list[WordRecord]


class PhaseRecord(TypedDict, total=False):
    """One phase: the plan against what happened (seconds)."""

    number: int
    key: str
    name: str
    planned_seconds: float
    adjusted_seconds: float
    """The plan after time balance (shorter when earlier phases overran)."""
    actual_seconds: float
    overtime_seconds: float
    paused_seconds: float
    extended_seconds: float
    """Time added after the phase's time was up (a double press: more time); part of
    ``adjusted_seconds``. Only in a record of a phase that got more time."""
    method_seconds: float
    """The method's own length of a phase fitted into a shorter session (``planned_seconds``
    is the fitted one). Only when the two differ."""


class NoteRecord(TypedDict, total=False):
    """What the session's method writes down, in its order: how the report lists it."""

    key: str
    list: bool
    """A running list (ideas, advice); else a single note read back and kept."""
    heading: str
    """A method's own note: its heading in the session's language (a built-in one has the locale's)."""
    name: str
    """A method's own note: how the device named it ("de adviezen")."""


class SessionRecord(TypedDict, total=False):
    """A kept session. Every field is optional in a record read from disk."""

    id: str
    started_wall: float | None
    """Wall clock (seconds since the epoch) when the session started."""
    ended_wall: float | None
    method: str
    language: str
    participants: int
    schedule_mode: str
    finished: bool
    phases: list[PhaseRecord]
    planned_seconds: float
    actual_seconds: float
    captures: dict[str, list[CaptureItem]]
    notes: list[NoteRecord]
    """The method's notes in order (records from before issue 12 have none: the built-in five)."""
    available_seconds: float
    """The time the group had (``[schedule] total_minutes`` or said at the table), when given."""
    method_seconds: float
    """The method's own length, next to ``planned_seconds`` (the fitted plan), when a time was given."""


_WALL_RANGE = (0.0, 32503680000.0)
"""A wall-clock time from 1970 to the year 3000: anything else is not a date."""
_SECONDS_LIMIT = 1e9
"""Longer than any session (about 30 years): a larger length of time is damage."""

_TEXT_FIELDS = ("id", "method", "language", "schedule_mode")
_PHASE_NUMBERS = (
    "planned_seconds", "adjusted_seconds", "actual_seconds", "overtime_seconds", "paused_seconds",
    "extended_seconds", "method_seconds",
)


def _number(value: object, where: str, low: float = -_SECONDS_LIMIT, high: float = _SECONDS_LIMIT) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(f"{where} is not a number")
    if not math.isfinite(value) or not low <= value <= high:
        raise RecordError(f"{where} is out of range")
    return float(value)


def _whole(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 1_000_000:
        raise RecordError(f"{where} is not a whole number")
    return value


def _item(value: object, where: str) -> CaptureItem:
    if not isinstance(value, dict):
        raise RecordError(f"{where} is not a table")
    if "text" in value and not isinstance(value["text"], str):
        raise RecordError(f"{where}.text is not a text")
    for key in ("accepted", "first_person"):
        if key in value and not isinstance(value[key], bool):
            raise RecordError(f"{where}.{key} is not true or false")
    if "t" in value:
        _number(value["t"], f"{where}.t")
    words = value.get("words")
    if words is not None and not isinstance(words, list):
        raise RecordError(f"{where}.words is not a list")
    return cast(CaptureItem, value)


def _note(value: object, where: str) -> None:
    if not isinstance(value, dict):
        raise RecordError(f"{where} is not a table")
    if not isinstance(value.get("key"), str) or not 0 < len(value["key"]) <= 64:
        raise RecordError(f"{where}.key is not a text of 1 to 64 characters")
    if not isinstance(value.get("list", False), bool):
        raise RecordError(f"{where}.list is not true or false")
    for key in ("heading", "name"):
        if key in value and (not isinstance(value[key], str) or len(value[key]) > 3000):
            raise RecordError(f"{where}.{key} is not a text of at most 3,000 characters")


def validate_record(data: object) -> SessionRecord:
    """``data`` (parsed JSON) as a session record; RecordError naming the first wrong field.

    Fields that are missing are fine (the report shows what is there); a field that is
    there must have its type, and numbers must be finite and in range.
    """
    if not isinstance(data, dict):
        raise RecordError("not a JSON object")
    for key in _TEXT_FIELDS:
        if key in data and not isinstance(data[key], str):
            raise RecordError(f"{key} is not a text")
    for key in ("started_wall", "ended_wall"):
        if data.get(key) is not None:
            _number(data[key], key, *_WALL_RANGE)
    if "finished" in data and not isinstance(data["finished"], bool):
        raise RecordError("finished is not true or false")
    if "participants" in data:
        _whole(data["participants"], "participants")
    for key in ("planned_seconds", "actual_seconds", "available_seconds", "method_seconds"):
        if key in data:
            _number(data[key], key)
    phases = data.get("phases", [])
    if not isinstance(phases, list):
        raise RecordError("phases is not a list")
    for n, phase in enumerate(phases, 1):
        where = f"phases[{n}]"
        if not isinstance(phase, dict):
            raise RecordError(f"{where} is not a table")
        for key in _PHASE_NUMBERS:
            if key in phase:
                _number(phase[key], f"{where}.{key}")
        if "number" in phase and phase["number"] is not None:
            _whole(phase["number"], f"{where}.number")
    notes = data.get("notes", [])
    if not isinstance(notes, list) or len(notes) > 100:
        raise RecordError("notes is not a list of at most 100 notes")
    for n, note in enumerate(notes, 1):
        _note(note, f"notes[{n}]")
    captures = data.get("captures", {})
    if not isinstance(captures, dict):
        raise RecordError("captures is not a table")
    for kind, items in captures.items():
        if not isinstance(items, list):
            raise RecordError(f"captures.{kind} is not a list")
        for n, item in enumerate(items, 1):
            _item(item, f"captures.{kind}[{n}]")
    return cast(SessionRecord, data)


def accepted_text(record: SessionRecord, kind: str) -> str:
    """The newest kept text of a single note (``"actieplan"``) in a record, or ""."""
    for item in reversed(record.get("captures", {}).get(kind, [])):
        if item.get("accepted") and item.get("text"):
            return str(item["text"])
    return ""



def phase_records(runs: list[PhaseRun], now: float | None = None) -> list[PhaseRecord]:
    """Each phase's plan against what happened; ``now`` counts a phase still running up
    to that time (a session closed before it finished)."""
    phases: list[PhaseRecord] = []
    for run in runs:
        active = run.active(now if now is not None else run.started) if run.ended is None else run.active_before
        phases.append(
            {
                "number": run.phase.number,
                "key": run.phase.key,
                "name": run.phase.name,
                "planned_seconds": run.phase.seconds,
                "adjusted_seconds": run.planned,
                "actual_seconds": round(active, 3),
                "overtime_seconds": round(max(0.0, active - run.planned), 3),
                "paused_seconds": round(run.paused_total, 3),
            }
        )
        if run.extended:
            phases[-1]["extended_seconds"] = round(run.extended, 3)
    return phases
