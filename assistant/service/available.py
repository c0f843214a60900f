"""The time a group has, and more time for a phase: the voice commands around them.

Before a session starts (the idle session, as for the method chooser), with ``[listening]
voice_commands``, "we hebben een uur" (the locale's ``[available_commands]`` table: minutes ->
phrases) sets the time the group has for this meeting: the device says back what it
understood and how long the method then takes (:mod:`assistant.core.fitting`); the start
press fits the method into it and says the clock time the session ends. Without a spoken
time, ``[schedule] total_minutes`` holds (0: the method's own length). After a session
ends, the next one starts from the setting again: each meeting says its own time.

Once a phase's time is up, "vijf minuten erbij" (the locale's ``[more_time_commands]`` table) is a
double press: the session gives the phase ``[schedule] extend_minutes`` more.

The daemon journals the time in the session's header, so a session resumed after a power
cut is fitted the same way (:func:`header_seconds`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from assistant.core.events import TOTAL_COMMAND, Event, VoiceCommand
from assistant.core.fitting import fitted_method
from assistant.core.phrases import Phrases
from assistant.core.session import Session
from assistant.core.settings import ScheduleSettings
from assistant.service.handoff import SpeakerLike

log = logging.getLogger(__name__)

MAX_MINUTES = 600.0
"""The longest time a journal's header may name (as ``[schedule] total_minutes``)."""


def day_seconds(wall: float) -> float:
    """Seconds since local midnight at the wall-clock time ``wall`` (seconds since the epoch)."""
    local = datetime.fromtimestamp(wall).astimezone()
    return local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6


def header_seconds(header: Mapping[str, Any]) -> float:
    """The time the group had, from a journal's header (0 for an old journal or a damaged value)."""
    value = header.get("total_minutes", 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return 0.0
    return float(value) * 60 if 0 <= value <= MAX_MINUTES else 0.0


class AvailableTime:
    """How long the group has for the next session, and the spoken commands about time."""

    def __init__(
        self, phrases: Phrases, settings: ScheduleSettings, speaker: SpeakerLike, say: Callable[[str, str], None]
    ) -> None:
        self.phrases = phrases
        self.settings = settings
        self.speaker = speaker
        self._say = say
        self.spoken: float | None = None
        """Minutes said at the table for the next session; None: the setting holds."""

    @property
    def seconds(self) -> float:
        """The time the next session has (0: the method's own length)."""
        minutes = self.spoken if self.spoken is not None else self.settings.total_minutes
        return minutes * 60

    def reset(self) -> None:
        """A session ended: the next meeting says its own time (or the setting holds)."""
        self.spoken = None

    def voice_commands(self) -> dict[str, str]:
        """The spoken commands about time, as the locale's ``[commands]`` table holds them
        (command -> "phrase|phrase"): more time, and each time in ``[available]``."""
        commands: dict[str, str] = {}
        more = self.phrases.table("more_time_commands")
        extend = self.settings.extend_minutes
        if extend > 0:
            ways = [more["any"]]
            if extend == int(extend) and str(int(extend)) in more:
                ways.insert(0, more[str(int(extend))])
            commands["more_time"] = "|".join(ways)
        for minutes, spoken in self.phrases.table("available_commands").items():
            commands[f"{TOTAL_COMMAND}{minutes}"] = spoken
        return commands

    def step(self, event: Event, session: Session) -> bool:
        """An event while the idle ``session`` waits for the start; True when it said how
        long the group has (the session then fits its method into that at the start)."""
        if not (isinstance(event, VoiceCommand) and event.command.startswith(TOTAL_COMMAND)):
            return False
        wanted = event.command[len(TOTAL_COMMAND):]
        if not (wanted.isascii() and wanted.isdigit()) or not 0 < int(wanted) <= MAX_MINUTES:
            return True  # no time a group has
        self.speaker.stop()
        self.speaker.tone("press")
        self.spoken = float(wanted)
        session.total_seconds = self.seconds
        self._say(self.said_back(session), "available")
        return True

    def said_back(self, session: Session) -> str:
        """What the device says when it understood the time: that time, and what the
        method's length becomes in it."""
        p, own = self.phrases, session.own_method
        fitted = fitted_method(own, session.total_seconds)
        fields = {
            "available": p.minutes(session.total_seconds / 60),
            "method": own.name,
            "duration": p.minutes(fitted.seconds / 60),
            "planned": p.minutes(own.seconds / 60),
        }
        if fitted.seconds > session.total_seconds + 1e-6:
            key = "available_too_long"
        elif fitted is not own:
            key = "available_fitted"
        else:
            key = "available_fits"
        log.info("the group has %g minutes: the %s takes %g minutes", session.total_seconds / 60, own.id,
                 fitted.seconds / 60)
        return p.say(key, **fields)
