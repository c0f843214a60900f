"""Small typed messages: events go into the session, effects come out of it.

Events come from the button (or keyboard), the clock and, later, speech recognition.
Effects are what the daemon carries out: speaking, tones, cutting speech off, saving.
Each event has a ``name`` used in the journal, and :func:`event_from_dict` turns a
journal line back into the event.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


# --- events -------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Something that happened; the session decides what it means."""

    name: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        """Fields for the journal, with the event's name under "event"."""
        return {"event": self.name, **asdict(self)}


@dataclass(frozen=True)
class ButtonDown(Event):
    """The button went down: immediate feedback, before the gesture is known."""

    name: ClassVar[str] = "button_down"


@dataclass(frozen=True)
class Press(Event):
    """A short press: start, next person, or next phase."""

    name: ClassVar[str] = "press"


@dataclass(frozen=True)
class DoublePress(Event):
    """Two short presses: say the phase and the time left."""

    name: ClassVar[str] = "double_press"


@dataclass(frozen=True)
class LongPress(Event):
    """The button was held: pause or resume."""

    name: ClassVar[str] = "long_press"


@dataclass(frozen=True)
class Tick(Event):
    """Time passed; the session checks its announcement marks."""

    name: ClassVar[str] = "tick"


@dataclass(frozen=True)
class Resume(Event):
    """The daemon restarted and replayed the journal; say where we are."""

    name: ClassVar[str] = "resume"


@dataclass(frozen=True)
class Captured(Event):
    """Text written down for the current phase (from speech recognition)."""

    name: ClassVar[str] = "captured"
    kind: str = ""
    """What it is: one of :data:`assistant.method.CAPTURE_KINDS`."""
    text: str = ""
    """The recognised text."""
    accepted: bool = True
    """False for an attempt the group chose to record again."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Details such as per-word confidence."""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.name: cls for cls in (ButtonDown, Press, DoublePress, LongPress, Tick, Resume, Captured)
}


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from its journal fields; KeyError/TypeError if they are wrong."""
    fields = {k: v for k, v in data.items() if k not in ("event", "t", "wall")}
    return EVENT_TYPES[data["event"]](**fields)


# --- effects ------------------------------------------------------------------------


@dataclass(frozen=True)
class Effect:
    """Something the daemon must do."""


@dataclass(frozen=True)
class Say(Effect):
    """Speak a text (queued after what is already being said)."""

    text: str
    key: str = ""
    """The phrase it came from, for logs and tests."""


@dataclass(frozen=True)
class Tone(Effect):
    """Play a short tone at once: "press", "hold" or "time_up"."""

    kind: str


@dataclass(frozen=True)
class StopSpeech(Effect):
    """Cut off what is being said and drop what is queued."""


@dataclass(frozen=True)
class Finished(Effect):
    """The session ended; ``record`` is what is kept of it."""

    record: dict[str, Any]
