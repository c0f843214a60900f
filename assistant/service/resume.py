"""Resuming after a power cut or restart: the journal's events replayed into a new session.

The daemon decides with :func:`goes_on` whether the session goes on (the same method and
language, not too long ago, a phase still running) and otherwise keeps it as an unfinished
record (:func:`abandoned_record`). When the wall clock is behind the journal's last event
(:func:`clock_behind`: a Pi without a network boots with fake-hwclock's last saved time), how
long the device was off cannot be known: the session is kept as unfinished, never guessed.

A session that was stopped on purpose (its journal ends with a "stopped" line: the quit key,
SIGTERM, ``systemctl stop``) does not go on by itself: the device offers the group the choice
(:class:`StoppedOffer`), a press goes on and a long press starts anew (:func:`offer_choice`).
The clock stood still from the stop until the choice: neither the time the device was off nor
the wait counts as session time. The offer lapses ``resume_within_minutes`` after the stop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from assistant.core.events import DoublePress, Event, LongPress, Press, VoiceCommand, event_from_dict
from assistant.core.masking import NameMasker
from assistant.core.method import Method
from assistant.core.phrases import Phrases
from assistant.core.record import SessionRecord
from assistant.core.session import COUNTING, FINISHED, Session
from assistant.storage.journal import Pending


def replay(pending: Pending, session: Session, masker: NameMasker | None) -> None:
    """Feed the journal's events into ``session`` at their session times.

    Raises KeyError, TypeError or ValueError for a journal that cannot be replayed (an
    unknown event, a time that is not a number).
    """
    for entry in pending.entries:
        event = event_from_dict(entry)
        if masker is not None:
            event = masker.event(event)  # a journal from before masking was switched on
        t = float(entry["t"])
        if not math.isfinite(t):
            raise ValueError(f"a time of {t}")
        session.handle(event, t)
    if not (math.isfinite(pending.last_wall) and math.isfinite(pending.last_t)):
        raise ValueError("a time that is not a number")


CLOCK_SLACK = 2.0
"""Seconds the wall clock may be behind the journal's last event and still be trusted (a
small step of the time service); more means the clock went back and the time off is unknown."""


def clock_behind(pending: Pending, now: float) -> float:
    """How many seconds the wall clock ``now`` is behind the journal's last event; 0 when it
    is not behind by more than :data:`CLOCK_SLACK`."""
    behind = pending.last_wall - now
    return behind if behind > CLOCK_SLACK else 0.0


def goes_on(
    pending: Pending, session: Session, method: Method, phrases: Phrases, gap: float, within_minutes: float
) -> bool:
    """Whether the replayed session goes on after ``gap`` seconds off."""
    header = pending.header
    same_method = header.get("method") == method.id and header.get("language") == phrases.language
    # Not when it never started, or finished and waited only for the last words; a session
    # still counting the group goes on counting.
    going = session.current is not None or session.status == COUNTING
    return same_method and gap <= within_minutes * 60 and going


def abandoned_record(pending: Pending, session: Session) -> SessionRecord:
    """The record of a session that does not go on: closed where the journal ends."""
    record: SessionRecord = {
        "id": str(pending.header.get("id")),
        "started_wall": pending.header.get("wall"),
        "ended_wall": pending.last_wall,
        **session.record(pending.last_t),
    }
    record["finished"] = session.status == FINISHED
    return record


def method_gone_record(pending: Pending) -> SessionRecord:
    """The record of a session whose method is no longer installed: it cannot be replayed
    (another method's phases would be wrong), so only what the journal's header and its
    times say is kept, as unfinished."""
    header = pending.header
    record: SessionRecord = {
        "id": str(header.get("id")),
        "started_wall": header.get("wall") if isinstance(header.get("wall"), (int, float)) else None,
        "ended_wall": pending.last_wall if math.isfinite(pending.last_wall) else None,
        "method": str(header.get("method")),
        "finished": False,
        "phases": [],
        "captures": {},
    }
    language = header.get("language")
    if isinstance(language, str):
        record["language"] = language
    return record


@dataclass
class StoppedOffer:
    """A session stopped on purpose, replayed and waiting for the group's choice."""

    pending: Pending
    session: Session
    """The replayed session; it goes on only when the group chooses so."""
    expires: float
    """Session time (of the daemon's clock while it waits) at which the offer lapses: the
    stopped session is then kept as unfinished and a press starts a new one."""


def offer_text(phrases: Phrases, session: Session) -> str:
    """What the device says at the start after a deliberate stop: where it stopped, and the choice."""
    run = session.current
    assert run is not None  # an offer is made only for a session with a running phase
    return phrases.say("stopped_offer", number=run.phase.number, name=run.phase.name)


def offer_choice(event: Event) -> str | None:
    """What a gesture means while the device offers to go on: "go_on" (a press, or "next
    phase" said), "new" (a long press), "repeat" (a double press or another spoken command:
    say the offer again) or None (not a gesture)."""
    if isinstance(event, Press) or (isinstance(event, VoiceCommand) and event.command == "next"):
        return "go_on"
    if isinstance(event, LongPress):
        return "new"
    if isinstance(event, (DoublePress, VoiceCommand)):
        # A spoken "pauze" is not taken as "start anew": that choice is the button's only.
        return "repeat"
    return None
