"""The button on the table: gestures from the real gpiozero Button on mock pins, and the keyboard."""

from __future__ import annotations

import io
import logging
import os
import queue
import time
import warnings
from collections.abc import Iterator

import pytest
from gpiozero import Device
from gpiozero.exc import BadPinFactory, PinFactoryFallback
from gpiozero.pins.mock import MockFactory

from assistant.core.events import ButtonDown, DoublePress, Event, LongPress, Press, VolumeStep
from assistant.core.settings import ButtonSettings
from assistant.errors import ButtonError, DeviceError
from assistant.hardware.button import GpioButton, KeyboardButton, make_button

HOLD = 0.5
WINDOW = 0.2
PATIENCE = 2.0
"""Longest wait for an expected event, generous for a loaded 2-core machine."""

FAST = ButtonSettings(input="gpio", pin=17, hold_seconds=HOLD, double_press_seconds=WINDOW, bounce_seconds=0)


class Gestures:
    """Collects posted events, like the daemon's queue."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Event] = queue.Queue()

    def post(self, event: Event) -> None:
        self.queue.put(event)

    def next(self, timeout: float = PATIENCE) -> Event:
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event within {timeout} s") from None

    def take(self, count: int) -> list[Event]:
        return [self.next() for _ in range(count)]

    def none_within(self, seconds: float) -> list[Event]:
        """Events that arrive within ``seconds`` (expected: none)."""
        deadline = time.monotonic() + seconds
        seen: list[Event] = []
        while True:
            left = deadline - time.monotonic()
            try:
                seen.append(self.queue.get(timeout=left) if left > 0 else self.queue.get_nowait())
            except queue.Empty:
                return seen


@pytest.fixture
def no_gpio(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without GPIO: gpiozero finds no pin library (as on a laptop)."""

    def no_factory() -> None:
        warnings.warn(PinFactoryFallback("Falling back from lgpio: No module named 'lgpio'"), stacklevel=2)
        raise BadPinFactory("Unable to load any default pin factory!")

    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    monkeypatch.setattr(Device, "pin_factory", None)
    monkeypatch.setattr(Device, "_default_pin_factory", staticmethod(no_factory))


@pytest.fixture
def gestures() -> Gestures:
    return Gestures()


@pytest.fixture
def button(pins: MockFactory, gestures: Gestures) -> Iterator[GpioButton]:
    made = GpioButton(FAST, gestures.post)
    yield made
    made.close()


def tap(pins: MockFactory, pin: int = 17) -> None:
    pins.pin(pin).drive_low()
    pins.pin(pin).drive_high()


# --- the GPIO button ---------------------------------------------------------------


@pytest.mark.slow
def test_a_short_press_posts_button_down_then_press(pins: MockFactory, button: GpioButton, gestures: Gestures) -> None:
    pins.pin(17).drive_low()
    assert gestures.next(timeout=0) == ButtonDown()  # at once, while the button is still down
    pins.pin(17).drive_high()
    assert gestures.next() == Press()
    assert gestures.none_within(WINDOW * 2) == []


def test_the_press_waits_for_the_double_press_window(pins: MockFactory, button: GpioButton, gestures: Gestures) -> None:
    tap(pins)
    released = time.monotonic()
    assert gestures.next() == ButtonDown()
    assert gestures.next() == Press()
    assert time.monotonic() - released >= WINDOW * 0.9


@pytest.mark.slow
def test_two_quick_presses_are_a_double_press_not_two_presses(
    pins: MockFactory, button: GpioButton, gestures: Gestures
) -> None:
    tap(pins)
    tap(pins)
    assert gestures.take(3) == [ButtonDown(), ButtonDown(), DoublePress()]
    assert gestures.none_within(WINDOW * 3) == []


def test_the_double_press_is_posted_when_the_second_press_is_released(
    pins: MockFactory, button: GpioButton, gestures: Gestures
) -> None:
    tap(pins)
    pins.pin(17).drive_low()
    assert gestures.take(2) == [ButtonDown(), ButtonDown()]
    assert gestures.none_within(0.05) == []  # well short of the hold time
    pins.pin(17).drive_high()
    assert gestures.next() == DoublePress()


def test_a_slow_second_press_is_two_separate_presses(pins: MockFactory, button: GpioButton, gestures: Gestures) -> None:
    tap(pins)
    assert gestures.take(2) == [ButtonDown(), Press()]
    tap(pins)
    assert gestures.take(2) == [ButtonDown(), Press()]


def test_three_quick_presses_are_a_double_press_then_a_press(
    pins: MockFactory, button: GpioButton, gestures: Gestures
) -> None:
    tap(pins)
    tap(pins)
    tap(pins)
    assert gestures.take(5) == [ButtonDown(), ButtonDown(), DoublePress(), ButtonDown(), Press()]


