"""Small typed messages: events go into the session, effects come out of it.

Events come from the button (or keyboard), the clock and, later, speech recognition.
Effects are what the daemon carries out: speaking, tones, cutting speech off, saving.
Each event has a ``name`` used in the journal, and :func:`event_from_dict` turns a
journal line back into the event.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from assistant.core.record import SessionRecord, WordRecord

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
    """What it is: one of :data:`assistant.core.method.CAPTURE_KINDS`."""
    text: str = ""
    """The recognised text."""
    accepted: bool = True
    """False for an attempt the group chose to record again."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Details such as per-word confidence."""


@dataclass(frozen=True)
class Heard(Event):
    """Speech recognised while the device was taking a note (see :class:`Listen`).

    For a single note (leervraag, kernvraag, actieplan) it is the whole note: everything
    said until the silence, the press or the time limit; empty text when nobody spoke.
    For a running note (ideas, takeaways) it is one utterance.
    """

    name: ClassVar[str] = "heard"
    kind: str = ""
    """The note it was heard for: one of :data:`assistant.core.method.CAPTURE_KINDS`."""
    text: str = ""
    """The recognised words, lower case, separated by spaces; "" when nothing was said."""
    words: list[WordRecord] = field(default_factory=list)
    """Per word: {"word": str, "conf": float} (Vosk's confidence, 0 to 1)."""


@dataclass(frozen=True)
class VoiceCommand(Event):
    """A spoken command, recognised with a restricted grammar outside notes."""

    name: ClassVar[str] = "voice_command"
    command: str = ""
    """One of :data:`VOICE_COMMANDS`, :data:`METHOD_COMMAND` followed by a method's id, or
    :data:`GROUP_COMMAND` followed by a number."""


VOICE_COMMANDS = ("next", "pause", "status", "repeat", "more_time")
"""Spoken commands: next phase (a short press), pause or resume (a long press), the time
left (a double press), say the last announcement again, and more time for a phase whose
time is up (what a double press does then)."""

METHOD_COMMAND = "method:"
"""Before a session starts, "methode <naam>" chooses a method: the command is this prefix
and the method's id (the session itself ignores it; see :mod:`assistant.service.chooser`)."""

GROUP_COMMAND = "group:"
""""We zijn met vijf" says how many the group is: the command is this prefix and the number
(see :mod:`assistant.core.headcount`)."""


VOLUME_COMMANDS = ("louder", "softer")
"""Spoken commands for the volume ("harder", "zachter"): one :class:`VolumeStep` up or
down. The session never sees them (see :mod:`assistant.service.volume`)."""

TOTAL_COMMAND = "total:"
"""Before a session starts, "we hebben een uur" says how long the group has: the command is
this prefix and the minutes ("total:60"; see :mod:`assistant.service.available`)."""


def is_voice_command(name: str) -> bool:
    """Whether ``name`` is a command a :class:`VoiceCommand` can carry."""
    if name.startswith(TOTAL_COMMAND):
        return name[len(TOTAL_COMMAND):].isdigit() and name[len(TOTAL_COMMAND):].isascii()
    if name.startswith(GROUP_COMMAND):
        return name[len(GROUP_COMMAND):].isdigit() and name[len(GROUP_COMMAND):].isascii()
    if name in VOICE_COMMANDS or name in VOLUME_COMMANDS:
        return True
    return name.startswith(METHOD_COMMAND) and len(name) > len(METHOD_COMMAND)


@dataclass(frozen=True)
class ListenerState(Event):
    """Speech recognition became usable or unusable."""

    name: ClassVar[str] = "listener"
    state: str = ""
    """One of :data:`LISTENER_STATES`."""
    detail: str = ""
    """Why, for the log (English)."""


LISTENER_STATES = ("ready", "loading", "no_model", "no_microphone", "off")
"""ready: notes can be taken; loading: the model is still loading; no_model: the model is
missing or broken; no_microphone: there is no usable microphone; off: switched off."""


@dataclass(frozen=True)
class VolumeStep(Event):
    """The volume knob was turned: ``steps`` detents, clockwise positive. Not part of the
    session's state: the daemon's volume handler takes it, and it is never journaled."""

    name: ClassVar[str] = "volume_step"
    steps: int = 0
    """Detents turned since the last event (several in one quick turn)."""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.name: cls
    for cls in (ButtonDown, Press, DoublePress, LongPress, Tick, Resume, Captured, Heard, VoiceCommand, ListenerState)
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
    """Play a short tone at once: "press", "hold", "time_up" or "listen" (speak now)."""

    kind: str


@dataclass(frozen=True)
class StopSpeech(Effect):
    """Cut off what is being said and drop what is queued."""


@dataclass(frozen=True)
class Listen(Effect):
    """Start taking a note: a single note, or a running one of one item per utterance."""

    kind: str
    """What is noted: one of :data:`assistant.core.method.CAPTURE_KINDS`."""
    continuous: bool = False
    """True: one :class:`Heard` per utterance until :class:`StopListening`."""


@dataclass(frozen=True)
class StopListening(Effect):
    """Stop taking a note."""

    finish: bool = True
    """True: what was said so far is delivered as a :class:`Heard`; False: it is dropped."""


@dataclass(frozen=True)
class Finished(Effect):
    """The session ended; ``record`` is what is kept of it."""

    record: SessionRecord
