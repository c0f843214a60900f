"""The schedule of a phase: its runs, the moments the device speaks, and time balance.

Pure arithmetic on active seconds (time that stands still while the session is paused);
the session (:mod:`assistant.core.session`) decides when to use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from assistant.core.method import Method, Phase
from assistant.core.notes import NoteRun
from assistant.core.phrases import Phrases
from assistant.core.settings import AnnouncementSettings, ScheduleSettings

MIN_MARK_GAP = 30.0
"""Two announcements closer together than this (seconds) are one too many: the later one is kept."""


@dataclass
class Mark:
    """A moment in a phase (active seconds from its start) at which the device speaks."""

    at: float
    kind: str
    """"halfway", "left", "time_up" or "overtime"."""
    done: bool = False


@dataclass
class PhaseRun:
    """What happened in one phase."""

    phase: Phase
    planned: float
    """Length in seconds for this run (shorter than the method's when time was balanced)."""
    started: float
    """Session time the phase began."""
    active_before: float = 0.0
    """Active seconds accumulated before the current (un)paused stretch."""
    stretch_start: float | None = None
    """Session time the current running stretch began; None while paused or ended."""
    ended: float | None = None
    paused_total: float = 0.0
    person: int = 1
    """Whose turn it is in a round phase (1-based); one past the last when all have spoken."""
    marks: list[Mark] = field(default_factory=list)
    note: NoteRun | None = None
    """What the device writes down in this phase, if anything."""

    def active(self, now: float) -> float:
        """Active seconds spent in the phase up to ``now``."""
        if self.stretch_start is None:
            return self.active_before
        return self.active_before + max(0.0, now - self.stretch_start)

    def left(self, now: float) -> float:
        """Seconds left (negative in overtime)."""
        return self.planned - self.active(now)


def balanced_length(method: Method, runs: list[PhaseRun], schedule: ScheduleSettings, index: int) -> float:
    """Phase ``index``'s length in seconds, shortened in proportion when the phases in
    ``runs`` overran and the schedule keeps the end time (never below its floor, never a
    phase the method marks as firm)."""
    phase = method.phases[index]
    if schedule.mode != "keep_end" or not phase.flexible:
        return phase.seconds
    overrun = sum(r.active_before - r.phase.seconds for r in runs)
    if overrun <= 0:
        return phase.seconds
    still_to_come = method.phases[index:]
    budget = sum(p.seconds for p in still_to_come) - overrun
    fixed = sum(p.seconds for p in still_to_come if not p.flexible)
    flexible = sum(p.seconds for p in still_to_come if p.flexible)
    factor = max(0.0, budget - fixed) / flexible
    floor_minutes = math.ceil(phase.minutes * schedule.floor_fraction)
    minutes = max(floor_minutes, math.floor(phase.minutes * factor))
    return float(min(phase.minutes, minutes)) * 60.0


def marks_for(a: AnnouncementSettings, planned: float) -> list[Mark]:
    """The moments a phase of ``planned`` seconds is announced: halfway, minutes left,
    time up and the overtime reminders, in order."""
    marks: list[Mark] = []
    if a.halfway and planned >= a.halfway_min_minutes * 60:
        marks.append(Mark(planned / 2, "halfway"))
    for minutes in a.minutes_left:
        at = planned - minutes * 60
        if at >= MIN_MARK_GAP:
            marks.append(Mark(at, "left"))
    marks.sort(key=lambda m: m.at)
    # Drop an announcement that would come right before another one.
    kept: list[Mark] = []
    for mark in marks:
        if kept and mark.at - kept[-1].at < MIN_MARK_GAP:
            kept.pop()
        kept.append(mark)
    if a.time_up:
        kept.append(Mark(planned, "time_up"))
    if a.overtime_reminder_minutes > 0:
        step = a.overtime_reminder_minutes * 60
        kept.extend(Mark(planned + step * k, "overtime") for k in range(1, a.overtime_max_reminders + 1))
    return kept


def phase_intro(p: Phrases, phase: Phase, number: int, planned: float) -> str:
    """What the device says as a phase starts: number, name, length (and the planned
    length when time balance shortened it), then the method's guidance."""
    if planned < phase.seconds:
        head = p.say(
            "phase_shortened",
            number=number,
            name=phase.name,
            duration=p.duration(planned),
            planned=p.duration(phase.seconds),
        )
    else:
        head = p.say("phase", number=number, name=phase.name, duration=p.duration(planned))
    return f"{head} {phase.guidance}"


def mark_text(p: Phrases, mark: Mark, planned: float, last_phase: bool) -> str:
    """What the device says at a mark of a phase of ``planned`` seconds."""
    if mark.kind == "halfway":
        return p.say("halfway", duration=p.duration(planned - mark.at))
    if mark.kind == "left":
        return p.say("time_left", duration=p.duration(planned - mark.at))
    if mark.kind == "time_up":
        return p.say("time_up_last" if last_phase else "time_up")
    return p.say("overtime", duration=p.duration(mark.at - planned))


def summary(p: Phrases, method: Method, runs: list[PhaseRun]) -> str:
    """What the device says when the session ends: each phase's actual time against its plan."""
    lines = [p.say("summary_intro")]
    for run in runs:
        lines.append(
            p.say(
                "summary_phase",
                number=run.phase.number,
                actual=p.duration(run.active_before),
                planned=p.duration(run.phase.seconds),
            )
        )
    total_actual = sum(r.active_before for r in runs)
    lines.append(p.say("summary_total", actual=p.duration(total_actual), planned=p.duration(method.seconds)))
    return " ".join(lines)


def fixed_texts(p: Phrases, participants: int) -> list[str]:
    """Texts every session will certainly say (gestures, rounds, pauses, status), to be
    rendered ahead of time."""
    texts = [
        p.say("gestures"),
        p.say("round_done"),
        p.say("round_done_last"),
        p.say("time_up"),
        p.say("time_up_last"),
        p.say("paused"),
        p.say("status_idle"),
        p.say("status_finished"),
    ]
    for n in range(2, max(participants, 1) + 1):
        texts.append(f"{p.say('next_person')} {p.say('people_left', n=n)}")
    texts.append(f"{p.say('next_person')} {p.say('last_person')}")
    return texts


def phase_texts(p: Phrases, method: Method, announcements: AnnouncementSettings) -> list[str]:
    """Every phase's introduction and its marks at the planned length, to be rendered ahead of time."""
    texts = []
    for number, phase in enumerate(method.phases, start=1):
        texts.append(phase_intro(p, phase, number, phase.seconds))
        for mark in marks_for(announcements, phase.seconds):
            if mark.kind in ("halfway", "left", "overtime"):
                texts.append(mark_text(p, mark, phase.seconds, last_phase=False))
    return texts