@pytest.mark.slow
def test_holding_the_button_posts_long_press_at_hold_time_and_nothing_on_release(
    pins: MockFactory, button: GpioButton, gestures: Gestures
) -> None:
    pressed = time.monotonic()
    pins.pin(17).drive_low()
    assert gestures.next() == ButtonDown()
    assert gestures.next() == LongPress()  # while the button is still down
    assert time.monotonic() - pressed >= HOLD * 0.9
    assert gestures.none_within(HOLD) == []  # held on: no repeat
    pins.pin(17).drive_high()
    assert gestures.none_within(WINDOW * 3) == []


@pytest.mark.slow
def test_a_press_right_after_a_long_press_is_a_plain_press(
    pins: MockFactory, button: GpioButton, gestures: Gestures
) -> None:
    pins.pin(17).drive_low()
    assert gestures.take(2) == [ButtonDown(), LongPress()]
    pins.pin(17).drive_high()
    tap(pins)
    assert gestures.take(2) == [ButtonDown(), Press()]


@pytest.mark.slow
def test_a_quick_tap_then_a_hold_is_only_a_long_press(pins: MockFactory, button: GpioButton, gestures: Gestures) -> None:
    tap(pins)
    pins.pin(17).drive_low()
    assert gestures.take(3) == [ButtonDown(), ButtonDown(), LongPress()]
    pins.pin(17).drive_high()
    assert gestures.none_within(WINDOW * 3) == []


def test_button_on_the_pin_from_settings_with_pull_up(pins: MockFactory, gestures: Gestures) -> None:
    settings = ButtonSettings(pin=5, pull_up=True, hold_seconds=1.5, double_press_seconds=0.4, bounce_seconds=0.02)
    made = GpioButton(settings, gestures.post)
    try:
        assert made.device.pin is pins.pin(5)
        assert pins.pin(5).pull == "up"
        assert made.device.hold_time == 1.5
        assert made.device.pin.bounce == pytest.approx(0.02)
        pins.pin(5).drive_low()  # pulled up: pressing connects the pin to ground
        assert gestures.next() == ButtonDown()
    finally:
        made.close()


def test_without_pull_up_the_button_pulls_the_pin_high(pins: MockFactory, gestures: Gestures) -> None:
    settings = ButtonSettings(pin=27, pull_up=False, bounce_seconds=0)
    made = GpioButton(settings, gestures.post)
    try:
        assert pins.pin(27).pull == "down"
        assert made.device.pin.bounce is None  # 0 switches debouncing off
        pins.pin(27).drive_high()
        assert gestures.next() == ButtonDown()
    finally:
        made.close()


def test_no_gpio_raises_button_error_with_a_clear_message(
    no_gpio: None, gestures: Gestures, caplog: pytest.LogCaptureFixture
) -> None:
    with warnings.catch_warnings(), caplog.at_level(logging.DEBUG, logger="assistant.hardware"):
        warnings.simplefilter("error")  # gpiozero's fallback warnings go to the debug log, not stderr
        with pytest.raises(ButtonError) as raised:
            GpioButton(FAST, gestures.post)
    message = str(raised.value)
    assert message == "cannot use the GPIO button on BCM pin 17: no usable GPIO on this machine"
    assert "lgpio: No module named 'lgpio'" in caplog.text  # only with --debug
    assert isinstance(raised.value, DeviceError) and isinstance(raised.value, OSError)
    assert isinstance(raised.value.__cause__, BadPinFactory)


def test_a_pin_that_does_not_exist_raises_button_error(pins: MockFactory, gestures: Gestures) -> None:
    with pytest.raises(ButtonError, match=r"BCM pin 60: PinInvalidPin"):
        GpioButton(ButtonSettings(pin=60), gestures.post)


def test_a_pin_already_in_use_raises_button_error(pins: MockFactory, button: GpioButton, gestures: Gestures) -> None:
    with pytest.raises(ButtonError, match="GPIOPinInUse"):
        GpioButton(FAST, gestures.post)


@pytest.mark.slow
def test_a_closed_button_posts_nothing_more(pins: MockFactory, gestures: Gestures) -> None:
    made = GpioButton(FAST, gestures.post)
    tap(pins)
    made.close()  # the pending press is dropped
    assert gestures.none_within(WINDOW * 3) == [ButtonDown()]


# --- choosing the input -------------------------------------------------------------


def test_gpio_input_gives_the_gpio_button(pins: MockFactory, gestures: Gestures) -> None:
    made = make_button(FAST, gestures.post, lambda: None)
    try:
        assert isinstance(made, GpioButton)
    finally:
        made.close()


def test_gpio_input_without_gpio_raises_button_error(no_gpio: None, gestures: Gestures) -> None:
    with pytest.raises(ButtonError):
        make_button(FAST, gestures.post, lambda: None)


def test_auto_uses_the_gpio_button_when_there_is_one(pins: MockFactory, gestures: Gestures) -> None:
    made = make_button(ButtonSettings(input="auto"), gestures.post, lambda: None)
    try:
        assert isinstance(made, GpioButton)
    finally:
        made.close()


