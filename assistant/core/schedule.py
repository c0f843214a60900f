"""The schedule of a phase: its runs, the moments the device speaks, and time balance.

Pure arithmetic on active seconds (time that stands still while the session is paused);
the session (:mod:`assistant.core.session`) decides when to use it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from assistant.core.method import Method, Note, Phase
from assistant.core.notes import NoteRun
from assistant.core.phrases import Phrases
from assistant.core.record import CaptureItem, SessionRecord, accepted_text
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
    people: int = 0
    """How many the round goes past: the group's size when the phase began (0: not known)."""
    marks: list[Mark] = field(default_factory=list)
    note: NoteRun | None = None
    """What the device writes down in this phase, if anything."""
    extended: float = 0.0
    """Seconds added to :attr:`planned` after its time was up (a double press: more time)."""

    def active(self, now: float) -> float:
        """Active seconds spent in the phase up to ``now``."""
        if self.stretch_start is None:
            return self.active_before
        return self.active_before + max(0.0, now - self.stretch_start)

    def left(self, now: float) -> float:
        """Seconds left (negative in overtime)."""
        return self.planned - self.active(now)


HALF_MINUTE = 30.0
"""A shortened phase lasts whole or half minutes: lengths people say ("4 en een halve minuut")."""


def behind_plan(runs: list[PhaseRun]) -> float:
    """Seconds the phases in ``runs`` took beyond their method's plan, together (negative
    when they took less). Counted against the method's lengths, not the shortened ones, so
    a shortened phase that kept to its new length has made up the difference."""
    return sum(r.active_before - r.phase.seconds for r in runs)


def balanced_length(
    method: Method, runs: list[PhaseRun], schedule: ScheduleSettings, index: int, own: Method | None = None
) -> float:
    """Phase ``index``'s length in seconds when the schedule keeps the end time.

    When the phases in ``runs`` put the session behind the plan by at least
    ``small_overrun_seconds`` (a few seconds to press are no overrun), each phase still
    to come takes its share of the delay in proportion to its length, in seconds; the
    result is rounded to the nearest half minute (a share under 15 s shortens nothing:
    it is balanced by a later phase), never below the floor, never a firm phase.

    ``own`` is the method as written when ``method`` was fitted into a shorter session
    (:mod:`assistant.core.fitting`): the floor is a share of the phase's own length, so a
    fitted phase is not halved twice.
    """
    phase = method.phases[index]
    if schedule.mode != "keep_end" or not phase.flexible:
        return phase.seconds
    behind = behind_plan(runs)
    if behind <= 0 or behind < schedule.small_overrun_seconds:
        return phase.seconds
    flexible = sum(p.seconds for p in method.phases[index:] if p.flexible)
    share = behind * phase.seconds / flexible
    nominal = own.phases[index].seconds if own is not None else phase.seconds
    floor = math.ceil(nominal * schedule.floor_fraction / HALF_MINUTE) * HALF_MINUTE
    length = math.floor((phase.seconds - share) / HALF_MINUTE + 0.5) * HALF_MINUTE
    return min(phase.seconds, max(floor, length))


def marks_for(a: AnnouncementSettings, planned: float, nominal: float | None = None) -> list[Mark]:
    """The moments a phase of ``planned`` seconds is announced: halfway, minutes left,
    time up and the overtime reminders, in order.

    Whether it gets a halfway mark depends on its ``nominal`` length in the method (its
    planned length when not given): a 10-minute phase shortened to 9 keeps its halfway mark.
    """
    marks: list[Mark] = []
    if a.halfway and (planned if nominal is None else nominal) >= a.halfway_min_minutes * 60:
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


def _half_minutes(seconds: float) -> int | None:
    """How many half minutes ``seconds`` is, when it is an odd number of them of at least
    one and a half minutes (None otherwise: say it as :meth:`Phrases.duration` does)."""
    halves = seconds / HALF_MINUTE
    if halves >= 3 and halves == int(halves) and int(halves) % 2 == 1:
        return int(halves)
    return None


