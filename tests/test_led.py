"""The status LED: brightness follows the time left, blinks in overtime, pulses when paused."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from gpiozero import Device
from gpiozero.exc import BadPinFactory, PinFactoryFallback
from gpiozero.pins.mock import MockFactory, MockPWMPin

from assistant.core.settings import LedSettings
from assistant.hardware.led import StatusLed, make_led

PATIENCE = 2.0


@pytest.fixture
def pins(pwm_pins: Any) -> Any:
    """Mock pins that take a PWM value (the LED's brightness)."""
    return pwm_pins


@pytest.fixture
def led(pins: MockFactory) -> Iterator[StatusLed]:
    made = StatusLed(18)
    yield made
    made.close()


def eventually(check: Callable[[], bool], timeout: float = PATIENCE) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return check()


def levels_seen(pin: MockPWMPin, seconds: float) -> set[float]:
    seen: set[float] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.add(round(pin.state, 2))
        time.sleep(0.005)
    return seen


def test_the_led_is_off_when_idle(pins: MockFactory, led: StatusLed) -> None:
    led.show(0.7, False, False)
    led.show(None, False, False)
    assert pins.pin(18).state == 0


def test_brightness_follows_the_time_left(pins: MockFactory, led: StatusLed) -> None:
    led.show(1.0, False, False)
    assert pins.pin(18).state == pytest.approx(1.0)
    led.show(0.5, False, False)
    assert pins.pin(18).state == pytest.approx(0.5)
    led.show(0.25, False, False)
    assert pins.pin(18).state == pytest.approx(0.25)


def test_brightness_stays_visible_near_the_end_and_never_exceeds_full(pins: MockFactory, led: StatusLed) -> None:
    led.show(0.0, False, False)
    assert pins.pin(18).state == pytest.approx(0.05)
    led.show(1.7, False, False)
    assert pins.pin(18).state == pytest.approx(1.0)


def test_the_pin_is_only_written_when_the_brightness_visibly_changes(pins: MockFactory, led: StatusLed) -> None:
    led.show(0.5, False, False)
    changes = len(pins.pin(18).states)
    led.show(0.5, False, False)
    led.show(0.501, False, False)
    assert len(pins.pin(18).states) == changes
    led.show(0.4, False, False)
    assert len(pins.pin(18).states) == changes + 1


def test_the_led_blinks_in_overtime(pins: MockFactory, led: StatusLed) -> None:
    led.show(0.0, True, False)
    seen: set[float] = set()

    def saw_fully_on_and_fully_off() -> bool:
        seen.add(pins.pin(18).state)
        return seen == {0.0, 1.0}

    assert eventually(saw_fully_on_and_fully_off)


def test_the_blink_keeps_going_while_overtime_is_shown_again(pins: MockFactory, led: StatusLed) -> None:
    led.show(0.0, True, False)
    blinker = led.device._blink_thread
    assert blinker is not None
    for _ in range(5):
        led.show(0.0, True, False)  # the daemon refreshes often; the blink is not restarted
    assert led.device._blink_thread is blinker


def test_the_led_pulses_slowly_when_paused(pins: MockFactory, led: StatusLed) -> None:
    led.show(0.6, False, True)
    seen = levels_seen(pins.pin(18), 0.5)
    assert len([level for level in seen if 0 < level < 1]) > 3  # fading in, not blinking
    assert max(seen) < 1.0  # slowly: a 1.5 s fade-in


def test_back_from_overtime_to_steady_stops_the_blink(pins: MockFactory, led: StatusLed) -> None:
    led.show(0.0, True, False)
    led.show(0.8, False, False)
    assert eventually(lambda: led.device._blink_thread is None)
    assert levels_seen(pins.pin(18), 0.3) == {0.8}


def test_idle_after_overtime_switches_the_led_off(pins: MockFactory, led: StatusLed) -> None:
    led.show(0.0, True, False)
    led.show(None, False, False)
    assert levels_seen(pins.pin(18), 0.3) == {0.0}


def test_showing_after_close_does_nothing(pins: MockFactory) -> None:
    made = StatusLed(18)
    made.close()
    made.show(0.5, False, False)
    made.close()


def test_make_led_gives_none_when_switched_off(pins: MockFactory) -> None:
    assert make_led(LedSettings(enabled=False)) is None


def test_make_led_gives_the_led_on_the_pin_from_settings(pins: MockFactory) -> None:
    made = make_led(LedSettings(enabled=True, pin=12))
    assert made is not None
    try:
        made.show(0.5, False, False)
        assert pins.pin(12).state == pytest.approx(0.5)
    finally:
        made.close()


def test_without_gpio_the_led_is_left_out_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_factory() -> None:
        warnings.warn(PinFactoryFallback("Falling back from lgpio: No module named 'lgpio'"), stacklevel=2)
        raise BadPinFactory("Unable to load any default pin factory!")

    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    monkeypatch.setattr(Device, "pin_factory", None)
    monkeypatch.setattr(Device, "_default_pin_factory", staticmethod(no_factory))
    with caplog.at_level(logging.WARNING, logger="assistant.hardware.led"):
        assert make_led(LedSettings(enabled=True, pin=18)) is None
    warnings_logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings_logged) == 1
    assert "status LED on BCM pin 18" in warnings_logged[0]
    assert "no usable GPIO" in warnings_logged[0]
