"""The session: a pure state machine that leads a group through the method.

Events go in with the session time they happened at (seconds from an injected clock);
effects come out. Nothing here touches audio, GPIO, files or the real clock, so a whole
50-minute session runs in a test in milliseconds, and replaying the journal's events
rebuilds exactly the state the live session had.

Time inside a phase is *active* time: it stands still while the session is paused.
"""

from __future__ import annotations

from typing import cast

from assistant.core.events import (
    ButtonDown,
    Captured,
    DoublePress,
    Effect,
    Event,
    Finished,
    Heard,
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
from assistant.core.fitting import end_of_day_seconds, fitted_method
from assistant.core.headcount import HeadCount, counts_heads, spoken_size
from assistant.core.headcount import fixed_texts as count_texts
from assistant.core.method import Method, Note
from assistant.core.notes import NoteRun, NoteTaker, note_name
from assistant.core.phrases import Phrases
from assistant.core.record import CaptureItem, NoteRecord, PhaseRecord, SessionRecord, phase_records
from assistant.core.schedule import (
    PhaseRun,
    balanced_length,
    fixed_texts,
    mark_text,
    marks_for,
    more_time_hint,
    phase_intro,
    phase_texts,
    recap,
    spoken_length,
    summary,
)
from assistant.core.settings import AnnouncementSettings, ScheduleSettings

IDLE, COUNTING, RUNNING, FINISHED = "idle", "counting", "running", "finished"
"""COUNTING: after the start press, before phase 1, while the group is counted
(see :mod:`assistant.core.headcount`)."""


class Session:
    """One intervision session, from the first press to the summary."""

    def __init__(
        self,
        method: Method,
        phrases: Phrases,
        announcements: AnnouncementSettings = AnnouncementSettings(),
        schedule: ScheduleSettings = ScheduleSettings(),
        participants: int = 0,
        first_person_hint: bool = True,
        previous_actieplan: str = "",
        last_words_seconds: float = 0.0,
        recap: bool = True,
        hand_off: str = "",
        count_group: bool = False,
        privacy_notice: bool = False,
    ) -> None:
        self.method = method
        """The plan this session follows: the method fitted into :attr:`total_seconds` once it starts."""
        self.own_method = method
        """The method as written (its own lengths, for the record)."""
        self.total_seconds = schedule.total_minutes * 60
        """The time the group has (``[schedule] total_minutes`` or said at the table); 0: no limit.
        The daemon journals it in the header, so a replay fits the method the same way."""
        self.start_clock: float | None = None
        """Seconds since local midnight at the start press, set by the daemon (the core has no
        wall clock): the device then says the clock time the session ends."""
        self.phrases = phrases
        self.announcements = announcements
        self.schedule = schedule
        self.participants = participants
        """The group's size (0: not known): from the settings, the count at the start, or
        said later; a round uses the size when it began."""
        self.count_group = count_group
        """Whether the start press first counts a group of unknown size when the method has
        a round (the daemon's sessions do; see :mod:`assistant.core.headcount`)."""
        self.count: HeadCount | None = None
        """The count of the group while it runs (status COUNTING)."""
        self.status = IDLE
        self.runs: list[PhaseRun] = []
        self.paused_since: float | None = None
        self.started: float | None = None
        self.ended: float | None = None
        self.captures: dict[str, list[CaptureItem]] = {}
        self.notes = NoteTaker(phrases, first_person_hint, captures=self.captures, privacy_notice=privacy_notice)
        """Taking notes: when to listen, reading back, what to keep."""
        self.previous_actieplan = previous_actieplan
        """Read back at the start (the last session's actieplan), or ""."""
        self.last_spoken: list[Say] = []
        """What the latest event that made the device speak said (for "herhaal")."""
        self.changes = 0
        """Counts state changes: the daemon journals an event only when it changed something."""
        self.last_words_seconds = last_words_seconds
        """Session time the record waits, after the last press, for the recogniser's last
        utterance of a running note (the closing sentences); 0 does not wait."""
        self.last_words_until: float | None = None
        """Set while the finished session waits for that last utterance."""
        self.stopped_on_purpose = False
        """Set by the daemon before the :class:`Resume` that follows a deliberate stop (the
        group chose to go on): the device says "we go on", not that it was out."""
        self.recap = recap
        """Whether the end reads what was kept before the time summary (``[report] recap``)."""
        self.hand_off = hand_off
        """How the notes leave at the end: "" (no printer: a press begins anew), "ask" (the
        device says a press prints the slip) or "always" (it says the slip is printing)."""

    # --- queries ------------------------------------------------------------------

    @property
    def current(self) -> PhaseRun | None:
        """The running phase, if any."""
        return self.runs[-1] if self.status == RUNNING and self.runs else None

    @property
    def paused(self) -> bool:
        """Whether the clock stands still."""
        return self.paused_since is not None

    def capture_kind(self) -> str:
        """What the device should write down now ("" for nothing)."""
        run = self.current
        return run.phase.capture if run else ""

    def next_deadline(self) -> float | None:
        """Session time of the next announcement, or None when nothing is due.

        While a note is being recorded nothing is announced (the device would talk over
        the case-giver and mute the microphone): the marks wait until it is done.
        """
        if self.last_words_until is not None:
            return self.last_words_until
        if self.count is not None:
            return self.count.due
        run = self.current
        if run is None or self.paused or run.stretch_start is None:
            return None
        if run.note is not None and run.note.busy:
            return None
        pending = [m.at for m in run.marks if not m.done]
        if run.note is not None and run.note.invite_at is not None:
            pending.append(run.note.invite_at)
        if not pending:
            return None
        return run.stretch_start + (min(pending) - run.active_before)

    def recording(self) -> bool:
        """Whether the device is writing down a note right now (for the LED)."""
        note = self._note()
        return note is not None and note.recording

    def fraction_left(self, now: float) -> float | None:
        """Share of the phase still to go (for the LED); None when no phase runs."""
        run = self.current
        if run is None:
            return None
        return max(0.0, run.left(now)) / run.planned

    def fixed_phrases(self) -> list[str]:
        """Texts the session will certainly say, to be rendered ahead of time."""
        texts = fixed_texts(self.phrases, self.participants)
        if self.count_group and counts_heads(self.method, self.participants):
            texts.extend(count_texts(self.phrases))
        texts.extend(self.notes.fixed_phrases(self.method.phases))
        hint = self._hint()
        if hint and self.announcements.time_up:
            texts.extend(f"{self.phrases.say(key)} {hint}" for key in ("time_up", "time_up_last"))
        texts.extend(phase_texts(self.phrases, self.method, self.announcements, hint))
        return list(dict.fromkeys(texts))

    def _hint(self) -> str:
        return more_time_hint(self.phrases, self.schedule.extend_minutes)

    # --- events -------------------------------------------------------------------

    def handle(self, event: Event, now: float) -> list[Effect]:
        """Apply one event at session time ``now`` and return what to do."""
        effects = self._dispatch(event, now)
        spoken = [e for e in effects if isinstance(e, Say)]
        if spoken and not (isinstance(event, VoiceCommand) and event.command == "repeat"):
            self.last_spoken = spoken
        return effects

    def _dispatch(self, event: Event, now: float) -> list[Effect]:
        if self.last_words_until is not None:
            if isinstance(event, Heard):
                return [*self._heard(event, now), *self.close_record()]
            if isinstance(event, Tick):
                return self.close_record() if now >= self.last_words_until else []
        if self.count is not None and isinstance(event, (Press, DoublePress, LongPress, Tick, Resume, VoiceCommand)):
            return self._counting(event, self.count, now)
        if isinstance(event, ButtonDown):
            return self._button_down()
        if isinstance(event, Press):
            return self._press(now)
        if isinstance(event, DoublePress):
            return self._double_press(now)
        if isinstance(event, LongPress):
            return self._long_press(now)
        if isinstance(event, Tick):
            return self._tick(now)
        if isinstance(event, Resume):
            return self._resume(now)
        if isinstance(event, Captured):
            return self._captured(event, now)
        if isinstance(event, Heard):
            return self._heard(event, now)
        if isinstance(event, ListenerState):
            self.changes += 1
            return self.notes.listener_changed(event.state, self._note(), self.paused)
        if isinstance(event, VoiceCommand):
            return self._voice_command(event, now)
        raise TypeError(f"unknown event {event!r}")

    def _note(self) -> NoteRun | None:
        run = self.current
        return run.note if run is not None else None

    def _button_down(self) -> list[Effect]:
        ending = self.notes.button_down(self._note())
        if ending:
            self.changes += 1
        return [*ending, StopSpeech(), Tone("press")]

    def _double_press(self, now: float) -> list[Effect]:
        note = self._note()
        if self.notes.swallowed(note):
            self.changes += 1
            return []
        if not self.paused:
            handled, effects = self.notes.double_press(note)
            if handled:
                self.changes += 1
                return effects
            run = self.current
            if run is not None and run.left(now) <= 0 and self.schedule.extend_minutes > 0:
                return self._more_time(run, now)
        return [Say(self._status_text(now), "status")]

    def _more_time(self, run: PhaseRun, now: float) -> list[Effect]:
        """The phase's time is up and the group wants more: ``extend_minutes`` from now on."""
        active = run.active(now)
        planned = active + self.schedule.extend_minutes * 60
        run.extended += planned - run.planned
        run.planned = planned
        run.marks = marks_for(self.announcements, planned, run.phase.seconds)
        for mark in run.marks:
            mark.done = mark.at <= active + 1e-6
        self.changes += 1
        later = self.method.phases[run.phase.number:]
        balanced = self.schedule.mode == "keep_end" and any(p.flexible for p in later)
        key = "more_time" if balanced else "more_time_later" if later else "more_time_last"
        return [Say(self.phrases.say(key, duration=spoken_length(self.phrases, planned - active)), key)]

    def _heard(self, event: Heard, now: float) -> list[Effect]:
        self.changes += 1
        run = self.current
        person = run.person if run is not None and run.phase.round and run.people > 1 else None
        notes = [r.note for r in self.runs if r.note is not None]
        return self.notes.heard(event, self._note(), notes, now, person)

    def _voice_command(self, event: VoiceCommand, now: float) -> list[Effect]:
        """A spoken command does what its gesture does (after the same tone)."""
        if event.command == "repeat":
            return list(self.last_spoken) or [Say(self._status_text(now), "status")]
        size = spoken_size(event.command)
        if size is not None:
            return [StopSpeech(), Tone("press"), *self._group_size(size, now)]
        gesture: Event
        if event.command == "next":
            gesture = Press()
        elif event.command == "pause":
            if self.status == IDLE:
                # "pauze" before the start is no request to count the group (a long press is).
                return [StopSpeech(), Tone("press"), Say(self._status_text(now), "status")]
            gesture = LongPress()
        elif event.command in ("status", "more_time"):
            # "vijf minuten erbij" is the double press: more time once the time is up,
            # else the phase and the time left.
            gesture = DoublePress()
        else:
            return []
        return [StopSpeech(), Tone("press"), *self._dispatch(gesture, now)]

    def _press(self, now: float) -> list[Effect]:
        note = self._note()
        if self.notes.swallowed(note):
            self.changes += 1
            return []
        before: list[Effect] = []
        if self.status == RUNNING and not self.paused:
            handled, before = self.notes.press(note)
            if handled:
                self.changes += 1
                return before
            if before:
                self.changes += 1
        return [*before, *self._press_on(now)]

    def _press_on(self, now: float) -> list[Effect]:
        if self.status == FINISHED:
            return [Say(self.phrases.say("status_finished"), "status_finished")]
        if self.paused:
            return [Say(self._status_text(now), "status_paused")]
        if self.status == IDLE:
            # A group that just wants to start is never held up: the count is asked for
            # with a long press (or said) before the start, never forced on the start press.
            self.started = now
            self.changes += 1
            return self._begin(now)
        run = self.runs[-1]
        if run.phase.round and run.people > 1 and run.person <= run.people:
            run.person += 1
            self.changes += 1
            if run.person > run.people:
                last = run.phase.number == len(self.method.phases)
                return [Say(self.phrases.say("round_done_last" if last else "round_done"), "round_done")]
            # "Nog drie": the people still to speak, counting the one whose turn it is now.
            left = run.people - run.person + 1
            after = self.phrases.say("last_person") if left == 1 else self.phrases.say("people_left", n=left)
            return [Say(f"{self.phrases.say('next_person')} {after}", "next_person")]
        stop = self._end_phase(run, now)
        if len(self.runs) == len(self.method.phases):
            last_words = any(isinstance(e, StopListening) and e.finish for e in stop)
            return [*stop, *self._finish(now, last_words)]
        return [*stop, *self._begin_phase(len(self.runs), now)]

    def _begin(self, now: float) -> list[Effect]:
        """The session begins (after the count, if there is one): say so, and phase 1."""
        self.status = RUNNING
        self.changes += 1
        self.method = fitted_method(self.own_method, self.total_seconds)
        effects: list[Effect] = [Say(self._start_text(), "start")]
        if self.previous_actieplan:
            effects.append(Say(self.phrases.say("previous_actieplan", text=self.previous_actieplan), "previous"))
        return [*effects, *self._begin_phase(0, now)]

    # --- the count of the group ---------------------------------------------------------

    def _counting(self, event: Event, count: HeadCount, now: float) -> list[Effect]:
        """An event while the group is counted (see :mod:`assistant.core.headcount`)."""
        if isinstance(event, Tick):
            return self._counted(now) if now >= count.due - 1e-9 else []
        self.changes += 1
        if isinstance(event, (Press, DoublePress)):
            count.add(2 if isinstance(event, DoublePress) else 1, now)
            return []  # the button's own tone is the tick of each one counted
        if isinstance(event, Resume):
            # The device was out: nobody knows which presses counted. Ask again.
            count.restart(now)
            return [Say(self.phrases.say("group_resumed"), "group_ask")]
        if isinstance(event, LongPress):
            count.restart(now)
            return [Tone("hold"), Say(self.phrases.say("group_ask_again"), "group_ask")]
        assert isinstance(event, VoiceCommand)
        size = spoken_size(event.command)
        heard: list[Effect] = [StopSpeech(), Tone("press")]
        if size is not None:
            count.counted = size
            return [*heard, *self._counted(now)]
        if event.command == "next":
            return [*heard, *self._counted(now)]
        if event.command == "pause":
            count.restart(now)
            return [*heard, Say(self.phrases.say("group_ask_again"), "group_ask")]
        if event.command == "repeat":
            return list(self.last_spoken) or [Say(self.phrases.say("group_ask"), "group_ask")]
        if event.command == "status":
            return [*heard, Say(self.phrases.say("group_ask"), "group_ask")]
        self.changes -= 1  # a method's name: nothing to do once the session started
        return []

    def _counted(self, now: float) -> list[Effect]:
        """The count is done: say the number back (one person is no round) and begin."""
        assert self.count is not None
        counted = self.count.counted
        self.count = None
        said: list[Effect] = []
        if counted > 1:
            self.participants = counted
            said.append(Say(self.phrases.say("group_size", n=counted), "group_size"))
        return [*said, *self._begin(now)]

    def _group_size(self, size: int, now: float) -> list[Effect]:
        """"We zijn met vijf" said before the start begins the session with that number; said
        after the count, the rounds use it from the next one on."""
        if self.status == IDLE:
            self.started = now
            self.participants = size
            self.changes += 1
            return [Say(self.phrases.say("group_size", n=size), "group_size"), *self._begin(now)]
        if self.status != RUNNING:
            return [Say(self._status_text(now), "status")]
        self.participants = size
        self.changes += 1
        run = self.runs[-1]
        key = "group_size_next_round" if run.phase.round and run.ended is None else "group_size"
        return [Say(self.phrases.say(key, n=size), "group_size")]

    def _long_press(self, now: float) -> list[Effect]:
        if self.status == IDLE and self.count_group and counts_heads(self.method, self.participants):
            # Before the start: "Met hoeveel zijn jullie?"; the count ends in the start.
            self.started = now
            self.changes += 1
            self.status = COUNTING
            self.count = HeadCount(asked_at=now)
            return [Tone("hold"), Say(self.phrases.say("group_ask"), "group_ask")]
        if self.status != RUNNING:
            return [Say(self._status_text(now), "status")]
        run = self.runs[-1]
        self.changes += 1
        if self.paused_since is None:
            run.active_before = run.active(now)
            run.stretch_start = None
            self.paused_since = now
            return [*self.notes.pause(run.note), Tone("hold"), Say(self.phrases.say("paused"), "paused")]
        run.paused_total += now - self.paused_since
        self.paused_since = None
        run.stretch_start = now
        if run.left(now) < 0:
            text = self.phrases.say("unpaused_overtime", duration=self.phrases.duration(-run.left(now)))
        else:
            text = self.phrases.say("unpaused", duration=self._left_text(run, now))
        unpaused = Say(text, "unpaused")
        return [Tone("hold"), unpaused, *self.notes.unpause(run.note)]

    def _tick(self, now: float) -> list[Effect]:
        run = self.current
        if run is None or self.paused or (run.note is not None and run.note.busy):
            return []
        active = run.active(now)
        due = [m for m in run.marks if not m.done and m.at <= active + 1e-6]
        note = run.note
        invite = note is not None and note.invite_at is not None and note.invite_at <= active + 1e-6
        if not due and not invite:
            return []
        self.changes += 1
        effects: list[Effect] = []
        if due:
            for mark in due:
                mark.done = True
            mark = due[-1]  # after a stall, only the latest announcement is still true
            if mark.kind == "time_up":
                effects.append(Tone("time_up"))
            last_phase = run.phase.number == len(self.method.phases)
            effects.append(Say(mark_text(self.phrases, mark, run.planned, last_phase, self._hint()), mark.kind))
        if invite:
            assert note is not None
            note.invite_at = None
            if note.stage == "waiting":
                effects.extend(self.notes.invite(note))
        return effects

    def _resume(self, now: float) -> list[Effect]:
        run = self.current
        if run is None:
            return []
        self.changes += 1
        active = run.active(now)
        for mark in run.marks:
            if mark.at <= active:
                mark.done = True
        phase = run.phase
        note = self.notes.resume(run.note, self.paused)
        # After a deliberate stop the group chose to go on; after a power cut the device was out.
        kind = "continued" if self.stopped_on_purpose else "resumed"
        self.stopped_on_purpose = False
        if self.paused:
            return [Say(self.phrases.say(f"{kind}_paused", number=phase.number), "resumed"), *note]
        if run.left(now) < 0:
            text = self.phrases.say(
                f"{kind}_overtime", number=phase.number, name=phase.name, duration=self.phrases.duration(-run.left(now))
            )
        else:
            text = self.phrases.say(kind, number=phase.number, name=phase.name, duration=self._left_text(run, now))
        return [Say(text, "resumed"), *note]

    def _captured(self, event: Captured, now: float) -> list[Effect]:
        if self.status != RUNNING:
            # Before the first press no session has begun (nor its journal): a note
            # kept now would belong to no session and be missing after a restart.
            return []
        item = cast(CaptureItem, {"text": event.text, "accepted": event.accepted, "t": now, **event.extra})
        if self.current is not None:
            item["phase"] = self.current.phase.number
        self.captures.setdefault(event.kind, []).append(item)
        self.changes += 1
        return []

    # --- phases -------------------------------------------------------------------

    def _begin_phase(self, index: int, now: float) -> list[Effect]:
        phase = self.method.phases[index]
        planned = self._balanced_length(index)
        marks = marks_for(self.announcements, planned, phase.seconds)
        run = PhaseRun(phase=phase, planned=planned, started=now, stretch_start=now, marks=marks)
        run.people = self.participants if phase.round else 0
        self.runs.append(run)
        self.changes += 1
        effects: list[Effect] = [Say(phase_intro(self.phrases, phase, phase.number, planned), "phase")]
        if phase.round and run.people > 1:
            per_person = self.phrases.duration(planned / run.people)
            effects.append(Say(self.phrases.say("round_intro", per_person=per_person), "round_intro"))
        run.note, note_effects = self.notes.start_phase(phase, planned)
        return [*effects, *note_effects]

    def _end_phase(self, run: PhaseRun, now: float) -> list[Effect]:
        run.active_before = run.active(now)
        run.stretch_start = None
        run.ended = now
        self.changes += 1
        return self.notes.end_phase(run.note)

    def close_record(self) -> list[Effect]:
        """Stop waiting for the last utterance: the record is complete (see :meth:`_finish`)."""
        if self.last_words_until is None:
            return []
        self.last_words_until = None
        self.changes += 1
        return [*self._closing(), Finished(self.record())]

    def _finish(self, now: float, last_words: bool = False) -> list[Effect]:
        """The session ends: the group hears so at once. With ``last_words`` a running note
        was just told to stop: its last utterance is still in the recogniser, so the rest
        of the end (the recap counts it) and the record wait for it (a :class:`Heard`, or
        ``last_words_seconds``, while the goodbye is still being said) before the record is
        handed on as Finished."""
        self.status = FINISHED
        self.ended = now
        self.changes += 1
        effects: list[Effect] = [Say(self.phrases.say("finished", method=self.method.name), "finished")]
        if last_words and self.last_words_seconds > 0:
            self.last_words_until = now + self.last_words_seconds
            return effects
        return [*effects, *self._closing(), Finished(self.record())]

    def _closing(self) -> list[Effect]:
        """What is said after the goodbye: the recap of the notes, the time summary, and how
        to begin anew."""
        p = self.phrases
        effects: list[Effect] = []
        kept = recap(p, self.captures, self.method.notes) if self.recap else ""
        if kept:
            effects.append(Say(kept, "recap"))
        effects.append(Say(summary(p, self.method, self.runs), "summary"))
        if self.hand_off == "ask":
            effects.append(Say(p.say("print_offer"), "print_offer"))
        elif self.hand_off == "always":
            effects.append(Say(p.say("printing"), "printing"))
        else:
            effects.append(Say(p.say("new_session"), "new_session"))
        return effects

    def _balanced_length(self, index: int) -> float:
        """This phase's length, shortened if earlier phases overran and the plan keeps the end time."""
        own = self.own_method if self.method is not self.own_method else None
        return balanced_length(self.method, self.runs, self.schedule, index, own)

    # --- texts --------------------------------------------------------------------

    def _start_text(self) -> str:
        """The first words of a session: its length, fitted into the time the group has when
        it said how long that is, and then the clock time it ends (when the daemon knows it)."""
        p, method = self.phrases, self.method
        duration = p.minutes(method.seconds / 60)
        if self.total_seconds <= 0:
            return p.say("start", method=method.name, duration=duration)
        available = p.minutes(self.total_seconds / 60)
        if method.seconds > self.total_seconds + 1e-6:
            text = p.say("start_too_long", method=method.name, duration=duration, available=available)
        elif method is not self.own_method:
            planned = p.minutes(self.own_method.seconds / 60)
            text = p.say("start_fitted", method=method.name, duration=duration, planned=planned, available=available)
        else:
            text = p.say("start_fits", method=method.name, duration=duration, available=available)
        if self.start_clock is None:
            return text
        hour, minute = end_of_day_seconds(self.start_clock, method.seconds)
        clock = p.say("clock_time", hour=hour, minute=f"{minute:02d}") if minute else p.say("clock_hour", hour=hour)
        return f"{text} {p.say('end_time', time=clock)}"

    def _left_text(self, run: PhaseRun, now: float) -> str:
        return self.phrases.duration(max(0.0, run.left(now)))

    def status_text(self, now: float) -> str:
        """What a double press says now: the phase and the time left (or that we have not begun)."""
        return self._status_text(now)

    def _status_text(self, now: float) -> str:
        p = self.phrases
        if self.status == IDLE:
            return p.say("status_idle")
        if self.status == COUNTING:
            return p.say("group_ask")
        if self.status == FINISHED:
            return p.say("status_finished")
        run = self.runs[-1]
        if self.paused:
            if run.left(now) < 0:
                return p.say("status_paused_overtime", number=run.phase.number, duration=p.duration(-run.left(now)))
            return p.say("status_paused", number=run.phase.number, duration=self._left_text(run, now))
        if run.left(now) < 0:
            return p.say(
                "status_overtime", number=run.phase.number, name=run.phase.name, duration=p.duration(-run.left(now))
            )
        return p.say("status", number=run.phase.number, name=run.phase.name, duration=self._left_text(run, now))

    # --- record -------------------------------------------------------------------

    def record(self, now: float | None = None) -> SessionRecord:
        """What is kept of the session: the plan against what happened, and what was captured.

        ``now`` counts the running phase up to that time, for a session that is closed
        before it finished.
        """
        phases = phase_records(self.runs, now)
        return {
            "method": self.method.id,
            "language": self.phrases.language,
            "participants": self.participants,
            "schedule_mode": self.schedule.mode,
            "finished": self.status == FINISHED,
            "phases": phases,
            "planned_seconds": self.method.seconds,
            "actual_seconds": round(sum(p["actual_seconds"] for p in phases), 3),
            **self._fit_record(phases),
            "captures": self.captures,
            "notes": [note_record(self.phrases, note) for note in self.method.notes],
        }


    def _fit_record(self, phases: list[PhaseRecord]) -> SessionRecord:
        """What the record keeps of a session fitted into the time the group had: that time,
        and the method's own lengths next to the fitted ones."""
        if self.total_seconds <= 0:
            return {}
        own = self.own_method
        for phase in phases:
            number = phase.get("number", 0)
            if 0 < number <= len(own.phases) and own.phases[number - 1].seconds != phase.get("planned_seconds"):
                phase["method_seconds"] = own.phases[number - 1].seconds
        return {"available_seconds": self.total_seconds, "method_seconds": own.seconds}


def note_record(phrases: Phrases, note: Note) -> NoteRecord:
    """How a record lists one of its method's notes: a method's own with its heading and name."""
    if note.builtin:
        return {"key": note.key, "list": note.running}
    return {"key": note.key, "list": note.running, "heading": note.heading, "name": note_name(phrases, note)}