def test_auto_falls_back_to_the_keyboard_with_one_warning(
    no_gpio: None, gestures: Gestures, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with caplog.at_level(logging.WARNING, logger="assistant.hardware"):
        made = make_button(ButtonSettings(input="auto"), gestures.post, lambda: None)
    made.close()
    assert isinstance(made, KeyboardButton)
    warnings_logged = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings_logged) == 1
    assert warnings_logged[0].getMessage() == "no GPIO on this machine: the keyboard is the button"


def test_keyboard_input_gives_the_keyboard_even_with_gpio(
    pins: MockFactory, gestures: Gestures, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    made = make_button(ButtonSettings(input="keyboard"), gestures.post, lambda: None)
    made.close()
    assert isinstance(made, KeyboardButton)


# --- the keyboard -------------------------------------------------------------------


def run_keyboard(text: str) -> tuple[list[Event], int]:
    """Feed lines to a keyboard button; the events it posted and how often it quit."""
    gestures = Gestures()
    quits: list[None] = []
    keyboard = KeyboardButton(gestures.post, lambda: quits.append(None), io.StringIO(text))
    assert keyboard.wait_closed(PATIENCE), "the reader did not stop at the end of the input"
    keyboard.close()
    return gestures.none_within(0), len(quits)


def test_an_empty_line_is_a_press() -> None:
    assert run_keyboard("\n") == ([ButtonDown(), Press()], 0)


def test_a_line_with_a_space_is_a_press() -> None:
    assert run_keyboard(" \n") == ([ButtonDown(), Press()], 0)


def test_d_is_a_double_press_with_two_button_downs_like_the_real_button() -> None:
    assert run_keyboard("d\n") == ([ButtonDown(), ButtonDown(), DoublePress()], 0)


def test_p_is_a_long_press() -> None:
    assert run_keyboard("P\n") == ([ButtonDown(), LongPress()], 0)


def test_q_calls_on_quit_and_stops_reading() -> None:
    assert run_keyboard("\nq\nd\n") == ([ButtonDown(), Press()], 1)


def test_plus_and_minus_turn_the_volume_knob_one_step() -> None:
    assert run_keyboard("+\n=\n-\n") == ([VolumeStep(1), VolumeStep(1), VolumeStep(-1)], 0)


def test_unknown_keys_are_ignored() -> None:
    assert run_keyboard("x\nhello\n\n") == ([ButtonDown(), Press()], 0)


def test_the_keyboard_reader_ends_quietly_on_dev_null(caplog: pytest.LogCaptureFixture) -> None:
    gestures = Gestures()
    with open(os.devnull) as stdin, caplog.at_level(logging.WARNING):
        keyboard = KeyboardButton(gestures.post, lambda: None, stdin)
        assert keyboard.wait_closed(PATIENCE)
        keyboard.close()
    assert gestures.none_within(0) == []
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_the_keyboard_reader_ends_quietly_on_a_closed_stream() -> None:
    stream = io.StringIO("")
    stream.close()
    keyboard = KeyboardButton(Gestures().post, lambda: None, stream)
    assert keyboard.wait_closed(PATIENCE)


def test_a_closed_keyboard_posts_nothing_more() -> None:
    read_fd, write_fd = os.pipe()
    gestures = Gestures()
    with os.fdopen(read_fd) as stream, os.fdopen(write_fd, "w") as writer:
        keyboard = KeyboardButton(gestures.post, lambda: None, stream)
        writer.write("d\n")
        writer.flush()
        assert gestures.take(3) == [ButtonDown(), ButtonDown(), DoublePress()]
        keyboard.close()
        writer.write("\n")
        writer.flush()
        assert keyboard.wait_closed(PATIENCE)
    assert gestures.none_within(0.1) == []


def test_keys_on_a_terminal_are_read_one_by_one_and_the_terminal_is_restored() -> None:
    import pty
    import termios

    controller, terminal = pty.openpty()
    gestures = Gestures()
    quits: list[None] = []
    with os.fdopen(terminal) as stream:
        before = termios.tcgetattr(terminal)
        keyboard = KeyboardButton(gestures.post, lambda: quits.append(None), stream)
        try:
            assert not termios.tcgetattr(terminal)[3] & termios.ICANON  # cbreak: no Enter needed
            os.write(controller, b"p")
            assert gestures.take(2) == [ButtonDown(), LongPress()]
            os.write(controller, b" d")
            assert gestures.take(5) == [ButtonDown(), Press(), ButtonDown(), ButtonDown(), DoublePress()]
            os.write(controller, b"q")
            assert keyboard.wait_closed(PATIENCE)
            assert quits == [None]
        finally:
            keyboard.close()
        assert termios.tcgetattr(terminal) == before
    os.close(controller)
