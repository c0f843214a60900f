"""The daemon: one loop that feeds events to the session and carries out its effects.

Button, keyboard and signal handlers only post events to a queue; this loop is the
only place that touches the session, the journal and the speaker's queue. Between
events it sleeps until the next announcement is due, so a phase costs no CPU.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from assistant.audio.speaker import Speaker
from assistant.config import make_masker
from assistant.core.clock import SessionClock
from assistant.core.events import (
    ButtonDown,
    DoublePress,
    Effect,
    Event,
    Finished,
    Listen,
    ListenerState,
    LongPress,
    Press,
    Resume,
    Say,
    StopListening,
    StopSpeech,
    Tick,
    Tone,
    VoiceCommand,
)
from assistant.core.headcount import counts_heads
from assistant.core.method import Method
from assistant.core.phrases import Phrases
from assistant.core.record import SessionRecord
from assistant.core.session import COUNTING, FINISHED, IDLE, Session
from assistant.core.settings import Settings
from assistant.errors import JournalError
from assistant.service.available import AvailableTime, day_seconds, header_seconds
from assistant.service.chooser import MethodChooser
from assistant.service.handoff import HandOff
from assistant.service.resume import (
    StoppedOffer,
    abandoned_record,
    clock_behind,
    goes_on,
    method_gone_record,
    offer_choice,
    offer_text,
    replay,
)
from assistant.service.store import SessionStore
from assistant.service.volume import VolumeControl
from assistant.storage.journal import Journal, JournalCutAtStart, Pending, stopped_line

log = logging.getLogger(__name__)

# Longest sleep of the loop when nothing is due (keeps it responsive to odd wake-ups).
_MAX_WAIT = 5.0
# How often a status LED is refreshed while a phase runs.
_LED_PERIOD = 1.0
# Phrases that repeat what the group said: never written to the log.
_LAST_WORDS = 2.0
"""Seconds (real time) the record of a finished session waits for the recogniser's last
utterance of a running note: the last closing sentence is often cut by the last press."""
_CHOICE_SETTLES = 5.0
"""Seconds a method chosen at the table must stay chosen before its phrases are prepared."""
_GESTURES = (ButtonDown, Press, DoublePress, LongPress, VoiceCommand)
_PRIVATE_KEYS = frozenset({"note_heard", "previous", "recap"})


@dataclass(frozen=True)
class SpeakerBack(Event):
    """The audio output works again after it failed or was missing: what was said
    meanwhile was not heard. Handled by the daemon itself (the session does not change)."""

    name: ClassVar[str] = "speaker_back"


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

    def show(
        self, fraction_left: float | None, overtime: bool, paused: bool, recording: bool = False,
        counted: int | None = None,
    ) -> None: ...


class Daemon:
    """Runs sessions one after the other until stopped."""

    def __init__(
        self,
        settings: Settings,
        method: Method,
        phrases: Phrases,
        speaker: Speaker,
        journal: Journal | None,
        clock: SessionClock,
        notifier: NotifierLike | None = None,
        led: LedLike | None = None,
        wall: Callable[[], float] = time.time,
        listener: ListenerLike | None = None,
        methods: Sequence[Method] = (),
    ) -> None:
        """``methods``: the installed methods a group can choose from at the table
        (:func:`assistant.config.installed_methods`); ``method`` is always the first."""
        self.settings = settings
        self.method = method
        self.phrases = phrases
        self.speaker = speaker
        self.journal = journal
        self.store = SessionStore(journal, settings, phrases, method, wall)
        """Journal, records, reports and retention; keeps going when the disk fails."""
        self.clock = clock
        self.handoff = HandOff(settings, phrases, self.store, speaker, self._say, self.post, clock)
        """The slip for the case-giver at the end of a session (``[printer]``)."""
        installed = [method, *(m for m in methods if m.id != method.id)]
        self.chooser = MethodChooser(
            installed, settings.methods, phrases, speaker, self._say_at_table, self.use_method,
            lambda: self.available.seconds,
        )
        """The method chosen at the table before a session starts."""
        self.available = AvailableTime(phrases, settings.schedule, speaker, self._say_at_table)
        """How long the group has ("we hebben een uur" at the table, or ``[schedule] total_minutes``)."""
        self.notifier = notifier
        self.led = led
        self.listener = listener
        self._listener_state = "off"
        self.masker = make_masker(settings.privacy, phrases.say("name_mask"))
        """Masks names in what is heard before the session (and so the disk) sees it."""
        self._wall = wall
        self._events: queue.Queue[Event | None] = queue.Queue()
        self._stopped = threading.Event()
        self._prepared: set[str] = set()
        self.session = self._new_session()
        self.session_id: str | None = None
        self._started_wall: float | None = None
        self.finished_records: list[SessionRecord] = []
        """Records of the sessions finished by this process (newest last)."""
        self.offer: StoppedOffer | None = None
        """A session stopped on purpose, waiting at start for the group to go on or start anew."""
        self.spoken: list[str] = []
        """Everything said, for the console and tests (bounded)."""
        self.echo: Callable[[str], None] | None = None
        """Shows each text said (in a terminal, see ``service.console``)."""
        player = getattr(speaker, "player", None)
        if player is not None and hasattr(player, "on_restored"):
            player.on_restored = lambda: self.post(SpeakerBack())
        kept_in = journal.data_dir if journal is not None and not getattr(journal, "refused_at_start", False) else None
        self.volume = VolumeControl(settings.speech, phrases, speaker, kept_in, self._say)
        """The knob and "harder"/"zachter": the level, kept in the data folder, never in the session."""

    # --- public -------------------------------------------------------------------

    def post(self, event: Event) -> None:
        """Hand an event to the loop; safe from any thread."""
        self._events.put(event)

    def stop(self) -> None:
        """Ask the loop to end; safe from any thread and from signal handlers."""
        self._stopped.set()
        self._events.put(None)

    def session_time(self) -> float | None:
        """Session seconds since the running session started (pauses included); None without one."""
        started = self.session.started
        if self.session.status == IDLE or started is None:
            return None
        ended = self.session.ended if self.session.status == FINISHED else None
        return (ended if ended is not None else self.clock.now()) - started

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopped.is_set()

    def start_up(self) -> None:
        """Say the first words: resume an unfinished session or greet the group."""
        if not self._resume_pending():
            self.store.report_missing()
            self._say(self.phrases.say("ready", method=self.method.name), "ready")
            self._say(self.phrases.say("gestures"), "gestures")
            if self.chooser.greeting():
                self._say(self.chooser.greeting(), "method_hint")
            if counts_heads(self.method, self.session.participants):
                self._say(self.phrases.say("group_hint"), "group_hint")
        self._storage_warning()  # an abandoned session's record could not be written
        if self.notifier is not None:
            self.notifier.ready("speaking")
        self.store.forget_expired()
        self._prepare()  # the rest of the fixed phrases, after the first words

    def use_method(self, method: Method) -> None:
        """Lead ``method`` from the next session on: the idle session is rebuilt with it."""
        self.method = self.store.method = method
        self.session = self._new_session()
        self._prepare(_CHOICE_SETTLES)

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
            if self.store.down and time.monotonic() >= self.store.retry_at:
                self._retry_storage()
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
        self._journal_stop()
        if self.store.down:
            self._retry_storage(final=True)
        if self.notifier is not None:
            self.notifier.stopping()

    def step(self, event: Event) -> None:
        """Apply one event now: journal it if it changed the session, then act."""
        if self.volume.handle(event):
            return
        if self.offer is not None and self._offer_step(event):
            return
        now = self.clock.now()
        if isinstance(event, _GESTURES) and self.session.last_words_until is not None:
            # The group goes on before the last words came: the record is kept as it is.
            for effect in self.session.close_record():
                self._apply(effect)
        if self.handoff.step(event):
            if self.handoff.forgotten:  # keep_after_print = false: not even in memory
                gone = set(self.handoff.forgotten)
                self.finished_records = [r for r in self.finished_records if r.get("id") not in gone]
            self._storage_warning()
            return
        if self.offer is None and not self.handoff.active and self.session.status == IDLE and self.chooser.step(event):
            return
        if self.offer is None and not self.handoff.active and self.session.status == IDLE \
                and self.available.step(event, self.session):
            return
        session = self.session
        was_idle = session.status == IDLE
        before = session.changes
        if isinstance(event, ListenerState):
            self._listener_state = event.state
            log.info("speech recognition: %s%s", event.state, f" ({event.detail})" if event.detail else "")
        if self.masker is not None:
            # Names are masked before the session sees them, so none reaches the journal,
            # the record or the report (see assistant.privacy).
            event = self.masker.event(event)
        if was_idle and isinstance(event, (Press, VoiceCommand)) and self.settings.listening.read_back_previous:
            # Read when the session starts, not when it was made: `intervisie forget` or
            # retention may have removed that actieplan since.
            session.previous_actieplan = self.store.previous_actieplan()
        if was_idle:
            session.start_clock = day_seconds(self._wall())  # the end time said at the start
        effects = session.handle(event, now)
        if session.changes != before and not (was_idle and session.status == IDLE):
            if was_idle:
                self._start_journal(now)
            # The wall clock at `now` (not a moment later): a resume ties session time to it.
            wall = self._wall() - self.clock.real_seconds(self.clock.now() - now)
            self.store.append({**event.to_dict(), "t": now, "wall": wall})
        for effect in effects:
            self._apply(effect)
        self._storage_warning()
        if isinstance(event, Tick) and effects:
            log.debug("announcement at session time %.1f", now)

    # --- internals ----------------------------------------------------------------

    def _speaker_back(self) -> None:
        """The group heard nothing for a while: tell them where they are (not over a note
        being recorded: the device stays silent then). The session does not change."""
        if self.offer is not None:
            self._say(offer_text(self.phrases, self.offer.session), "stopped_offer")
            return
        run = self.session.current
        if run is None or run.note is None or not run.note.busy:
            self._say(self.session.status_text(self.clock.now()), "status")

    def _prepare(self, settle: float = 0.0) -> None:
        """Render the idle session's fixed phrases in the background, once per method; after
        ``settle`` seconds only if the group still has that method (prepared phrases are
        kept for the whole run: going round the methods must not keep every method's)."""
        method, texts = self.method, self.session.fixed_phrases()

        def prepare() -> None:
            if settle:
                time.sleep(settle)
            if self.method is method and method.id not in self._prepared:
                self._prepared.add(method.id)
                self.speaker.prepare(texts)

        threading.Thread(target=prepare, name="prepare", daemon=True).start()

    def _new_session(self, method: Method | None = None) -> Session:
        s = self.settings
        session = Session(
            method or self.method,
            self.phrases,
            s.announcements,
            s.schedule,
            s.participants,
            first_person_hint=s.listening.first_person_hint,
            previous_actieplan=self.store.previous_actieplan() if s.listening.read_back_previous else "",
            last_words_seconds=_LAST_WORDS * self.clock.speed,
            recap=s.report.recap,
            hand_off=self.handoff.mode,
            count_group=True,
            privacy_notice=True,
        )
        session.notes.listener = self._listener_state
        session.total_seconds = self.available.seconds
        return session

    def _wait_time(self, next_ping: float | None) -> float:
        waits = [_MAX_WAIT]
        deadline = self.session.next_deadline()
        if deadline is not None:
            waits.append(self.clock.real_seconds(deadline - self.clock.now()))
        if next_ping is not None:
            waits.append(next_ping - time.monotonic())
        if self.store.down:
            waits.append(self.store.retry_at - time.monotonic())
        if self.offer is not None:
            waits.append(self.clock.real_seconds(self.offer.expires - self.clock.now()))
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

    def _say_at_table(self, text: str, key: str) -> None:
        """Say what the group chose before the start (a method, the time it has); "herhaal"
        then says it again, as it repeats what the session said last."""
        self._say(text, key)
        self.session.last_spoken = [Say(text, key)]

    def _say(self, text: str, key: str) -> None:
        if key in _PRIVATE_KEYS:
            # What the group said stays in the record, not in the system log.
            log.info("say [%s]: (%d characters of a note, not logged)", key, len(text))
        else:
            log.info("say [%s]: %s", key, text)
        self.spoken.append(text)
        del self.spoken[:-200]
        if self.echo is not None:
            self.echo(text)
        self.speaker.say(text)
        if self.notifier is not None and key in ("phase", "paused", "unpaused", "finished", "resumed"):
            self.notifier.status(text[:120])

    def _show_led(self) -> None:
        if self.led is None:
            return
        now = self.clock.now()
        run = self.session.current
        overtime = run is not None and run.left(now) < 0
        count = self.session.count
        self.led.show(self.session.fraction_left(now), overtime, self.session.paused, self.session.recording(),
                      counted=count.counted if count is not None else None)

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
            # A resumed session is fitted into the same time (see service.available).
            "total_minutes": self.session.total_seconds / 60,
        }

    def _start_journal(self, now: float) -> None:
        header = self._header(now)
        self._started_wall = header["wall"]
        self.session_id = self.store.start(header)

    def _storage_warning(self) -> None:
        """Say the storage warning, after what the event itself made the device say."""
        if self.store.warning_due:
            self.store.warning_due = False
            self._say(self.phrases.say("storage_failed"), "storage_failed")

    def _retry_storage(self, final: bool = False) -> None:
        """Try to write what was kept in memory; say when saving works again."""
        if self.store.retry(final) and not final:
            self._say(self.phrases.say("storage_ok"), "storage_ok")

    def _finish(self, record: SessionRecord) -> None:
        full: SessionRecord = {
            "id": self.session_id or time.strftime("%Y%m%d-%H%M%S"),
            "started_wall": self._started_wall,
            "ended_wall": self._wall(),
            **record,
        }
        self.finished_records.append(full)
        del self.finished_records[:-10]
        self.store.keep(full)
        self.store.forget_expired()
        # Each meeting chooses its method: the next session starts from the configured one.
        self.method = self.store.method = self.chooser.reset()
        self.available.reset()
        self.session = self._new_session()
        self._prepare()  # nothing to do unless a resumed session led another method
        self.session_id = None
        self.handoff.finished(full)

    def _resume_pending(self) -> bool:
        """Rebuild an unfinished session from the journal; True if it goes on."""
        if self.journal is None:
            return False
        try:
            pending = self.journal.pending()
        except JournalCutAtStart as exc:
            return self._never_started(str(exc))
        except JournalError as exc:
            log.error("%s; starting a new session", exc)
            self.journal.discard()
            return False
        if pending is None:
            return False
        method = self.chooser.find(str(pending.header.get("method")))
        if method is None:
            return self._method_gone(pending)
        session = self._new_session(method)
        session.notes.listener = str(pending.header.get("listener", "off"))
        session.total_seconds = header_seconds(pending.header)
        try:
            replay(pending, session, self.masker)
        except (KeyError, TypeError, ValueError) as exc:
            log.error("the journal %s could not be replayed (%s); starting a new session", self.journal.path, exc)
            self.journal.discard()
            return False
        counting = session.status == COUNTING  # the power went while the group was counted
        if not session.runs and not counting:
            # The start press was not written: nothing happened, so there is nothing to keep.
            return self._never_started(
                f"the journal {self.journal.path} holds a session that never started (power cut as it started)"
            )
        now = self._wall()
        if pending.stopped is not None:
            return self._offer_to_go_on(pending, session, max(0.0, now - pending.last_wall))
        behind = clock_behind(pending, now)
        if counting and (behind or not goes_on(pending, session, method, self.phrases, max(0.0, now - pending.last_wall),
                                               self.settings.session.resume_within_minutes)):
            return self._never_started(f"the journal {self.journal.path} holds a session that was still counting the group")
        if behind:
            record = abandoned_record(pending, session)
            log.warning(
                "the clock is %.0f s behind the last event of session %s (it went back, as on a device that starts "
                "without network time): how long it was off is unknown, so it is not resumed but kept as an "
                "unfinished record", behind, record["id"],
            )
            self.store.keep(record)
            return False
        gap = max(0.0, now - pending.last_wall)
        if not goes_on(pending, session, method, self.phrases, gap, self.settings.session.resume_within_minutes):
            self._close(pending, session)
            return False
        # The group went on talking while the device was off: that time counts.
        self._go_on(pending, session, pending.last_t + gap * self.clock.speed, gap, stopped=False)
        return True

    def _method_gone(self, pending: Pending) -> bool:
        """The journal's method is no longer installed: keep the session as unfinished
        rather than replay it with another method's phases."""
        record = method_gone_record(pending)
        log.warning("session %s was led with the method %r, which is no longer installed: it is not resumed but "
                    "kept as an unfinished record, without its phases and notes", record["id"], record["method"])
        self.store.keep(record)
        return False

    def _close(self, pending: Pending, session: Session) -> None:
        """Keep a session that does not go on as an unfinished record (with its report)."""
        record = abandoned_record(pending, session)
        if self.store.keep(record):
            log.info("an unfinished session (%s) was closed and kept as a record", record["id"])

    def _go_on(self, pending: Pending, session: Session, at: float, gap: float, stopped: bool) -> None:
        """Go on with the replayed ``session`` at session time ``at``, and say where we are."""
        assert self.journal is not None
        self.clock.set_now(at)
        self.method = self.store.method = session.method
        self.session = session
        self.session_id = str(pending.header.get("id"))
        self._started_wall = pending.header.get("wall")
        self.journal.reopen()
        # The recogniser's state now, not the one the journal last saw.
        self.step(ListenerState(self.listener.state if self.listener is not None else "off"))
        at = self.clock.now()  # the moment of the Resume step (its journal line), for the log
        session.stopped_on_purpose = stopped
        self.step(Resume())
        run = session.current
        kept = sorted(k for k, items in session.captures.items() if any(i.get("accepted") for i in items))
        log.info(
            "%s session %s after %.1f s off%s: phase %d, %.1f s left%s, notes kept: %s",
            "went on with the stopped" if stopped else "resumed", self.session_id, gap,
            " (not counted: it was stopped on purpose)" if stopped else "",
            run.phase.number if run else 0, run.left(at) if run else 0.0,
            " (paused)" if session.paused else "", ", ".join(kept) or "none",
        )
        if self.journal.behind and not self.store.down:
            # The journal could not be repaired on disk: it is kept in memory until it can.
            self.store.failed(JournalError(f"cannot repair the journal {self.journal.path}"))
            self._storage_warning()

    # --- a deliberate stop ----------------------------------------------------------

    def _journal_stop(self) -> None:
        """A clean stop (SIGTERM, SIGINT, the quit key) in the middle of a session: one journal
        line says so, and the next start offers the group the choice instead of resuming as
        after a power cut (see :mod:`assistant.service.resume`)."""
        run = self.session.current
        if self.offer is not None or run is None or self.journal is None:
            return  # no session running (a stop line from before is still the journal's last)
        now = self.clock.now()
        self.store.append(stopped_line(now, self._wall()))
        log.info("stopped in the middle of session %s (phase %d, %.1f s left): the next start offers to go on",
                 self.session_id, run.phase.number, run.left(now))

    def _offer_to_go_on(self, pending: Pending, session: Session, off: float) -> bool:
        """The session was stopped on purpose: offer to go on (True) or keep it as unfinished (False)."""
        within = self.settings.session.resume_within_minutes * 60
        if not goes_on(pending, session, session.method, self.phrases, off, within / 60):
            self._close(pending, session)
            return False
        # Session time stands still while the device waits; the offer lapses when the stop is
        # as old as a power cut after which it would no longer resume.
        expires = self.clock.now() + (within - off) * self.clock.speed
        self.offer = StoppedOffer(pending, session, expires)
        run = session.current
        log.info(
            "session %s was stopped on purpose %.0f s ago in phase %d: a press goes on, a long press starts a new "
            "session (the offer lapses in %.0f s)", pending.header.get("id"), off, run.phase.number if run else 0,
            within - off,
        )
        self._say(offer_text(self.phrases, session), "stopped_offer")
        return True

    def _offer_step(self, event: Event) -> bool:
        """An event while the offer waits; True when it was the offer's (the idle session
        does not see it)."""
        offer = self.offer
        assert offer is not None
        if isinstance(event, ButtonDown):
            self.speaker.stop()
            self.speaker.tone("press")
            return True
        if isinstance(event, Tick):
            if self.clock.now() >= offer.expires:
                self.offer = None
                log.info("nobody chose to go on with the stopped session within %g minutes: it is kept as unfinished",
                         self.settings.session.resume_within_minutes)
                self._close(offer.pending, offer.session)
            return True
        choice = offer_choice(event)
        if choice is None:
            return False  # the recogniser's state: the idle session keeps it for a new session
        if isinstance(event, VoiceCommand):
            self.speaker.stop()
            self.speaker.tone("press")
        if choice == "repeat":
            self._say(offer_text(self.phrases, offer.session), "stopped_offer")
        elif choice == "new":
            self.offer = None
            self.speaker.tone("hold")
            self._close(offer.pending, offer.session)
            self._say(self.phrases.say("stopped_new"), "stopped_new")
        else:
            self.offer = None
            # The clock stood still from the stop: neither the time off nor the wait counts.
            off = max(0.0, self._wall() - offer.pending.last_wall)
            self._go_on(offer.pending, offer.session, offer.pending.last_t, off, stopped=True)
        self._storage_warning()
        return True

    def _never_started(self, why: str) -> bool:
        """The power went as the group pressed to start: drop the journal, greet again."""
        assert self.journal is not None
        log.warning("%s; starting a new session", why)
        self.journal.discard()
        return False
