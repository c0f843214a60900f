"""The daemon: one loop that feeds events to the session and carries out its effects.

Button, keyboard and signal handlers only post events to a queue; this loop is the
only place that touches the session, the journal and the speaker's queue. Between
events it sleeps until the next announcement is due, so a phase costs no CPU.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from assistant.clock import SessionClock
from assistant.errors import JournalError
from assistant.events import (
    Effect,
    Event,
    Finished,
    Listen,
    ListenerState,
    Resume,
    Say,
    StopListening,
    StopSpeech,
    Tick,
    Tone,
    event_from_dict,
)
from assistant.journal import Journal, Pending
from assistant.method import Method
from assistant.phrases import Phrases
from assistant.report import write_report
from assistant.session import IDLE, Session
from assistant.settings import Settings

log = logging.getLogger(__name__)

# Longest sleep of the loop when nothing is due (keeps it responsive to odd wake-ups).
_MAX_WAIT = 5.0
# How often a status LED is refreshed while a phase runs.
_LED_PERIOD = 1.0
# Phrases that repeat what the group said: never written to the log.
_PRIVATE_KEYS = frozenset({"note_heard", "previous"})


@dataclass(frozen=True)
class SpeakerBack(Event):
    """The audio output works again after it failed or was missing: what was said
    meanwhile was not heard. Handled by the daemon itself (the session does not change)."""

    name: ClassVar[str] = "speaker_back"


class SpeakerLike(Protocol):
    """What the daemon needs of a speaker (see :mod:`assistant.speech`)."""

    def prepare(self, texts: Any) -> None: ...
    def say(self, text: str) -> None: ...
    def tone(self, kind: str) -> None: ...
    def stop(self) -> None: ...


class NotifierLike(Protocol):
    """What the daemon needs of the systemd notifier (see :mod:`assistant.systemd`)."""

    def ready(self, status: str = "") -> None: ...
    def status(self, text: str) -> None: ...
    def watchdog(self) -> None: ...
    def stopping(self) -> None: ...
    def watchdog_interval(self) -> float | None: ...


class ListenerLike(Protocol):
    """What the daemon needs of the listener (see :mod:`assistant.listening`)."""

    @property
    def state(self) -> str: ...
    def capture(self, kind: str, continuous: bool) -> None: ...
    def stop(self, finish: bool = True) -> None: ...


class LedLike(Protocol):
    """What the daemon needs of a status LED (see :mod:`assistant.led`)."""

    def show(self, fraction_left: float | None, overtime: bool, paused: bool) -> None: ...


class Daemon:
    """Runs sessions one after the other until stopped."""

    def __init__(
        self,
        settings: Settings,
        method: Method,
        phrases: Phrases,
        speaker: SpeakerLike,
        journal: Journal | None,
        clock: SessionClock,
        notifier: NotifierLike | None = None,
        led: LedLike | None = None,
        wall: Callable[[], float] = time.time,
        listener: ListenerLike | None = None,
    ) -> None:
        self.settings = settings
        self.method = method
        self.phrases = phrases
        self.speaker = speaker
        self.journal = journal
        self.clock = clock
        self.notifier = notifier
        self.led = led
        self.listener = listener
        self._listener_state = "off"
        self._wall = wall
        self._events: queue.Queue[Event | None] = queue.Queue()
        self._stopped = threading.Event()
        self.session = self._new_session()
        self.session_id: str | None = None
        self._started_wall: float | None = None
        self._journal_broken = False
        self.finished_records: list[dict[str, Any]] = []
        """Records of the sessions finished by this process (newest last)."""
        self.spoken: list[str] = []
        """Everything said, for the console and tests (bounded)."""
        player = getattr(speaker, "player", None)
        if player is not None and hasattr(player, "on_restored"):
            player.on_restored = lambda: self.post(SpeakerBack())

    # --- public -------------------------------------------------------------------

    def post(self, event: Event) -> None:
        """Hand an event to the loop; safe from any thread."""
        self._events.put(event)

    def stop(self) -> None:
        """Ask the loop to end; safe from any thread and from signal handlers."""
        self._stopped.set()
        self._events.put(None)

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopped.is_set()

    def start_up(self) -> None:
        """Say the first words: resume an unfinished session or greet the group."""
        if not self._resume_pending():
            self._say(self.phrases.say("ready", method=self.method.name), "ready")
            self._say(self.phrases.say("gestures"), "gestures")
        if self.notifier is not None:
            self.notifier.ready("speaking")
        # The rest of the fixed phrases render in the background, after the first words.
        threading.Thread(
            target=self.speaker.prepare, args=(self.session.fixed_phrases(),), name="prepare", daemon=True
        ).start()

    def run(self) -> None:
        """Handle events and due announcements until :meth:`stop`."""
        watchdog = self.notifier.watchdog_interval() if self.notifier is not None else None
        next_ping = time.monotonic()
        while not self._stopped.is_set():
            if watchdog is not None and time.monotonic() >= next_ping:
                assert self.notifier is not None
                self.notifier.watchdog()
                next_ping = time.monotonic() + watchdog / 2
            self._show_led()
            try:
                event = self._events.get(timeout=self._wait_time(next_ping if watchdog else None))
            except queue.Empty:
                event = Tick()
            if event is None:
                continue
            if isinstance(event, SpeakerBack):
                self._speaker_back()
                continue
            self.step(event)
        if self.notifier is not None:
            self.notifier.stopping()

    def step(self, event: Event) -> None:
        """Apply one event now: journal it if it changed the session, then act."""
        now = self.clock.now()
        session = self.session
        was_idle = session.status == IDLE
        before = session.changes
        if isinstance(event, ListenerState):
            self._listener_state = event.state
            log.info("speech recognition: %s%s", event.state, f" ({event.detail})" if event.detail else "")
        effects = session.handle(event, now)
        if session.changes != before and not (was_idle and session.status == IDLE):
            if was_idle:
                self._start_journal(now)
            self._journal({**event.to_dict(), "t": now, "wall": self._wall()})
        for effect in effects:
            self._apply(effect)
        if isinstance(event, Tick) and effects:
            log.debug("announcement at session time %.1f", now)

    # --- internals ----------------------------------------------------------------

    def _speaker_back(self) -> None:
        """The group heard nothing for a while: tell them where they are (not over a note
        being recorded: the device stays silent then). The session does not change."""
        run = self.session.current
        if run is None or run.note is None or not run.note.busy:
            self._say(self.session.status_text(self.clock.now()), "status")

    def _new_session(self) -> Session:
        s = self.settings
        session = Session(
            self.method,
            self.phrases,
            s.announcements,
            s.schedule,
            s.participants,
            first_person_hint=s.listening.first_person_hint,
            previous_actieplan=self._previous_actieplan() if s.listening.read_back_previous else "",
        )
        session.notes.listener = self._listener_state
        return session

    def _previous_actieplan(self) -> str:
        """The accepted actieplan of the newest kept session that has one, or ""."""
        if self.journal is None:
            return ""
        try:
            paths = self.journal.records()
        except OSError:
            return ""
        for path in reversed(paths[-20:]):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                items = record.get("captures", {}).get("actieplan", [])
                accepted = [i["text"] for i in items if i.get("accepted") and i.get("text")]
            except (OSError, ValueError, AttributeError, KeyError, TypeError):
                continue
            if accepted:
                return str(accepted[-1])
        return ""

    def _wait_time(self, next_ping: float | None) -> float:
        waits = [_MAX_WAIT]
        deadline = self.session.next_deadline()
        if deadline is not None:
            waits.append(self.clock.real_seconds(deadline - self.clock.now()))
        if next_ping is not None:
            waits.append(next_ping - time.monotonic())
        if self.led is not None and self.session.current is not None:
            waits.append(_LED_PERIOD)
        return max(0.0, min(waits))

    def _apply(self, effect: Effect) -> None:
        if isinstance(effect, Say):
            self._say(effect.text, effect.key)
        elif isinstance(effect, Tone):
            self.speaker.tone(effect.kind)
        elif isinstance(effect, StopSpeech):
            self.speaker.stop()
        elif isinstance(effect, Listen):
            if self.listener is not None:
                self.listener.capture(effect.kind, effect.continuous)
        elif isinstance(effect, StopListening):
            if self.listener is not None:
                self.listener.stop(effect.finish)
        elif isinstance(effect, Finished):
            self._finish(effect.record)

    def _say(self, text: str, key: str) -> None:
        if key in _PRIVATE_KEYS:
            # What the group said stays in the record, not in the system log.
            log.info("say [%s]: (%d characters of a note, not logged)", key, len(text))
        else:
            log.info("say [%s]: %s", key, text)
        self.spoken.append(text)
        del self.spoken[:-200]
        self.speaker.say(text)
        if self.notifier is not None and key in ("phase", "paused", "unpaused", "finished", "resumed"):
            self.notifier.status(text[:120])

    def _show_led(self) -> None:
        if self.led is None:
            return
        now = self.clock.now()
        run = self.session.current
        overtime = run is not None and run.left(now) < 0
        self.led.show(self.session.fraction_left(now), overtime, self.session.paused)

    # --- journal ------------------------------------------------------------------

    def _header(self, now: float) -> dict[str, Any]:
        return {
            "t": now,
            "wall": self._wall(),
            "speed": self.clock.speed,
            "method": self.method.id,
            "language": self.phrases.language,
            "participants": self.settings.participants,
            # Replaying the journal must see the recogniser as the live session did.
            "listener": self._listener_state,
        }

    def _start_journal(self, now: float) -> None:
        self._started_wall = self._wall()
        if self.journal is None:
            return
        try:
            header = self._header(now)
            self._started_wall = header["wall"]
            self.session_id = self.journal.start(header)
            self._journal_broken = False
        except JournalError as exc:
            self._journal_failed(exc)

    def _journal(self, entry: dict[str, Any]) -> None:
        if self.journal is None or self._journal_broken:
            return
        try:
            self.journal.append(entry)
        except JournalError as exc:
            self._journal_failed(exc)

    def _journal_failed(self, exc: JournalError) -> None:
        # The session goes on without a journal: the group keeps its timekeeper.
        log.error("%s; the session goes on, but cannot be resumed after a restart", exc)
        self._journal_broken = True

    def _finish(self, record: dict[str, Any]) -> None:
        full = {
            "id": self.session_id or time.strftime("%Y%m%d-%H%M%S"),
            "started_wall": self._started_wall,
            "ended_wall": self._wall(),
            **record,
        }
        self.finished_records.append(full)
        del self.finished_records[:-10]
        if self.journal is not None and not self._journal_broken:
            try:
                self.journal.finish(full)
            except JournalError as exc:
                log.error("%s; the session's record is lost", exc)
        self._write_report(full)
        self.session = self._new_session()
        self.session_id = None

    def _write_report(self, record: dict[str, Any]) -> None:
        """Write the session's report next to its record (it can be rebuilt from the record)."""
        if self.journal is None:
            return
        try:
            write_report(self.journal.data_dir, record, self.settings.report.low_confidence, self.phrases, self.method)
        except JournalError as exc:
            log.error("%s; 'intervisie report' can rebuild it from the record", exc)
        except Exception:  # noqa: BLE001 - whatever goes wrong with the report, the group's next session goes on
            log.exception("the report of session %s could not be written", record.get("id"))

    def _resume_pending(self) -> bool:
        """Rebuild an unfinished session from the journal; True if it goes on."""
        if self.journal is None:
            return False
        try:
            pending = self.journal.pending()
        except JournalError as exc:
            log.error("%s; starting a new session", exc)
            self.journal.discard()
            return False
        if pending is None:
            return False
        session = self._new_session()
        session.notes.listener = str(pending.header.get("listener", "off"))
        try:
            for entry in pending.entries:
                session.handle(event_from_dict(entry), float(entry["t"]))
        except (KeyError, TypeError, ValueError) as exc:
            log.error("the journal %s could not be replayed (%s); starting a new session", self.journal.path, exc)
            self.journal.discard()
            return False
        gap = max(0.0, self._wall() - pending.last_wall)
        header = pending.header
        same_method = header.get("method") == self.method.id and header.get("language") == self.phrases.language
        if not same_method or gap > self.settings.session.resume_within_minutes * 60 or session.current is None:
            self._close_abandoned(pending, session)
            return False
        # The group went on talking while the device was off: that time counts.
        self.clock.set_now(pending.last_t + gap * self.clock.speed)
        self.session = session
        self.session_id = str(header.get("id"))
        self._started_wall = header.get("wall")
        try:
            self.journal.reopen()
        except JournalError as exc:
            self._journal_failed(exc)
        log.info("resumed session %s after %.0f s off", self.session_id, gap)
        # The recogniser's state now, not the one the journal last saw.
        self.step(ListenerState(self.listener.state if self.listener is not None else "off"))
        self.step(Resume())
        return True

    def _close_abandoned(self, pending: Pending, session: Session) -> None:
        assert self.journal is not None
        record = {
            "id": str(pending.header.get("id")),
            "started_wall": pending.header.get("wall"),
            "ended_wall": pending.last_wall,
            **session.record(pending.last_t),
        }
        record["finished"] = False
        try:
            self.journal.finish(record)
            log.info("an unfinished session (%s) was closed and kept as a record", record["id"])
            self._write_report(record)
        except JournalError as exc:
            log.error("%s; the unfinished session is dropped", exc)
            self.journal.discard()
