"""The group can see and hear when it is written down: while a note is recorded the status
LED beats like a heart (two short flashes, then dark), unlike any look of the time-left
display; and before the device first listens in a session it says once that it writes
down only the method's notes and keeps no sound (not again after a resume).

Every shipped method is led through the daemon (in this process, on clocks the test
moves); the LED is the real ``StatusLed`` on gpiozero's mock PWM pins, read over time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from assistant.config import SHIPPED_CONFIG, load_method, load_phrases
from assistant.core.clock import FakeClock, SessionClock
from assistant.core.events import DoublePress, Event, Heard, ListenerState, LongPress, Press, Tick
from assistant.core.headcount import SETTLE_SECONDS, counts_heads
from assistant.core.settings import Settings
from assistant.hardware.led import StatusLed
from assistant.service.daemon import Daemon
from assistant.storage.journal import Journal
from tests.support import Recorder, ScriptedListener

pytestmark = pytest.mark.slow  # the LED's pattern watched in real time on mock pins

PHRASES = load_phrases("nl")
PRIVACY = PHRASES.say("privacy_notice")
METHOD_FILES = sorted((SHIPPED_CONFIG / "methods").glob("*.toml"))
PIN = 18
SPOKEN = "ik wil leren rustig te blijven"


@pytest.fixture(params=METHOD_FILES, ids=[p.stem for p in METHOD_FILES])
def method_file(request: pytest.FixtureRequest) -> Path:
    return Path(request.param)


@pytest.fixture
def pins(pwm_pins: Any) -> Any:
    """Mock pins that take a PWM value (the LED's brightness)."""
    return pwm_pins


class Room:
    """The device with a recogniser that is ready and a status LED, on a data folder.
    ``participants`` is set: the count at the start is another test's subject."""

    def __init__(self, data: Path, method_file: Path, led: StatusLed | None = None, participants: int = 4) -> None:
        self.data, self.method_file, self.led, self.participants = data, method_file, led, participants
        self.mono, self.wall = FakeClock(1000.0), FakeClock(1_800_000_000.0)
        self._boot()

    def _boot(self) -> None:
        self.speaker = Recorder()
        self.daemon = Daemon(
            Settings(data_dir=str(self.data), participants=self.participants), load_method(str(self.method_file), "nl"), PHRASES,
            self.speaker, Journal(self.data, wall=self.wall), SessionClock(1.0, monotonic=self.mono), wall=self.wall,
            led=self.led, listener=ScriptedListener("ready"),
        )
        self.daemon.start_up()
        self.do(ListenerState("ready"))

    def power_cut(self, off_for: float = 30.0) -> None:
        self.mono.advance(off_for + 5.0)
        self.wall.advance(off_for)
        self._boot()

    @property
    def session(self) -> Any:
        return self.daemon.session

    def do(self, event: Event) -> None:
        """One event, and the LED refreshed after it, as the daemon's loop does."""
        self.daemon.step(event)
        self.daemon._show_led()

    def said(self) -> list[str]:
        said, self.speaker.said[:] = list(self.speaker.said), []
        return said

    def note(self) -> Any:
        run = self.session.current
        return run.note if run is not None else None

    def to_the_first_note(self) -> None:
        """Start and press on until a phase takes a note; a single note is invited."""
        self.do(Press())
        while self.note() is None:
            self.do(Press())
        if not self.note().continuous:
            self.do(Press())
        assert self.note().recording

    def step_on(self) -> None:
        """What a group does next: ask for the note, say it, keep it, or press on."""
        note = self.note()
        if note is not None and not note.continuous and note.stage in ("listening", "ending"):
            self.do(Heard(kind=note.kind, text=SPOKEN, words=[]))
        else:
            self.do(Press())


# --- the LED ------------------------------------------------------------------------------


def trace(pin: MockPWMPin, seconds: float) -> list[tuple[float, float]]:
    """The pin's value, sampled every 5 ms for ``seconds``."""
    samples = []
    start = time.monotonic()
    while (now := time.monotonic()) - start < seconds:
        samples.append((now - start, round(float(pin.state), 3)))
        time.sleep(0.005)
    return samples


def runs_of(samples: list[tuple[float, float]], lit: bool) -> list[float]:
    """How long each stretch lasted in which the LED was (not) fully on."""
    stretches, begun = [], None
    for t, value in samples:
        if (value >= 0.999) == lit:
            begun = t if begun is None else begun
        elif begun is not None:
            stretches.append(t - begun)
            begun = None
    if begun is not None:
        stretches.append(samples[-1][0] - begun)
    return stretches


def looks_like_the_heartbeat(samples: list[tuple[float, float]]) -> bool:
    """Only full on and off; short flashes, two at a time; dark for most of a second between."""
    levels = {value for _, value in samples}
    if not levels <= {0.0, 1.0} or levels != {0.0, 1.0}:
        return False
    flashes, darks = runs_of(samples, True), runs_of(samples, False)
    return max(darks) >= 0.8 and max(flashes) <= 0.5 and len(flashes) >= 2


def test_the_led_beats_while_the_first_note_is_recorded_and_shows_the_time_after(
    tmp_path: Path, pins: MockFactory, method_file: Path
) -> None:
    led = StatusLed(PIN)
    try:
        room = Room(tmp_path / "data", method_file, led)
        room.to_the_first_note()
        pin = pins.pin(PIN)
        assert looks_like_the_heartbeat(trace(pin, 1.7)), "a note being written down"
        note = room.note()
        if note.continuous:
            room.do(LongPress())  # a pause stops the running note: the pause's slow pulse
            samples = trace(pin, 0.6)
            assert any(0.0 < v < 1.0 for _, v in samples) and not looks_like_the_heartbeat(samples)
        else:
            room.do(Heard(kind=note.kind, text=SPOKEN, words=[]))  # read back: no longer recording
            fraction = room.session.fraction_left(room.daemon.clock.now())
            [level] = {v for _, v in trace(pin, 0.4)}
            assert level == pytest.approx(fraction, abs=0.011), "back to the steady time-left level"
    finally:
        led.close()


@pytest.mark.parametrize(
    "display",
    [(1.0, False, False), (0.5, False, False), (0.0, False, False), (0.0, True, False), (0.6, False, True)],
    ids=["full-time-left", "half-left", "nearly-done", "overtime-blink", "paused-pulse"],
)
def test_no_look_of_the_time_display_is_the_heartbeat(pins: MockFactory, display: tuple[float, bool, bool]) -> None:
    led = StatusLed(PIN)
    try:
        led.show(*display)
        assert not looks_like_the_heartbeat(trace(pins.pin(PIN), 1.7))
        led.show(*display, recording=True)
        assert looks_like_the_heartbeat(trace(pins.pin(PIN), 1.7)), "the heartbeat wins over the time display"
        led.show(*display)
        assert not looks_like_the_heartbeat(trace(pins.pin(PIN), 1.7)), "and goes when the note is done"
    finally:
        led.close()


# --- the sentence --------------------------------------------------------------------------


def first_listening(said: list[str]) -> int:
    return next(i for i, s in enumerate(said) if s.startswith(("Zeg na de toon", "Ik noteer")))


def test_the_sentence_is_said_once_per_session_before_the_first_note(tmp_path: Path, method_file: Path) -> None:
    room = Room(tmp_path / "data", method_file)
    room.said()
    room.do(Press())
    for _ in range(300):
        if room.session.status != "running":
            break
        room.step_on()
    said = room.said()
    assert said.count(PRIVACY) == 1, "once in the session"
    assert said.index(PRIVACY) == first_listening(said) - 1, "right before the first invitation"
    # The next session says it once again, at its first note.
    room.to_the_first_note()
    again = room.said()
    assert again.count(PRIVACY) == 1 and again.index(PRIVACY) == first_listening(again) - 1


def test_not_again_after_a_power_cut_during_the_first_note(tmp_path: Path, method_file: Path) -> None:
    room = Room(tmp_path / "data", method_file)
    room.to_the_first_note()
    assert PRIVACY in room.said()
    room.power_cut()
    said = room.said()
    assert said[0].startswith("Ik was even uitgevallen.")
    assert room.note().recording, "it listens again"
    assert PRIVACY not in said


def test_not_again_after_a_power_cut_later_in_the_session(tmp_path: Path, method_file: Path) -> None:
    room = Room(tmp_path / "data", method_file)
    room.to_the_first_note()
    first = room.note()
    while room.note() is first:
        room.step_on()
    room.power_cut()
    for _ in range(300):
        if room.session.status != "running":
            break
        room.step_on()
    said = room.said()
    assert said[0].startswith("Ik was even uitgevallen.")
    assert PRIVACY not in said


# --- the LED while the group is counted ---------------------------------------------------

COUNTING_METHODS = [p for p in METHOD_FILES if counts_heads(load_method(str(p), "nl"), 0)]


@pytest.mark.parametrize("counting_method", COUNTING_METHODS, ids=[p.stem for p in COUNTING_METHODS])
def test_while_the_group_is_counted_the_led_is_on_and_winks_for_each_one_counted(
    tmp_path: Path, pins: MockFactory, counting_method: Path
) -> None:
    led = StatusLed(PIN)
    try:
        room = Room(tmp_path / "data", counting_method, led, participants=0)
        pin = pins.pin(PIN)
        assert pin.state == 0, "off before the start"
        room.do(LongPress())
        assert room.session.count is not None, "the count begins"
        assert {value for _, value in trace(pin, 0.3)} == {1.0}, "fully on while the device counts"
        room.do(Press())
        one = trace(pin, 1.0)
        darks = runs_of(one, False)
        assert len(darks) == 1 and 0.05 <= darks[0] <= 0.6, darks
        assert one[-1][1] == 1.0, "on again after the wink"
        room.do(DoublePress())
        assert len(runs_of(trace(pin, 1.2), False)) == 2, "a double press counts two: two winks"
        room.mono.advance(SETTLE_SECONDS + 0.5)
        room.do(Tick())
        assert room.session.count is None and room.session.current is not None, "counted: phase 1 begins"
        assert {value for _, value in trace(pin, 0.3)} == {1.0}, "the whole phase is left: the time display's full level"
    finally:
        led.close()
