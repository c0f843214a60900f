"""The device on the table (issues 12 and 13): the daemon in this process, any method file
(and, for choosing at the table, a methods folder), the real button code on gpiozero's
mock pins (the ``pins`` fixture), clocks the test moves (``clocks``).

The gestures go through the button (``GpioButton``) and the daemon's own queue and step, as
in the loop; voice commands are posted as the listener would post them.
"""

from __future__ import annotations

import queue
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory
from support import Recorder

from assistant.config import SHIPPED_CONFIG, installed_methods, load_method, load_phrases
from assistant.core.clock import FakeClock, SessionClock
from assistant.core.events import DoublePress, Event, LongPress, Press, Tick, VoiceCommand
from assistant.core.settings import ButtonSettings, ScheduleSettings, Settings
from assistant.hardware.button import GpioButton
from assistant.service.daemon import Daemon
from assistant.storage.journal import Journal

MIN = 60.0
METHOD_FILES = sorted((SHIPPED_CONFIG / "methods").glob("*.toml"))
"""Every shipped method."""
WINDOW = 0.08
PATIENCE = 5.0
BUTTON = ButtonSettings(input="gpio", pin=17, hold_seconds=0.3, double_press_seconds=WINDOW, bounce_seconds=0)


class Table:
    """One run of the daemon on ``data`` leading the method in ``method_file``.

    ``settings`` replaces the default settings (data folder, language, ``schedule``);
    ``method_folders`` are the folders whose methods a group can choose from (none: only
    ``method_file``). :meth:`restart` is what the next start meets after the power went.
    """

    def __init__(self, data: Path, method_file: Path, pins: MockFactory, clocks: tuple[FakeClock, FakeClock],
                 schedule: ScheduleSettings = ScheduleSettings(), language: str = "nl",
                 settings: Settings | None = None, method_folders: Sequence[Path] | None = None) -> None:
        self.mono, self.wall = clocks
        self.pins = pins
        self.data, self.method_file, self.schedule, self.language = data, method_file, schedule, language
        self.settings = settings or Settings(data_dir=str(data), language=language, schedule=schedule)
        self.method_folders = method_folders
        self.button: GpioButton | None = None
        self._boot()

    def _boot(self) -> None:
        self.method = load_method(str(self.method_file), self.language)
        self.speaker = Recorder()
        methods = installed_methods(self.method, self.language, self.method_folders) if self.method_folders else ()
        self.daemon = Daemon(
            self.settings, self.method, load_phrases(self.language), self.speaker, Journal(self.data, wall=self.wall),
            SessionClock(1.0, monotonic=self.mono), wall=self.wall, methods=methods,
        )
        self.daemon.start_up()
        self.button = GpioButton(BUTTON, self.daemon.post)

    def close(self) -> None:
        if self.button is not None:
            self.button.close()
            self.button = None

    def restart(self, off_for: float) -> Table:
        """A power cut: this process is gone, and ``off_for`` seconds later the device is back
        (the same table: a new daemon, speaker and button on the same data folder)."""
        self.close()
        self.wall.advance(off_for)
        self.mono.advance(off_for + 3.0)
        self._boot()
        return self

    @property
    def session(self) -> Any:
        return self.daemon.session

    def now(self) -> float:
        return self.daemon.clock.now()

    def said(self) -> list[str]:
        """What was said since the last call."""
        said, self.speaker.said[:] = list(self.speaker.said), []
        return said

    def _until(self, kind: type[Event]) -> None:
        end = time.monotonic() + PATIENCE
        while True:
            try:
                event = self.daemon._events.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {kind.__name__} from the button within {PATIENCE} s") from None
            if event is None:
                continue
            self.daemon.step(event)
            if isinstance(event, kind):
                return

    def tap(self) -> None:
        self.pins.pin(17).drive_low()
        self.pins.pin(17).drive_high()

    def press(self, times: int = 1) -> None:
        for _ in range(times):
            self.tap()
            self._until(Press)

    def say(self, command: str) -> None:
        """A voice command, as the listener posts it."""
        self.daemon.step(VoiceCommand(command))

    def double(self) -> None:
        self.tap()
        self.tap()
        self._until(DoublePress)

    def hold(self) -> None:
        self.pins.pin(17).drive_low()
        self._until(LongPress)
        self.pins.pin(17).drive_high()

    def wait(self, seconds: float) -> None:
        """Time passes; due announcements are made as the loop would."""
        end = self.mono.t + seconds
        while (due := self.session.next_deadline()) is not None and due - self.now() <= end - self.mono.t:
            step = max(0.0, due - self.now())
            self.mono.advance(step)
            self.wall.advance(step)
            self.daemon.step(Tick())
        rest = end - self.mono.t
        self.mono.advance(rest)
        self.wall.advance(rest)


def table_columns(markdown: str) -> tuple[list[list[str]], list[str]]:
    """The time table of a Markdown report: its phase rows and its total row, as cells."""
    rows = [line.strip("|").split("|") for line in markdown.splitlines() if line.startswith("| ")]
    cells = [[c.strip().strip("*") for c in row] for row in rows[1:]]
    return cells[:-1], cells[-1]


def seconds(cell: str) -> int:
    """The first minutes:seconds in a cell ("+5:30" is 330, "-0:30" is -30, a dash 0)."""
    found = re.search(r"([+-]?)(\d+):(\d\d)", cell)
    if found is None:
        return 0
    value = int(found.group(2)) * 60 + int(found.group(3))
    return -value if found.group(1) == "-" else value
