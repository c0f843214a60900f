"""Choosing the method at the table, before a session starts.

The device knows every installed method (:func:`assistant.config.installed_methods`: the
configured ``method`` first, then the other files of the methods folder). ``[methods]
offer`` limits and orders the ones a group can choose from; the configured method is
always first and is where the choice starts.

While no session runs (the idle session: not while a stopped session is offered at the
start, nor while the slip of the last one is handed over), with more than one method on
offer,

- a double press says the next method's name and planned length and that a press starts
  it, going round the offered methods;
- "methode <naam>" said (with ``[listening] voice_commands``) chooses that method and says
  it the same way;
- a press starts the method last said: the idle session is rebuilt with it at once.

With one method a double press says what it always said (that we have not begun). After a
session ends, the next one starts from the configured method again: each meeting chooses
for itself, and a device left on from last week's choice would surprise the next group.

A session resumed after a power cut or a stop goes on with the method its journal names
(:meth:`MethodChooser.find`), not the configured one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence

from assistant.core.events import METHOD_COMMAND, DoublePress, Event, VoiceCommand
from assistant.core.fitting import fitted_method
from assistant.core.method import Method
from assistant.core.phrases import Phrases
from assistant.core.settings import MethodsSettings
from assistant.service.handoff import SpeakerLike

log = logging.getLogger(__name__)


def offered_methods(installed: Sequence[Method], settings: MethodsSettings) -> list[Method]:
    """The methods a group can choose from, in order: the configured one (``installed[0]``)
    first, then those ``settings.offer`` names (all installed ones when it is empty). An id
    in ``offer`` that is not installed is one warning."""
    configured = installed[0]
    if not settings.offer:
        return list(installed)
    by_id = {m.id: m for m in installed}
    offered = [configured]
    for ident in settings.offer:
        method = by_id.get(ident)
        if method is None:
            log.warning("[methods] offer names %r, but no installed method has that id (installed: %s); it is not offered",
                        ident, ", ".join(sorted(by_id)))
        elif method not in offered:
            offered.append(method)
    return offered


def spoken_words(text: str) -> str:
    """A method's name or id as the recogniser writes it: lower case, words separated by one space."""
    return " ".join(re.sub(r"[^\w']+", " ", text.lower()).split())


class MethodChooser:
    """The offered methods and which one the next session leads."""

    def __init__(
        self,
        installed: Sequence[Method],
        settings: MethodsSettings,
        phrases: Phrases,
        speaker: SpeakerLike,
        say: Callable[[str, str], None],
        use: Callable[[Method], None],
        available_seconds: Callable[[], float] = lambda: 0.0,
    ) -> None:
        """``installed``: every loaded method, the configured one first; ``use`` makes the
        idle session lead a method (the daemon rebuilds it); ``available_seconds`` is the
        time the group has for the next session (0: the method's own length), so a chosen
        method is announced with the length it will run."""
        self.configured = installed[0]
        """The configured ``method``: where the choice starts, and where each new session starts again."""
        self.installed = {m.id: m for m in reversed(installed)}
        """Every loaded method by id (the configured one wins a shared id)."""
        self.offered = tuple(offered_methods(installed, settings))
        """The methods a double press goes round, the configured one first."""
        self.phrases = phrases
        self.speaker = speaker
        self._say = say
        self._use = use
        self._available_seconds = available_seconds
        self.index = 0
        """The offered method last said (0: the configured one)."""
        if len(self.offered) > 1:
            log.info("methods on offer at the table (a double press before the start): %s",
                     ", ".join(m.id for m in self.offered))

    @property
    def choosing(self) -> bool:
        """Whether there is anything to choose (more than one method on offer)."""
        return len(self.offered) > 1

    @property
    def chosen(self) -> Method:
        """The method the next session leads."""
        return self.offered[self.index]

    def find(self, method_id: str) -> Method | None:
        """The installed method with this id (from a journal), or None."""
        return self.installed.get(method_id)

    def reset(self) -> Method:
        """A session ended: the next one starts from the configured method again."""
        self.index = 0
        return self.configured

    def greeting(self) -> str:
        """The sentence at start that a double press chooses another method; "" with one method."""
        return self.phrases.say("method_hint") if self.choosing else ""

    def voice_commands(self) -> dict[str, str]:
        """The spoken commands that choose a method, as the locale's ``[commands]`` table
        holds them (command -> "phrase|phrase"): "methode <name>" and "methode <id>" for
        each offered method. Empty with one method on offer."""
        if not self.choosing:
            return {}
        prefixes = [spoken_words(p) for p in self.phrases.say("method_command").split("|") if spoken_words(p)]
        commands: dict[str, str] = {}
        for method in self.offered:
            names = dict.fromkeys(n for n in (spoken_words(method.name), spoken_words(method.id.replace("-", " "))) if n)
            commands[METHOD_COMMAND + method.id] = "|".join(f"{p} {n}" for p in prefixes for n in names)
        return commands

    def step(self, event: Event) -> bool:
        """An event while the idle session waits for the start; True when it chose a method."""
        if isinstance(event, VoiceCommand) and event.command.startswith(METHOD_COMMAND):
            wanted = event.command[len(METHOD_COMMAND):]
            index = next((i for i, m in enumerate(self.offered) if m.id == wanted), None)
            if index is None:
                return True  # a name no longer on offer: no command
            self.speaker.stop()
            self.speaker.tone("press")
            self._choose(index)
            return True
        if isinstance(event, DoublePress) and self.choosing:
            self._choose((self.index + 1) % len(self.offered))
            return True
        return False

    def _choose(self, index: int) -> None:
        method = self.offered[index]
        if index != self.index:
            self.index = index
            self._use(method)
        log.info("method chosen for the next session: %s (%s)", method.id, method.path)
        name = method.name[:1].upper() + method.name[1:]
        fitted = fitted_method(method, self._available_seconds())
        fields = {"method": name, "duration": self.phrases.minutes(fitted.seconds / 60)}
        if fitted is method:
            text = self.phrases.say("method_choice", **fields)
        else:  # the time the group has shortens it: said as the start will say it
            text = self.phrases.say("method_choice_fitted", planned=self.phrases.minutes(method.seconds / 60), **fields)
        self._say(text, "method_choice")
