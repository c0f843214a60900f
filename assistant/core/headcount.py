"""Counting the group at the start, when no settings file says how many take part.

Rounds go round the table one person at a time, and with a number the device can say
"Volgende. Nog drie." With ``participants = 0`` and a method that has a round phase, the
greeting says that a long press first counts the group. A group that just wants to start
presses and begins at once, without a count: nobody is held up. After a long press
before the start the device asks how many they are, and

- each press counts one (a double press two); the button's own tick is the feedback;
- when no press came for :data:`SETTLE_SECONDS`, the device says the number back and
  phase 1 begins with it;
- when no press came at all within :data:`FIRST_PRESS_SECONDS` of the question, phase 1
  begins as without a count (a group that just wants to start is never held up longer);
- a long press starts the count again; "volgende" said begins at once with the count so far;
- "we zijn met vijf" said (2 to 12) ends the count with that number; said before the
  start, it begins the session with it; later in the session it corrects it: the rounds
  use it from the next round on.

The count is part of the session (its events are journaled like any other), so a power
cut during the count resumes into a fresh count, and one after it keeps the number.
Pure: no audio, no clock of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.core.events import GROUP_COMMAND
from assistant.core.method import Method
from assistant.core.phrases import Phrases

FIRST_PRESS_SECONDS = 10.0
"""Session seconds after the question within which the first counting press must come;
without one, phase 1 begins without a count. Longer than the question takes to say
(about 5 s), so the group has a few seconds after hearing it."""
SETTLE_SECONDS = 3.0
"""Session seconds without a press after which the count is done."""
MAX_COUNT = 30
"""The most the presses count (the largest ``participants`` the settings accept)."""
SPOKEN_SIZES = range(2, 13)
"""The group sizes that can be said ("we zijn met twee" to "we zijn met twaalf")."""


@dataclass
class HeadCount:
    """The count while it runs."""

    asked_at: float
    """Session time the question was asked (again)."""
    counted: int = 0
    """People counted so far."""
    last_at: float | None = None
    """Session time of the latest counting press; None before the first."""

    @property
    def due(self) -> float:
        """Session time at which the count is done if no press comes."""
        if self.last_at is None:
            return self.asked_at + FIRST_PRESS_SECONDS
        return self.last_at + SETTLE_SECONDS

    def add(self, people: int, now: float) -> None:
        """A press (1) or a double press (2) at ``now``."""
        self.counted = min(MAX_COUNT, self.counted + people)
        self.last_at = now

    def restart(self, now: float) -> None:
        """Count again from nothing, as if the question was just asked."""
        self.counted = 0
        self.last_at = None
        self.asked_at = now


def counts_heads(method: Method, participants: int) -> bool:
    """Whether a session of ``method`` begins by counting the group."""
    return participants == 0 and any(phase.round for phase in method.phases)


def group_size_command(size: int) -> str:
    """The voice command that says the group is ``size`` people."""
    return f"{GROUP_COMMAND}{size}"


def spoken_size(command: str) -> int | None:
    """The group size a voice command says, or None when it says none."""
    if not command.startswith(GROUP_COMMAND):
        return None
    number = command[len(GROUP_COMMAND):]
    if not number.isdigit() or int(number) not in SPOKEN_SIZES:
        return None
    return int(number)


def group_commands(phrases: Phrases) -> dict[str, str]:
    """The spoken commands that say the group size, as the locale's ``[commands]`` table
    holds them (command -> "phrase|phrase"): each of ``group_command``'s beginnings
    followed by each number word of ``group_numbers`` (2, 3, ... 12 in order)."""
    beginnings = [" ".join(b.lower().split()) for b in phrases.say("group_command").split("|") if b.strip()]
    numbers = [" ".join(n.lower().split()) for n in phrases.say("group_numbers").split("|")]
    return {
        group_size_command(size): "|".join(f"{b} {word}" for b in beginnings)
        for size, word in zip(SPOKEN_SIZES, numbers, strict=False)
        if word
    }


def fixed_texts(phrases: Phrases) -> list[str]:
    """What a session that counts will certainly say about it, for rendering ahead of time."""
    return [phrases.say("group_ask"), phrases.say("group_ask_again")]
