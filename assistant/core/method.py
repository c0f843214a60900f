"""The method (phases, minutes, spoken guidance), checked and built from a parsed TOML file.

A method file holds every text in each language the device speaks; loading picks one
language, so the rest of the program sees plain strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.core.settings import shown
from assistant.errors import ConfigError, check_text

CAPTURE_KINDS = ("leervraag", "kernvraag", "ideas", "actieplan", "takeaways")
"""The built-in notes, which every method may capture without defining them; their
spoken names and headings are the locale's (``[notes]``, ``[report]``)."""
SINGLE_NOTES = ("leervraag", "kernvraag", "actieplan")
"""Built-in notes taken in one go, read back and confirmed; the others are running notes
of one item per utterance (the brainstorm's ideas, each person's closing sentence)."""
NOTE_KEY = re.compile(r"[a-z0-9_]{1,32}")
"""A note's key (a method's own ``[[notes]]``): written in records and report files."""
MAX_NOTE_TEXT = 200
"""A note's spoken name, heading or count holds at most this many characters."""

# Bounds on a method file, so a wrong or hostile one is refused with one line instead of
# being prepared for minutes into gigabytes (10,000 phases took 117 s and 2.3 GB). The
# shipped method has 7 phases, 50 minutes and texts of at most 382 characters.
MAX_PHASES = 20
"""At most this many phases: a method is one meeting."""
MAX_TOTAL_MINUTES = 240
"""All phases together last at most four hours."""
MAX_TEXT_CHARS = 3000
"""A name or guidance text holds at most this many characters (about four minutes of speech)."""
MAX_KEY_CHARS = 64
"""A method id or phase key (written in every record) holds at most this many characters."""


@dataclass(frozen=True)
class Note:
    """What a phase writes down: a built-in note or one of the method's own, in one language."""

    key: str
    """Its key in records ("leervraag", "adviezen")."""
    running: bool
    """A running list, one item per utterance; else one note, read back and kept with a press."""
    name: str = ""
    """How the device names it in a sentence ("de adviezen"); "" for a built-in note (the locale's)."""
    heading: str = ""
    """Its heading in the recap, report and slip ("Adviezen"); "" for a built-in note (the locale's)."""
    count_one: str = ""
    """A running note's count of one in the recap ("één advies"); "" for a built-in note."""
    count_other: str = ""
    """A running note's count of more ("{n} adviezen"); "" for a built-in note."""

    @property
    def builtin(self) -> bool:
        """Whether it is one of :data:`CAPTURE_KINDS` (named by the locale)."""
        return not self.name

    def count(self, n: int) -> str:
        """The recap's count of a method's own running note ("3 adviezen")."""
        return (self.count_one if n == 1 else self.count_other).format(n=n)


BUILTIN_NOTES = {kind: Note(kind, running=kind not in SINGLE_NOTES) for kind in CAPTURE_KINDS}
"""The built-in notes by key."""


@dataclass(frozen=True)
class Phase:
    """One phase of the method, in the chosen language."""

    number: int
    """1-based position in the method."""
    key: str
    """Stable identifier used in records."""
    name: str
    """Spoken name."""
    minutes: float
    """Planned length in minutes."""
    guidance: str
    """What the device says when the phase starts."""
    round: bool = False
    """The phase goes round the table, one person after the other."""
    flexible: bool = True
    """Time balancing may shorten this phase."""
    capture: str = ""
    """What the device writes down in this phase ("" for nothing)."""
    invite_minutes_left: float = 0.0
    """For a single note (leervraag, kernvraag, actieplan, or a method's own): when this
    many minutes are left, the device invites the group to say it, if nobody pressed for
    it earlier. 0: only on a press."""
    note: Note | None = None
    """What :attr:`capture` names: a built-in note or one of the method's own."""

    @property
    def seconds(self) -> float:
        """Planned length in seconds."""
        return self.minutes * 60.0


@dataclass(frozen=True)
class Method:
    """A whole method in one language."""

    id: str
    """Identifier written in records."""
    name: str
    """Spoken name ("intervisie")."""
    phases: tuple[Phase, ...]
    """The phases in order."""
    path: str
    """The file it came from."""

    @property
    def seconds(self) -> float:
        """Planned length of the whole method."""
        return sum(p.seconds for p in self.phases)

    @property
    def notes(self) -> tuple[Note, ...]:
        """What the method writes down, each note once, in the order of its phases."""
        seen: dict[str, Note] = {}
        for phase in self.phases:
            if phase.note is not None:
                seen.setdefault(phase.note.key, phase.note)
        return tuple(seen.values())