def spoken_length(p: Phrases, seconds: float) -> str:
    """A phase's length as people say it, half minutes included ("4 en een halve minuut",
    "anderhalve minuut", "een halve minuut", "5 minuten")."""
    halves = _half_minutes(seconds)
    if halves is not None:
        return p.say("minutes_and_half", n=halves // 2)
    if seconds == HALF_MINUTE:
        return p.minutes(0.5)
    return p.duration(seconds)


def spoken_number(p: Phrases, seconds: float) -> str:
    """A length of whole or half minutes as a number without its unit, for "4 in plaats van
    5 minuten" ("4", "4 en een half", "anderhalf")."""
    halves = _half_minutes(seconds)
    if halves is not None:
        return p.say("number_and_half", n=halves // 2)
    return str(max(1, round(seconds / 60)))


def phase_intro(p: Phrases, phase: Phase, number: int, planned: float) -> str:
    """What the device says as a phase starts: number, name, length (and the planned
    length when time balance shortened it: "4 in plaats van 5 minuten"), then the method's
    guidance."""
    if planned < phase.seconds:
        # Both in minutes: the unit is said once, after the plan.
        short = spoken_number(p, planned) if planned >= 60 else spoken_length(p, planned)
        head = p.say(
            "phase_shortened",
            number=number,
            name=phase.name,
            duration=short,
            planned=spoken_length(p, phase.seconds),
        )
    else:
        head = p.say("phase", number=number, name=phase.name, duration=spoken_length(p, planned))
    return f"{head} {phase.guidance}"


def mark_text(p: Phrases, mark: Mark, planned: float, last_phase: bool, hint: str = "") -> str:
    """What the device says at a mark of a phase of ``planned`` seconds; ``hint`` (that a
    double press gives more time) follows time up and the overtime reminders."""
    # A shortened phase's marks fall on half minutes too: "Nog 4 en een halve minuut".
    if mark.kind == "halfway":
        return p.say("halfway", duration=spoken_length(p, planned - mark.at))
    if mark.kind == "left":
        return p.say("time_left", duration=spoken_length(p, planned - mark.at))
    if mark.kind == "time_up":
        return _hinted(p.say("time_up_last" if last_phase else "time_up"), hint)
    return _hinted(p.say("overtime", duration=p.duration(mark.at - planned)), hint)


def _hinted(text: str, hint: str) -> str:
    return f"{text} {hint}" if hint else text


def more_time_hint(p: Phrases, extend_minutes: float) -> str:
    """The sentence after "time is up" that a double press gives more time ("" when it gives none)."""
    if extend_minutes <= 0:
        return ""
    return p.say("more_time_hint", duration=spoken_length(p, extend_minutes * 60))


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


def recap(p: Phrases, captures: dict[str, list[CaptureItem]], notes: Sequence[Note]) -> str:
    """What the device reads at the end of a session of what was kept, so the case-giver
    can write it down: each single note's kept text, then how many items of each running
    note (ideas, closing sentences, a method's advice) were noted, in the method's order.
    A note not kept is left out; "" when nothing was kept at all."""
    kept: SessionRecord = {"captures": captures}
    lines = []
    for note in notes:
        text = accepted_text(kept, note.key) if not note.running else ""
        if not text:
            continue
        if note.builtin:
            lines.append(p.say(f"recap_{note.key}", text=text))
        else:
            lines.append(p.say("recap_note", name=note.name[:1].upper() + note.name[1:], text=text))
    numbers = [(note, n) for note in notes if note.running and (n := _kept_items(captures, note.key))]
    if numbers:
        counts = [p.say(f"recap_{note.key}", n=n) if note.builtin else note.count(n) for note, n in numbers]
        counted = counts[0] if len(counts) == 1 else p.say("recap_and", first=", ".join(counts[:-1]), second=counts[-1])
        # The verb agrees with what was counted: "Er is één idee", "Er zijn 5 ideeën",
        # "Er zijn één idee en 4 afsluitende zinnen".
        one = len(numbers) == 1 and numbers[0][1] == 1
        lines.append(p.say("recap_counted", n=1 if one else 2, counts=counted))
    if not lines:
        return ""
    return " ".join([p.say("recap_intro"), *lines])


def _kept_items(captures: dict[str, list[CaptureItem]], kind: str) -> int:
    """How many items of a running note were kept (every one with text)."""
    return sum(1 for item in captures.get(kind, []) if item.get("accepted") and item.get("text"))


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


def phase_texts(p: Phrases, method: Method, announcements: AnnouncementSettings, hint: str = "") -> list[str]:
    """Every phase's introduction and its marks at the planned length, to be rendered ahead of time."""
    texts = []
    for number, phase in enumerate(method.phases, start=1):
        texts.append(phase_intro(p, phase, number, phase.seconds))
        for mark in marks_for(announcements, phase.seconds):
            if mark.kind in ("halfway", "left", "overtime"):
                texts.append(mark_text(p, mark, phase.seconds, last_phase=False, hint=hint))
    return texts
