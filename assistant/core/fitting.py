"""Fitting a method into the time a group has (``[schedule] total_minutes``, or "we hebben
een uur" said at the table), and the clock time a session ends.

Pure arithmetic on a :class:`~assistant.core.method.Method`: the fitted plan is a copy of
the method whose flexible phases are shorter, so everything that works from a phase's
length (announcements, time balance, the record) works from the fitted one.

- A total at least as long as the method changes nothing: the method's lengths are its
  designers' choice, and a group with time to spare simply ends early.
- A shorter total shortens the flexible phases in proportion to their length, to whole
  or half minutes, none below half its length (:data:`FIT_FLOOR`); firm phases
  (``flexible = false``) keep theirs. When even that is longer than the total, every
  flexible phase gets half its length: the shortest the method can be.
"""

from __future__ import annotations

import dataclasses
import math

from assistant.core.method import Method

FIT_FLOOR = 0.5
"""A phase fitted into a shorter session keeps at least this share of its length."""
STEP = 30.0
"""Fitted lengths are whole or half minutes (seconds)."""
DAY = 24 * 3600.0


def _floor(seconds: float) -> float:
    """The shortest a phase of ``seconds`` may be fitted to: half, rounded up to a half minute."""
    return min(seconds, math.ceil(seconds * FIT_FLOOR / STEP) * STEP)


def shortest_seconds(method: Method) -> float:
    """The shortest ``method`` can be fitted to: firm phases whole, flexible ones at half."""
    return sum(_floor(p.seconds) if p.flexible else p.seconds for p in method.phases)


def fitted_lengths(method: Method, total_seconds: float) -> list[float]:
    """Each phase's length in seconds when the session has ``total_seconds`` (0: no limit)."""
    own = [p.seconds for p in method.phases]
    if total_seconds <= 0 or total_seconds >= method.seconds:
        return own
    flexible = [i for i, p in enumerate(method.phases) if p.flexible]
    budget = total_seconds - sum(s for i, s in enumerate(own) if i not in flexible)
    floors = {i: _floor(own[i]) for i in flexible}
    if budget <= sum(floors.values()):
        return [floors.get(i, s) for i, s in enumerate(own)]
    # Shrink in proportion; a phase that would go below its floor stays at it and the
    # others share the rest (repeated until none does).
    at_floor: set[int] = set()
    while True:
        free = [i for i in flexible if i not in at_floor]
        scale = (budget - sum(floors[i] for i in at_floor)) / sum(own[i] for i in free)
        below = {i for i in free if own[i] * scale < floors[i]}
        if not below:
            break
        at_floor |= below
    ideal = {i: floors[i] if i in at_floor else own[i] * scale for i in flexible}
    # Whole or half minutes, and the half minutes left over go to the phases that lost
    # most by rounding down, so the session fills the time it has without going over.
    lengths = {i: max(floors[i], math.floor(ideal[i] / STEP) * STEP) for i in flexible}
    spare = int((budget - sum(lengths.values())) // STEP)
    for i in sorted(flexible, key=lambda i: (lengths[i] - ideal[i], i))[: max(0, spare)]:
        if lengths[i] + STEP <= own[i]:
            lengths[i] += STEP
    return [lengths.get(i, s) for i, s in enumerate(own)]


def fitted_method(method: Method, total_seconds: float) -> Method:
    """``method`` with its phases fitted into ``total_seconds`` (itself when nothing changes)."""
    lengths = fitted_lengths(method, total_seconds)
    if lengths == [p.seconds for p in method.phases]:
        return method
    phases = tuple(dataclasses.replace(p, minutes=s / 60) for p, s in zip(method.phases, lengths, strict=True))
    return dataclasses.replace(method, phases=phases)


def end_of_day_seconds(start: float, seconds: float) -> tuple[int, int]:
    """The clock time (hour, minute) ``seconds`` after ``start`` (seconds since local midnight),
    rounded to the minute."""
    end = round((start + seconds) / 60) * 60 % DAY
    return int(end // 3600), int(end % 3600 // 60)
