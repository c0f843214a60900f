"""Handing the notes over at the end of a session: the slip for the case-giver.

With ``[printer] enabled`` a finished session is not over at once. With ``when = "ask"``
the session's last words offer the slip, and the first press prints it; with "always"
it prints by itself. Until the slip has printed, the button belongs to the hand-off:

- a press (or "volgende" said) prints, or prints again after a failure;
- a long press goes on without printing (the notes stay kept);
- a double press (or another spoken command) repeats the offer.

Printing runs in a thread of its own, so a printer that takes nothing (out of paper, a
device that never answers) never holds up the daemon's loop: the group can still ask
for the offer again while it waits, and the result comes back as a :class:`Printed`
event. A failure is said once, with what to do; the record and reports are kept, and a
press (or ``intervisie print``) prints the slip again once the printer is back. With
``[privacy] keep_after_print = false`` a good print deletes the session's record and
reports, and the device says so. Nobody pressing for :data:`OFFER_MINUTES` ends the
offer quietly: the next press, perhaps days later, begins a new session.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol

from assistant.command import command
from assistant.core.clock import SessionClock
from assistant.core.events import ButtonDown, Event, Tick, VoiceCommand
from assistant.core.phrases import Phrases
from assistant.core.record import SessionRecord
from assistant.core.settings import Settings
from assistant.hardware.printer import FAULTS, STALL_SECONDS, PrinterError, print_slip
from assistant.service.resume import offer_choice
from assistant.service.store import SessionStore

log = logging.getLogger(__name__)

OFFER_MINUTES = 30.0
"""How long (real minutes) a finished session's slip waits for a press before the offer ends."""


@dataclass(frozen=True)
class Printed(Event):
    """The printing thread is done: ``error`` is "" when the slip printed, else why not
    (one line), with ``fault`` one of :data:`~assistant.hardware.printer.FAULTS`."""

    name: ClassVar[str] = "printed"
    session_id: str = ""
    error: str = ""
    fault: str = ""


class SpeakerLike(Protocol):
    """What the hand-off needs of the speaker."""

    def stop(self) -> None: ...
    def tone(self, kind: str) -> None: ...


class HandOff:
    """The end of a session while a slip is offered, printing, or waiting to be printed again."""

    def __init__(
        self,
        settings: Settings,
        phrases: Phrases,
        store: SessionStore,
        speaker: SpeakerLike,
        say: Callable[[str, str], None],
        post: Callable[[Event], None],
        clock: SessionClock,
    ) -> None:
        self.settings = settings
        self.phrases = phrases
        self.store = store
        self.speaker = speaker
        self._say = say
        self._post = post
        self.clock = clock
        self.record: SessionRecord | None = None
        """The finished session whose slip is offered (or printing); None when none is."""
        self.expires = 0.0
        """Session time at which the offer ends without a press."""
        self.busy = False
        """A slip is being printed (in the printing thread)."""
        self.stall_seconds = STALL_SECONDS
        """A printer that takes no byte for this long is given up."""
        self.forgotten: list[str] = []
        """Ids of sessions deleted after their slip printed (``keep_after_print = false``)."""

    @property
    def mode(self) -> str:
        """"ask", "always", or "" when no printer is set up."""
        printer = self.settings.printer
        return printer.when if printer.enabled else ""

    @property
    def active(self) -> bool:
        """Whether the button belongs to the hand-off now."""
        return self.record is not None

    def finished(self, record: SessionRecord) -> None:
        """A session ended and its record is kept: offer its slip, or print it at once."""
        if not self.mode:
            return
        self.record = record
        self._renew()
        if self.mode == "always":
            self._print()

    def step(self, event: Event) -> bool:
        """Handle ``event`` if it is the hand-off's; True when it was."""
        if isinstance(event, Printed):
            self._printed(event)
            return True
        if self.record is not None and not self.busy and self.clock.now() >= self.expires:
            log.info("nobody asked for the slip of session %s within %g minutes: '%s' prints it",
                     self.record.get("id"), OFFER_MINUTES, command(f"print {self.record.get('id', '')}"))
            self.record = None  # the next press begins a new session
        if self.record is None or isinstance(event, Tick):
            return False  # the idle session sees the tick as well
        if isinstance(event, ButtonDown):
            self.speaker.stop()
            self.speaker.tone("press")
            return True
        choice = offer_choice(event)
        if choice is None:
            return False  # the recogniser's state: the idle session keeps it for the next session
        if isinstance(event, VoiceCommand):
            self.speaker.stop()
            self.speaker.tone("press")
        if self.busy:
            self._say(self.phrases.say("print_busy"), "print_busy")
        elif choice == "go_on":
            self._say(self.phrases.say("printing"), "printing")
            self._print()
        elif choice == "new":
            log.info("the group went on without printing the slip of session %s", self.record.get("id"))
            self.record = None
            self.speaker.tone("hold")
            self._say(self.phrases.say("print_skipped"), "print_skipped")
            self._say(self.phrases.say("new_session"), "new_session")
        else:
            self._renew()
            self._say(self.phrases.say("print_offer"), "print_offer")
        return True

    # --- internals ----------------------------------------------------------------

    def _renew(self) -> None:
        self.expires = self.clock.now() + OFFER_MINUTES * 60 * self.clock.speed

    def _print(self) -> None:
        assert self.record is not None
        self.busy = True
        record, printer = self.record, self.settings.printer
        threading.Thread(
            target=self._job, args=(record, printer.device, printer.width, self.stall_seconds), name="printer",
            daemon=True,
        ).start()

    def _job(self, record: SessionRecord, device: str, width: int, stall: float) -> None:
        """The printing thread: build and print the slip, and post how it went."""
        session_id = str(record.get("id", ""))
        try:
            from assistant.storage.slip import build_slip

            print_slip(build_slip(record), device, width, stall)
        except PrinterError as exc:
            self._post(Printed(session_id, str(exc), exc.fault))
        except Exception as exc:  # noqa: BLE001 - whatever breaks, the group hears it and can try again
            log.exception("the slip of session %s could not be printed", session_id)
            self._post(Printed(session_id, f"cannot print: {exc}", "other"))
        else:
            self._post(Printed(session_id))

    def _printed(self, event: Printed) -> None:
        self.busy = False
        if self.record is None or str(self.record.get("id", "")) != event.session_id:
            return  # not the slip this hand-off waits for
        if event.error:
            log.error("%s; the notes are kept: a press at the end prints the slip again, or '%s'",
                      event.error, command(f"print {event.session_id}"))
            fault = event.fault if event.fault in FAULTS else "other"
            self._renew()
            self._say(self.phrases.say(f"print_failed_{fault}"), "print_failed")
            self._say(self.phrases.say("print_again"), "print_again")
            return
        self.record = None
        if self.settings.privacy.keep_after_print:
            self._say(self.phrases.say("printed"), "printed")
        elif self.store.forget(event.session_id):
            self.forgotten.append(event.session_id)
            self._say(self.phrases.say("printed_forgotten"), "printed")
        else:
            self._say(self.phrases.say("printed_not_forgotten"), "printed")
        self._say(self.phrases.say("new_session"), "new_session")