def method_from_toml(raw: dict[str, Any], path: Path, language: str) -> Method:
    """Check a parsed method file and build the method in ``language``; raise ConfigError
    naming the key that is wrong."""
    ident = _text(raw, "id", path, "id")
    name = _localised(raw, "name", language, path, "name")
    phases_raw = raw.get("phases")
    if not isinstance(phases_raw, list) or not phases_raw:
        raise ConfigError(path, "phases", "expected at least one [[phases]] table")
    if len(phases_raw) > MAX_PHASES:
        raise ConfigError(
            path, "phases", f"expected at most {MAX_PHASES} [[phases]] tables, got {len(phases_raw):,}; a method is one meeting"
        )
    notes = _notes(raw.get("notes", []), language, path)
    phases = tuple(_phase(item, i + 1, language, path, notes) for i, item in enumerate(phases_raw))
    keys = [p.key for p in phases]
    for key in keys:
        if keys.count(key) > 1:
            raise ConfigError(path, "phases.key", f"every phase needs its own key; {shown(key)} is used twice")
    unknown = set(raw) - {"id", "name", "phases", "notes"}
    if unknown:
        raise ConfigError(path, sorted(unknown)[0], "unknown key; expected id, name, [[notes]] or [[phases]]")
    captured = {p.capture for p in phases}
    for key in notes:
        if key not in captured:
            raise ConfigError(path, "notes.key", f"the note {key!r} is defined, but no phase captures it")
    total = sum(p.minutes for p in phases)
    if total > MAX_TOTAL_MINUTES:
        raise ConfigError(
            path, "phases", f"the phases last {total:g} minutes together; a method may last at most {MAX_TOTAL_MINUTES} minutes"
        )
    return Method(id=ident, name=name, phases=phases, path=str(path))


def _notes(raw: Any, language: str, path: Path) -> dict[str, Note]:
    """The method's own notes (``[[notes]]`` tables) by key."""
    if not isinstance(raw, list):
        raise ConfigError(path, "notes", f"expected [[notes]] tables, got {shown(raw)}")
    if len(raw) > MAX_PHASES:
        raise ConfigError(path, "notes", f"expected at most {MAX_PHASES} [[notes]] tables, got {len(raw):,}")
    notes: dict[str, Note] = {}
    for number, item in enumerate(raw, start=1):
        note = _note(item, number, language, path, notes)
        notes[note.key] = note
    return notes


def _note(item: Any, number: int, language: str, path: Path, notes: dict[str, Note]) -> Note:
    """One ``[[notes]]`` table; ``notes`` are the ones before it."""
    where = f"notes[{number}]"
    if not isinstance(item, dict):
        raise ConfigError(path, where, f"expected a [[notes]] table, got {shown(item)}")
    allowed = {"key", "list", "name", "heading", "count"}
    unknown = set(item) - allowed
    if unknown:
        expected = ", ".join(sorted(allowed))
        raise ConfigError(path, f"{where}.{sorted(unknown)[0]}", f"unknown key; expected one of: {expected}")
    key = item.get("key")
    if not isinstance(key, str) or not NOTE_KEY.fullmatch(key):
        raise ConfigError(path, f"{where}.key", f"expected 1 to 32 lowercase letters, digits or _, got {shown(key)}")
    if key in CAPTURE_KINDS:
        raise ConfigError(path, f"{where}.key", f"{key!r} is a built-in note: capture it without a [[notes]] table")
    if key in notes:
        raise ConfigError(path, f"{where}.key", f"every note needs its own key; {key!r} is used twice")
    running = item.get("list", False)
    if not isinstance(running, bool):
        raise ConfigError(path, f"{where}.list", f"expected true or false, got {shown(running)}")
    name = _localised(item, "name", language, path, f"{where}.name", MAX_NOTE_TEXT)
    heading = _localised(item, "heading", language, path, f"{where}.heading", MAX_NOTE_TEXT)
    one = other = ""
    if running:
        count = item.get("count")
        if not isinstance(count, dict):
            raise ConfigError(
                path, f"{where}.count", f"a list note needs its count per language ({where}.count.{language} = "
                '{ one = "...", other = "{n} ..." }), got ' + shown(count),
            )
        one = _counted(count, language, path, f"{where}.count", "one")
        other = _counted(count, language, path, f"{where}.count", "other")
    elif "count" in item:
        raise ConfigError(path, f"{where}.count", "only a list note (list = true) is counted")
    return Note(key, running, name, heading, one, other)


