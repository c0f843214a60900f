"""The device on the table for the time tests (issue 13): the daemon in this process, any
method file, the real button code on gpiozero's mock pins, clocks the test moves.

The gestures go through the button (``GpioButton``) and the daemon's own queue and step, as
in the loop; voice commands are posted as the listener would post them.
"""

from __future__ import annotations

import queue
import re
import time
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory
from support import Recorder

from assistant.config import SHIPPED_CONFIG, load_method, load_phrases
from assistant.core.clock import FakeClock, SessionClock
from assistant.core.events import DoublePress, Event, LongPress, Press, Tick
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
    """One run of the daemon on ``data`` leading the method in ``method_file``."""

    def __init__(self, data: Path, method_file: Path, pins: MockFactory, clocks: tuple[FakeClock, FakeClock],
                 schedule: ScheduleSettings = ScheduleSettings(), language: str = "nl") -> None:
        self.mono, self.wall = clocks
        self.pins = pins
        self.data, self.method_file, self.schedule, self.language = data, method_file, schedule, language
        settings = Settings(data_dir=str(data), language=language, schedule=schedule)
        self.method = load_method(str(method_file), language)
        self.speaker = Recorder()
        self.daemon = Daemon(
            settings, self.method, load_phrases(language), self.speaker, Journal(data, wall=self.wall),
            SessionClock(1.0, monotonic=self.mono), wall=self.wall,
        )
        self.daemon.start_up()
        self.button = GpioButton(BUTTON, self.daemon.post)

    def close(self) -> None:
        self.button.close()

    def restart(self, off_for: float) -> Table:
        """A power cut: this process is gone, and ``off_for`` seconds later the device is back."""
        self.close()
        self.wall.advance(off_for)
        self.mono.advance(off_for + 3.0)
        return Table(self.data, self.method_file, self.pins, (self.mono, self.wall), self.schedule, self.language)

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

    def press(self) -> None:
        self.tap()
        self._until(Press)

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
