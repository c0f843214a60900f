"""The method (phases, minutes, spoken guidance), checked and built from a parsed TOML file.

A method file holds every text in each language the device speaks; loading picks one
language, so the rest of the program sees plain strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.core.settings import shown
from assistant.errors import ConfigError, check_text

CAPTURE_KINDS = ("leervraag", "kernvraag", "ideas", "actieplan", "takeaways")
"""What a phase can have the device write down."""
SINGLE_NOTES = ("leervraag", "kernvraag", "actieplan")
"""Notes taken in one go, read back and confirmed; the others are running notes of one
item per utterance (the brainstorm's ideas, each person's closing sentence)."""

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
    """For a single note (leervraag, kernvraag, actieplan): when this many minutes are
    left, the device invites the group to say it, if nobody pressed for it earlier.
    0: only on a press."""

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
    phases = tuple(_phase(item, i + 1, language, path) for i, item in enumerate(phases_raw))
    keys = [p.key for p in phases]
    for key in keys:
        if keys.count(key) > 1:
            raise ConfigError(path, "phases.key", f"every phase needs its own key; {shown(key)} is used twice")
    unknown = set(raw) - {"id", "name", "phases"}
    if unknown:
        raise ConfigError(path, sorted(unknown)[0], "unknown key; expected id, name or [[phases]]")
    total = sum(p.minutes for p in phases)
    if total > MAX_TOTAL_MINUTES:
        raise ConfigError(
            path, "phases", f"the phases last {total:g} minutes together; a method may last at most {MAX_TOTAL_MINUTES} minutes"
        )
    return Method(id=ident, name=name, phases=phases, path=str(path))


def _phase(item: Any, number: int, language: str, path: Path) -> Phase:
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
    if capture not in ("", *CAPTURE_KINDS):
        raise ConfigError(path, f"{where}.capture", f"expected one of {', '.join(CAPTURE_KINDS)}, got {shown(capture)}")
    invite = item.get("invite_minutes_left", 0)
    if isinstance(invite, bool) or not isinstance(invite, (int, float)) or not 0 <= invite < minutes:
        raise ConfigError(
            path,
            f"{where}.invite_minutes_left",
            f"expected minutes from 0 to less than the phase's {minutes:g}, got {shown(invite)}",
        )
    if invite and capture not in SINGLE_NOTES:
        raise ConfigError(
            path, f"{where}.invite_minutes_left", f"only phases that capture {', '.join(SINGLE_NOTES)} invite to a note"
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


def _localised(table: dict[str, Any], key: str, language: str, path: Path, dotted: str) -> str:
    value = table.get(key)
    if not isinstance(value, dict):
        raise ConfigError(path, dotted, f"expected a text per language ({dotted}.{language} = \"...\"), got {shown(value)}")
    return _text(value, language, path, f"{dotted}.{language}", MAX_TEXT_CHARS)