def _counted(count: dict[str, Any], language: str, path: Path, dotted: str, form: str) -> str:
    table = count.get(language)
    where = f"{dotted}.{language}"
    if not isinstance(table, dict):
        raise ConfigError(path, where, f'expected {{ one = "...", other = "{{n}} ..." }}, got {shown(table)}')
    text = _text(table, form, path, f"{where}.{form}", MAX_NOTE_TEXT)
    try:
        text.format(n=2)
    except (KeyError, IndexError, ValueError):
        raise ConfigError(path, f"{where}.{form}", f"only {{n}} (the number) may be filled in, got {shown(text)}") from None
    return text


def _phase(item: Any, number: int, language: str, path: Path, notes: dict[str, Note]) -> Phase:
    where = f"phases[{number}]"
    if not isinstance(item, dict):
        raise ConfigError(path, where, f"expected a [[phases]] table, got {shown(item)}")
    allowed = {"key", "minutes", "round", "flexible", "capture", "invite_minutes_left", "name", "guidance"}
    unknown = set(item) - allowed
    if unknown:
        raise ConfigError(path, f"{where}.{sorted(unknown)[0]}", f"unknown key; expected one of: {', '.join(sorted(allowed))}")
    minutes = item.get("minutes")
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not 0 < minutes <= 240:
        raise ConfigError(path, f"{where}.minutes", f"expected a number of minutes above 0 and at most 240, got {shown(minutes)}")
    capture = item.get("capture", "")
    known = {**BUILTIN_NOTES, **notes}
    if capture != "" and (not isinstance(capture, str) or capture not in known):
        raise ConfigError(
            path, f"{where}.capture", f"expected one of {', '.join(known)} (or a [[notes]] key), got {shown(capture)}"
        )
    note = known.get(capture) if capture else None
    invite = item.get("invite_minutes_left", 0)
    if isinstance(invite, bool) or not isinstance(invite, (int, float)) or not 0 <= invite < minutes:
        raise ConfigError(
            path,
            f"{where}.invite_minutes_left",
            f"expected minutes from 0 to less than the phase's {minutes:g}, got {shown(invite)}",
        )
    if invite and (note is None or note.running):
        raise ConfigError(
            path, f"{where}.invite_minutes_left", "only phases that capture a single note (not a list) invite to it"
        )
    for flag in ("round", "flexible"):
        if flag in item and not isinstance(item[flag], bool):
            raise ConfigError(path, f"{where}.{flag}", f"expected true or false, got {shown(item[flag])}")
    return Phase(
        number=number,
        key=_text(item, "key", path, f"{where}.key"),
        name=_localised(item, "name", language, path, f"{where}.name"),
        minutes=float(minutes),
        guidance=_localised(item, "guidance", language, path, f"{where}.guidance"),
        round=item.get("round", False),
        flexible=item.get("flexible", True),
        capture=capture,
        invite_minutes_left=float(invite),
        note=note,
    )


def _text(table: dict[str, Any], key: str, path: Path, dotted: str, limit: int = MAX_KEY_CHARS) -> str:
    """A non-empty text of at most ``limit`` characters (after stripping), without control characters."""
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(path, dotted, f"expected non-empty text, got {shown(value)}")
    text = value.strip()
    if len(text) > limit:
        raise ConfigError(path, dotted, f"expected a text of at most {limit:,} characters, got {len(text):,}")
    check_text(value, path, dotted, lines=True)
    return text


def _localised(
    table: dict[str, Any], key: str, language: str, path: Path, dotted: str, limit: int = MAX_TEXT_CHARS
) -> str:
    value = table.get(key)
    if not isinstance(value, dict):
        raise ConfigError(path, dotted, f"expected a text per language ({dotted}.{language} = \"...\"), got {shown(value)}")
    return _text(value, language, path, f"{dotted}.{language}", limit)


def method_problems(raw: dict[str, Any], path: Path, languages: tuple[str, ...]) -> list[ConfigError]:
    """Every problem of a parsed method file that can be told apart, in each language
    (``intervisie method check``); [] when it loads in all of them.

    The loader stops at the first problem; here each note and each phase is also checked
    on its own, so a file with three wrong phases gets three lines.
    """
    found: dict[str, ConfigError] = {}

    def attempt(check: Callable[..., object], *args: Any) -> Any:
        try:
            return check(*args)
        except ConfigError as exc:
            found.setdefault(str(exc), exc)
            return None

    for language in languages:
        notes: dict[str, Note] = {}
        raw_notes = raw.get("notes", [])
        for number, item in enumerate(raw_notes if isinstance(raw_notes, list) else [], start=1):
            note = attempt(_note, item, number, language, path, notes)
            if note is not None:
                notes[note.key] = note
        phases = raw.get("phases")
        for number, item in enumerate(phases[:MAX_PHASES] if isinstance(phases, list) else [], start=1):
            attempt(_phase, item, number, language, path, notes)
        attempt(method_from_toml, raw, path, language)
    return list(found.values())
