"""An optional volume knob: a rotary encoder read with gpiozero's ``RotaryEncoder``.

Each detent clockwise is one step louder, counter-clockwise one step softer. The knob
only posts :class:`~assistant.core.events.VolumeStep` events (from gpiozero's thread and
a timer's); the daemon's volume handler does the rest.

A quick turn is many detents in a fraction of a second. Each counts, but they are
posted together: the first detent after a rest at once (the group hears the change
straight away), the ones that follow within :data:`COALESCE_SECONDS` as one event with
their sum, and so on while the knob turns. So the daemon plays one tone per event
rather than a rattle of them, and the level still moves by every detent turned.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from assistant.core.events import Event, VolumeStep
from assistant.core.settings import KnobSettings
from assistant.errors import DeviceError
from assistant.hardware.gpio import open_gpio

log = logging.getLogger(__name__)

COALESCE_SECONDS = 0.2
"""Detents within this time of the last event posted are summed into the next one."""


class VolumeKnob:
    """A rotary encoder on two GPIO pins (BCM numbering)."""

    def __init__(
        self, settings: KnobSettings, post: Callable[[Event], None], coalesce_seconds: float = COALESCE_SECONDS
    ) -> None:
        """Open the encoder; :class:`~assistant.errors.DeviceError` if its pins cannot be used."""
        from gpiozero import RotaryEncoder

        self._post = post
        self._window = coalesce_seconds
        self._lock = threading.Lock()
        self._pending = 0
        self._timer: threading.Timer | None = None
        self._closed = False
        self.device = open_gpio(
            # max_steps=0: the encoder counts without a limit; the level's bounds are the daemon's.
            lambda: RotaryEncoder(settings.pin_a, settings.pin_b, bounce_time=settings.bounce_seconds or None, max_steps=0),
            f"volume knob on BCM pins {settings.pin_a} and {settings.pin_b}",
        )
        """The gpiozero ``RotaryEncoder`` underneath."""
        self.device.when_rotated_clockwise = lambda: self._turned(1)
        self.device.when_rotated_counter_clockwise = lambda: self._turned(-1)

    def close(self) -> None:
        """Stop posting and release the pins (detents not yet posted are dropped)."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        self.device.close()

    # The two below run in gpiozero's thread and in a timer's; they post under the lock,
    # so the events come out in the order the knob was turned.

    def _turned(self, direction: int) -> None:
        with self._lock:
            if self._closed:
                return
            self._pending += direction
            if self._timer is None:
                self._send()

    def _flush(self) -> None:
        with self._lock:
            self._timer = None
            if not self._closed and self._pending:
                self._send()

    def _send(self) -> None:
        """Post what is pending and hold back what follows for one window (lock held)."""
        steps, self._pending = self._pending, 0
        self._post(VolumeStep(steps))
        self._timer = threading.Timer(self._window, self._flush)
        self._timer.daemon = True
        self._timer.start()


def make_knob(settings: KnobSettings, post: Callable[[Event], None]) -> VolumeKnob | None:
    """The volume knob, or None when none is configured or its pins cannot be used (one warning)."""
    if not settings.enabled:
        return None
    try:
        knob = VolumeKnob(settings, post)
    except DeviceError as exc:
        log.warning("%s; carrying on without the volume knob (\"harder\" and \"zachter\" still work with voice "
                    "commands on)", exc)
        return None
    log.info("volume knob on BCM pins %d and %d", settings.pin_a, settings.pin_b)
    return knob
