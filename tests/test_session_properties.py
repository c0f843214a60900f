"""The session under random use: whatever the group does with the button, the clock,
the speech recogniser and the power switch, the device keeps time correctly and its
journal always rebuilds exactly the state the live session has.

A hypothesis state machine drives the real daemon loop (``Daemon.step``) with its real
journal in a temporary folder, on clocks the test moves, for the intervision method and
a short one of the test's own (a round that takes a note, a firm phase in the middle). The test keeps its own model
of the session (phase, person, paused or not, and the active and paused seconds of the
phase, counted on its own clock), and after every step checks the device against it:

- phases only move forward, one at a time, and only on a press (a restart resumes the
  same phase; a session left too long is closed and kept as unfinished);
- the time left is the plan minus the active time the model counted, and the plan is the
  method's (with time balance: shortened, within its bounds, only after an overrun);
- a pause freezes the clock: no active time passes and nothing is announced;
- replaying the journal on disk gives the state of the live session, at every step;
- a finished session's record has the active and paused time the model counted.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import event as observe
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from support import Recorder

from assistant.config import load_method, load_phrases
from assistant.core.clock import FakeClock, SessionClock
from assistant.core.events import (
    LISTENER_STATES,
    ButtonDown,
    Captured,
    DoublePress,
    Event,
    Heard,
    ListenerState,
    LongPress,
    Press,
    Tick,
    VoiceCommand,
    event_from_dict,
)
from assistant.core.headcount import FIRST_PRESS_SECONDS, MAX_COUNT, SETTLE_SECONDS, counts_heads
from assistant.core.method import CAPTURE_KINDS, SINGLE_NOTES, Method, Phase
from assistant.core.session import COUNTING, FINISHED, IDLE, RUNNING, Session
from assistant.core.settings import ScheduleSettings, SessionSettings, Settings
from assistant.service.daemon import Daemon
from assistant.storage.journal import Journal
from assistant.storage.records import record_paths

pytestmark = pytest.mark.slow  # a long random walk through sessions (hypothesis)


def _phase(number: int, key: str, minutes: float, **kw: Any) -> Phase:
    return Phase(number=number, key=key, name=key, minutes=minutes, guidance=f"Dit is {key}.", **kw)


METHODS = {
    "intervisie": load_method("intervisie", "nl"),
    # Short phases, a round that takes a single note, and a firm phase in the middle of
    # the flexible ones: the corners the intervision method does not reach.
    "kort": Method(
        id="kort",
        name="korte test",
        phases=(
            _phase(1, "rond", 2, round=True, capture="leervraag", invite_minutes_left=1),
            _phase(2, "vast", 1.5, flexible=False, capture="ideas"),
            _phase(3, "kern", 3, capture="actieplan", invite_minutes_left=0.5),
            _phase(4, "kort", 0.5),
            _phase(5, "slot", 1, round=True, capture="takeaways"),
        ),
        path="(test)",
    ),
}
PHRASES = load_phrases("nl")
RESUME_WITHIN = 60 * 60.0
EPS = 1e-6
GESTURES = (ButtonDown, Press, DoublePress, LongPress, VoiceCommand)


def replayed(data: Path, live: Session) -> Session | None:
    """The session rebuilt from the journal on disk, the way the daemon does after a restart."""
    pending = Journal(data).pending()
    if pending is None:
        return None
    # A session that waits for the last words after the last press waits as long here.
    waits = {"last_words_seconds": live.last_words_seconds} if hasattr(live, "last_words_seconds") else {}
    session = Session(
        live.method,
        PHRASES,
        live.announcements,
        live.schedule,
        int(pending.header["participants"]),
        first_person_hint=live.notes.first_person_hint,
        previous_actieplan=live.previous_actieplan,
        count_group=live.count_group,
        privacy_notice=live.notes.privacy_notice,
        **waits,
    )
    session.notes.listener = str(pending.header.get("listener", "off"))
    for entry in pending.entries:
        session.handle(event_from_dict(entry), float(entry["t"]))
    return session


def state(session: Session, now: float) -> dict[str, Any]:
    """Everything about a session that matters for what it does next."""
    return {
        "status": session.status,
        "paused_since": session.paused_since,
        "started": session.started,
        "record": session.record(now),
        "runs": [
            {
                "phase": run.phase.number,
                "planned": run.planned,
                "started": run.started,
                "active_before": run.active_before,
                "stretch_start": run.stretch_start,
                "ended": run.ended,
                "paused_total": run.paused_total,
                "extended": run.extended,
                "person": run.person,
                "marks": [(m.at, m.kind, m.done) for m in run.marks],
                "note": dataclasses.asdict(run.note) if run.note is not None else None,
            }
            for run in session.runs
        ],
        "captures": json.loads(json.dumps(session.captures)),
        "listener": session.notes.listener,
        "told_unavailable": session.notes.told_unavailable,
        "told_privacy": session.notes.told_privacy,
        "count": dataclasses.asdict(session.count) if session.count is not None else None,
        "participants": session.participants,
        "last_words_until": getattr(session, "last_words_until", None),
    }


# Time steps: a moment, a minute or two, a long stretch. Quarter seconds keep the sums exact.
STEPS = st.one_of(st.integers(0, 8), st.integers(8, 480), st.integers(480, 16000)).map(lambda q: q / 4)
TEXTS = st.sampled_from(["", "ik wil leren hoe ik rustig blijf", "de leerling", "  ", "mijn plan: eerst luisteren"])


class SessionMachine(RuleBasedStateMachine):
    """A group, a device and a power switch, against a model of what must happen."""

    def __init__(self) -> None:
        super().__init__()
        # In memory where the machine has it: the journal's fsync per event is the same
        # code there, without the disk's wait (thousands of steps per run).
        shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        self.folder = Path(tempfile.mkdtemp(prefix="intervisie-state-", dir=shm))
        self.data = self.folder / "data"
        self.mono, self.wall = FakeClock(1000.0), FakeClock(1_800_000_000.0)
        self.t = 0.0
        """Session time by the model's own count."""

    # --- the device ----------------------------------------------------------------

    @initialize(
        participants=st.sampled_from([0, 1, 3]),
        mode=st.sampled_from(["fixed", "keep_end"]),
        recogniser=st.sampled_from(["ready", "off", "loading"]),
        method=st.sampled_from(sorted(METHODS)),
    )
    def switch_on(self, participants: int, mode: str, recogniser: str, method: str) -> None:
        self.method = METHODS[method]
        self.settings = Settings(
            data_dir=str(self.data),
            participants=participants,
            schedule=ScheduleSettings(mode=mode),
            session=SessionSettings(resume_within_minutes=RESUME_WITHIN / 60),
        )
        self.records = 0
        """Sessions kept on disk (finished or closed unfinished)."""
        self._new_model_session()
        self.listener = "off"
        self.daemon = self._boot()
        self._recogniser(recogniser)

    def _recogniser(self, state: str) -> None:
        """The listener reports its state (the model loads while the device speaks)."""
        if state != "off":
            self._step(ListenerState(state))
            self.listener = state

    def _boot(self) -> Daemon:
        self.speaker = Recorder()
        self.journal = Journal(self.data)
        daemon = Daemon(
            self.settings,
            self.method,
            PHRASES,
            self.speaker,
            self.journal,
            SessionClock(1.0, monotonic=self.mono),
            wall=self.wall,
        )
        daemon.start_up()
        return daemon

    def _new_model_session(self) -> None:
        self.status = IDLE
        self.last_words_due = math.inf
        """Session time at which a finished session's record stops waiting for last words."""
        self.index = -1
        """0-based index of the running phase."""
        self.person = 1
        self.paused = False
        self.active = 0.0
        """Active seconds of the running phase."""
        self.paused_for = 0.0
        """Paused seconds of the running phase."""
        self.history: list[tuple[float, float]] = []
        """(active, paused) seconds of the phases already ended."""
        self.note_made = False
        """The running phase takes a note (the recogniser was not off when it began)."""
        self.participants = self.settings.participants
        """The group's size as the device should know it (counted or said)."""
        self.round_people = 0
        """The size the running round goes past (the group's size when it began)."""
        self.counted = 0
        """While the group is counted: how many so far."""
        self.count_due = math.inf
        """While the group is counted: session time at which the count is done."""

    @property
    def session(self) -> Session:
        return self.daemon.session

    def teardown(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    # --- time ------------------------------------------------------------------------

    def _pass(self, seconds: float) -> None:
        """The model's clock: active time passes only while a phase runs unpaused."""
        self.t += seconds
        if self.status == RUNNING:
            if self.paused:
                self.paused_for += seconds
            else:
                self.active += seconds

    def _wait(self, seconds: float) -> None:
        """Time passes on the device; due announcements are made as the daemon loop makes them."""
        end = self.mono.t + seconds
        while True:
            due = self.session.next_deadline()
            now = self.daemon.clock.now()
            if self.paused:
                assert due is None, "nothing is announced during a pause"
            if due is None or due - now > end - self.mono.t:
                break
            step = max(0.0, due - now)
            self._move(step)
            said = len(self.speaker.said)
            self._step(Tick())
            moved_on = len(self.speaker.said) > said or self.session.next_deadline() != due
            assert self.session.status != RUNNING or moved_on, "a due announcement is made once, not forever"
        self._move(end - self.mono.t)

    def _move(self, seconds: float) -> None:
        self.mono.advance(seconds)
        self.wall.advance(seconds)
        self._pass(seconds)

    @rule(seconds=STEPS)
    def time_passes(self, seconds: float) -> None:
        self._wait(seconds)

    @precondition(lambda self: self.status == RUNNING and not self.paused)
    @rule(offset=st.sampled_from([-1.0, -0.25, 0.0, 0.25, 1.0, 61.0, 200.0, 400.0]))
    def time_runs_to_the_end_of_the_phase(self, offset: float) -> None:
        """Right up to, onto and past the end of the phase, into overtime."""
        run = self.session.current
        assert run is not None
        self._wait(max(0.0, run.planned - self.active + offset))

    @rule()
    def a_stray_tick(self) -> None:
        """The loop also wakes up when nothing is due (its longest sleep)."""
        said = len(self.speaker.said)
        self._step(Tick())
        if self.paused:
            assert len(self.speaker.said) == said, "nothing is announced during a pause"

    # --- gestures ----------------------------------------------------------------------

    def _step(self, event: Event) -> None:
        # After the last press a record may wait for the last words of a running note: a
        # gesture, what is heard, or the end of the wait completes it.
        completes = self.status == FINISHED and (
            isinstance(event, (*GESTURES, Heard)) or (isinstance(event, Tick) and self.t >= self.last_words_due - EPS)
        )
        counting = self.status == COUNTING
        ends = self._count(event) if counting else False
        self.daemon.step(event)
        if counting and (ends or self.session.status == RUNNING):
            assert ends, "the count ends on a due tick, on 'volgende' or on a number said"
            self._counted()
        elif isinstance(event, VoiceCommand) and event.command.startswith("group:") and self.status == RUNNING:
            self.participants = int(event.command.split(":")[1])  # from the next round on
        if completes:
            self._record_kept()

    def _count(self, event: Event) -> bool:
        """The model of the count (see assistant.core.headcount); True when ``event`` ends it."""
        if isinstance(event, (Press, DoublePress)):
            self.counted = min(MAX_COUNT, self.counted + (2 if isinstance(event, DoublePress) else 1))
            self.count_due = self.t + SETTLE_SECONDS
        elif isinstance(event, LongPress) or (isinstance(event, VoiceCommand) and event.command == "pause"):
            self._ask(self.t)
        elif isinstance(event, VoiceCommand) and event.command.startswith("group:"):
            self.counted = int(event.command.split(":")[1])
            return True
        elif isinstance(event, VoiceCommand) and event.command == "next":
            return True
        elif isinstance(event, Tick):
            return self.t >= self.count_due - EPS
        return False

    def _ask(self, at: float) -> None:
        self.status = COUNTING
        self.counted = 0
        self.count_due = at + FIRST_PRESS_SECONDS

    def _counted(self) -> None:
        observe("counted the group")
        if self.counted > 1:
            self.participants = self.counted
        assert self.session.participants == self.participants, "the rounds use the count"
        self.status, self.index = RUNNING, 0
        self._phase_began()

    def _press(self, event: Event) -> None:
        uncertain = self._note_may_take_the_press()
        before = self._where()
        if self.status == COUNTING:
            self._step(event)
            return
        self._step(event)
        if self.status == IDLE:
            # A start press begins at once: the count is only asked for with a long press.
            self.status, self.index = RUNNING, 0
            self._phase_began()
            return
        if self.paused:
            return
        if uncertain and self._where() == before:
            observe("a note took the press")
            return  # the note took the press (invite, end the recording, keep it)
        phase = self.method.phases[self.index]
        if phase.round and self.round_people > 1 and self.person <= self.round_people:
            self.person += 1
            return
        self.history.append((self.active, self.paused_for))
        if self.index + 1 == len(self.method.phases):
            if self.session.status == FINISHED:
                observe("the record waits for the last words")
                self.status = FINISHED
                self.last_words_due = self.t + self.session.last_words_seconds
            else:
                self._record_kept()
            return
        self.index += 1
        self._phase_began()

    def _where(self) -> tuple[int, int] | None:
        """The device's phase and person: only to tell whether a note used a press."""
        run = self.session.current
        return (run.phase.number, run.person) if run is not None else None

    def _note_may_take_the_press(self) -> bool:
        """Whether a single note in this phase may use a press instead of moving on."""
        if self.status != RUNNING or not self.note_made:
            return False
        return self.method.phases[self.index].capture in SINGLE_NOTES

    def _phase_began(self) -> None:
        observe(f"reached phase {self.index + 1}")
        self.person = 1
        self.round_people = self.participants if self.method.phases[self.index].round else 0
        self.active = self.paused_for = 0.0
        self.note_made = self.listener != "off" and bool(self.method.phases[self.index].capture)
        run = self.session.current
        assert run is not None
        assert run.planned == self._expected_length(), "the plan of the phase that begins"

    def _expected_length(self) -> float:
        """The README's time balance: once the session is at least ``small_overrun_seconds``
        behind the plan, the phases still to come share the delay in proportion (in seconds,
        rounded to the nearest half minute), never below their floor (rounded up to a half
        minute) and never longer than planned; a firm phase and the "fixed" mode keep it all."""
        phase = self.method.phases[self.index]
        schedule = self.settings.schedule
        overrun = sum(active - p.seconds for (active, _), p in zip(self.history, self.method.phases, strict=False))
        if schedule.mode == "fixed" or not phase.flexible or overrun <= 0 or overrun < schedule.small_overrun_seconds:
            return phase.seconds
        flexible = sum(p.seconds for p in self.method.phases[self.index :] if p.flexible)
        share = math.floor((phase.seconds - overrun * phase.seconds / flexible) / 30 + 0.5) * 30
        floor = math.ceil(phase.seconds * schedule.floor_fraction / 30) * 30
        return min(phase.seconds, max(floor, share))

    def _record_kept(self) -> None:
        observe("finished a session")
        assert self.daemon.session.last_words_until is None, "the record is kept only after the last words"
        self.records += 1
        kept = self.daemon.finished_records[-1]["id"]
        [path] = [p for p in record_paths(self.data) if p.stem == kept]
        newest = json.loads(path.read_text())
        assert newest["finished"] is True
        actual = [(p["actual_seconds"], p["paused_seconds"]) for p in newest["phases"]]
        expected = [(round(a, 3), round(p, 3)) for a, p in self.history]
        assert len(actual) == len(expected) == len(self.method.phases)
        assert all(abs(a - ea) < 2e-3 and abs(p - ep) < 2e-3 for (a, p), (ea, ep) in zip(actual, expected, strict=False)), (
            actual,
            expected,
        )
        self._new_model_session()

    @rule()
    def press(self) -> None:
        self._press(Press())

    @rule()
    def press_again(self) -> None:
        """Presses are what a group does most (this rule makes them twice as likely)."""
        self._press(Press())

    @rule()
    def say_next_phase(self) -> None:
        self._press(VoiceCommand("next"))

    @rule()
    def double_press(self) -> None:
        self._more_time_or_status(DoublePress())

    @rule()
    def say_more_time(self) -> None:
        self._more_time_or_status(VoiceCommand("more_time"))

    def _more_time_or_status(self, event: Event) -> None:
        """Once a running phase's time is up a double press (or "vijf minuten erbij") gives
        it ``extend_minutes`` more from now (unless a note takes it); before, it changes nothing."""
        run = self.session.current
        now = self.daemon.clock.now()
        before = (run.planned, run.left(now), run.extended) if run is not None else None
        self._step(event)
        if run is None or before is None or self.session.current is not run:
            return
        if run.planned == before[0]:
            return
        observe("more time for a phase")
        extend = self.settings.schedule.extend_minutes * 60
        assert before[1] <= EPS and not self.paused, "more time only in a running phase whose time is up"
        assert abs(run.left(now) - extend) < EPS, "the phase has extend_minutes left"
        assert abs(run.extended - before[2] - (extend - before[1])) < EPS, "the record keeps what was added"

    @rule()
    def button_goes_down(self) -> None:
        self._step(ButtonDown())

    def _toggle_pause(self, event: Event) -> None:
        if self.status == IDLE and isinstance(event, LongPress) and counts_heads(self.method, self.settings.participants):
            self._step(event)
            observe("a long press before the start counts the group")
            self._ask(self.t)
            return
        self._step(event)
        if self.status == RUNNING:
            self.paused = not self.paused
            if self.paused:
                said = self.speaker.said[-1]
                assert said == PHRASES.say("paused"), said

    @rule()
    def long_press(self) -> None:
        self._toggle_pause(LongPress())

    @rule()
    def say_pause(self) -> None:
        self._toggle_pause(VoiceCommand("pause"))

    @rule(size=st.integers(2, 12))
    def say_the_group_size(self, size: int) -> None:
        if self.status == IDLE:
            # Said before the start: the session begins with that number.
            self._step(VoiceCommand(f"group:{size}"))
            observe("the group size said before the start")
            self.participants = size
            assert self.session.participants == size
            self.status, self.index = RUNNING, 0
            self._phase_began()
            return
        self._step(VoiceCommand(f"group:{size}"))

    @rule(command=st.sampled_from(["status", "repeat"]))
    def ask_for_the_time(self, command: str) -> None:
        self._step(VoiceCommand(command))

    @precondition(lambda self: self.status == RUNNING and self.session.current and self.session.current.note)
    @rule(text=TEXTS, again=st.booleans())
    def the_group_takes_the_note(self, text: str, again: bool) -> None:
        """The next step a group takes with the phase's note: ask for it, say it, keep it or say it again."""
        run = self.session.current
        assert run is not None and run.note is not None
        stage = run.note.stage
        if stage in ("listening", "ending", "running"):
            self.something_is_heard(run.note.kind, text, own=True)
        elif stage == "reading_back" and again:
            self.double_press()
        else:
            self.press()

    # --- the recogniser ------------------------------------------------------------------

    @rule(new=st.sampled_from(LISTENER_STATES))
    def recogniser_changes(self, new: str) -> None:
        self._step(ListenerState(new))
        self.listener = new

    @rule(kind=st.sampled_from(CAPTURE_KINDS), text=TEXTS, own=st.booleans())
    def something_is_heard(self, kind: str, text: str, own: bool) -> None:
        run = self.session.current
        if own and run is not None and run.phase.capture:
            kind = run.phase.capture
        words = [{"word": w, "conf": 0.75} for w in text.split()]
        self._step(Heard(kind=kind, text=text, words=words))

    @rule(kind=st.sampled_from(CAPTURE_KINDS), text=TEXTS, accepted=st.booleans())
    def something_is_captured(self, kind: str, text: str, accepted: bool) -> None:
        self._step(Captured(kind=kind, text=text, accepted=accepted, extra={"words": []}))

    # --- the power switch ------------------------------------------------------------------

    @rule(
        off_for=st.one_of(st.sampled_from([0.0, 30.0, RESUME_WITHIN - 1, RESUME_WITHIN + 1, 3 * RESUME_WITHIN]), STEPS),
        recogniser=st.sampled_from(["ready", "off"]),
    )
    def power_cut(self, off_for: float, recogniser: str) -> None:
        """The process is gone; after ``off_for`` seconds the device starts again."""
        pending = Journal(self.data).pending()
        self.mono.advance(off_for + 3.0)  # a new process: its monotonic clock means nothing
        self.wall.advance(off_for)
        self._pass(off_for)  # the group went on talking: that time counts
        going = self.status in (RUNNING, COUNTING)
        resumes = going and pending is not None and self.wall.t - pending.last_wall <= RESUME_WITHIN
        observe("resumed after a power cut" if resumes else f"power cut while {self.status}")
        if self.status == COUNTING and not resumes:
            self._new_model_session()  # it never began: nothing is kept
        closed = self.status != IDLE and not resumes
        finished = self.status == FINISHED
        if closed:
            self.records += 1
            self._new_model_session()
        self.listener = "off"  # the new process's recogniser has not reported yet
        self.daemon = self._boot()
        if closed:
            newest = max(record_paths(self.data), key=lambda p: p.stat().st_mtime_ns)
            assert json.loads(newest.read_text())["finished"] is finished, "kept as finished only when it was"
        if not resumes:
            self.t = 0.0  # a new session's time starts with the process
        if resumes and self.status == COUNTING:
            self._ask(self.t)  # nobody knows which presses counted: the device asks again
        if resumes:
            assert self.daemon.clock.now() == self.t or abs(self.daemon.clock.now() - self.t) < EPS
            assert self.speaker.said and "uitgevallen" in self.speaker.said[0]
        self._recogniser(recogniser)

    # --- what must always hold ------------------------------------------------------------

    @invariant()
    def the_phase_and_the_time_left_are_the_models(self) -> None:
        session, now = self.session, self.daemon.clock.now()
        assert abs(now - self.t) < EPS, "the device's clock runs with the model's"
        assert session.status == self.status
        assert session.paused == self.paused
        run = session.current
        if self.status != RUNNING:
            assert run is None and bool(session.runs) == (self.status == FINISHED)
            return
        assert run is not None
        assert run.phase.number == self.index + 1, "phases move forward one at a time, on a press"
        assert len(session.runs) == self.index + 1
        assert run.person == self.person
        assert abs(run.left(now) - (run.planned - self.active)) < EPS, "time left = plan - active time"
        assert abs(run.active(now) - self.active) < EPS
        if not self.paused:
            assert abs(run.paused_total - self.paused_for) < EPS, "every pause is counted"
        fraction = session.fraction_left(now)
        assert fraction is not None and 0.0 <= fraction <= 1.0

    @invariant()
    def the_count_never_holds_the_group_up(self) -> None:
        if self.status == COUNTING:
            assert self.session.status == COUNTING
            assert self.t < self.count_due + EPS, "the count ends when it is due"
            assert self.session.next_deadline() == pytest.approx(self.count_due)

    @invariant()
    def a_pause_freezes_the_clock(self) -> None:
        run = self.session.current
        if run is None or not self.paused:
            return
        now = self.daemon.clock.now()
        assert run.active(now) == run.active(now + 3600.0), "a paused phase's clock stands still"
        assert self.session.next_deadline() is None

    @invariant()
    def the_journal_rebuilds_the_live_session(self) -> None:
        now = self.daemon.clock.now()
        rebuilt = replayed(self.data, self.session)
        if self.session.status == IDLE:
            assert rebuilt is None, "an idle device keeps no journal"
            return
        assert rebuilt is not None
        assert state(rebuilt, now) == state(self.session, now)

    @invariant()
    def every_session_left_behind_is_kept(self) -> None:
        assert len(record_paths(self.data)) == self.records


SessionMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestSessionUnderRandomUse = SessionMachine.TestCase
