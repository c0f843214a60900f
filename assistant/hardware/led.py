"""An optional status LED: how much of the phase is left, at a glance.

While a phase runs the LED's brightness is the fraction of its time left (never quite
off, so it still shows that a phase runs); in overtime it blinks; while paused it
pulses slowly; between sessions it is off. While a note is being written down it
beats like a heart instead: two short flashes at full brightness, then dark for over a
second (:data:`HEARTBEAT`). No time display looks like that: the steady level is never
dark, the overtime blink is even and fast, the pause pulse fades. gpiozero animates
blinking, pulsing and the heartbeat in its own threads, so :meth:`StatusLed.show` only
touches the hardware when what the group sees changes.

While the device counts the group before the start (a long press, then a press per
person), the LED is fully on, and each person counted makes it wink: dark for
:data:`WINK_SECONDS`, then on again. The press's own tick says the same by ear.
"""

from __future__ import annotations

import logging
from itertools import cycle

from assistant.core.settings import LedSettings
from assistant.errors import DeviceError
from assistant.hardware.gpio import open_gpio

log = logging.getLogger(__name__)

MIN_BRIGHTNESS = 0.05
"""Lowest brightness while a phase runs, so a nearly finished phase is still visible."""
BRIGHTNESS_STEP = 0.01
"""Brightness is rounded to this step; smaller changes are not written to the pin."""
BLINK_SECONDS = 0.25
"""On and off time of the overtime blink."""
PULSE_SECONDS = 1.5
"""Fade-in and fade-out time of the slow pulse while paused."""
HEARTBEAT_STEP = 0.05
"""Seconds each value of :data:`HEARTBEAT` is shown."""
HEARTBEAT = (1.0,) * 3 + (0.0,) * 3 + (1.0,) * 3 + (0.0,) * 21
"""One beat while a note is written down, in steps of :data:`HEARTBEAT_STEP`: on 0.15 s,
off 0.15 s, on 0.15 s, off 1.05 s (1.5 s in all)."""

WINK_SECONDS = 0.15
"""How long the LED goes dark for each person counted."""
_WINK = (0.0,) * round(WINK_SECONDS / HEARTBEAT_STEP) + (1.0,) * round(WINK_SECONDS / HEARTBEAT_STEP)
"""One wink, in steps of :data:`HEARTBEAT_STEP`: dark, then fully on (where it stays)."""

_Look = tuple[str, float]


class StatusLed:
    """A PWM LED on one GPIO pin (BCM numbering), driven by gpiozero's ``PWMLED``."""

    def __init__(self, pin: int) -> None:
        """Open the LED; :class:`~assistant.errors.DeviceError` if there is no usable GPIO."""
        from gpiozero import PWMLED

        self.device = open_gpio(lambda: PWMLED(pin), f"status LED on BCM pin {pin}")
        """The gpiozero ``PWMLED`` underneath."""
        self._look: _Look = ("off", 0.0)
        self._closed = False

    def show(
        self, fraction_left: float | None, overtime: bool, paused: bool, recording: bool = False,
        counted: int | None = None,
    ) -> None:
        """Show the phase's state: ``fraction_left`` None means no phase runs (off);
        ``recording``: a note is being written down (the heartbeat, whatever the time);
        ``counted``: the group is being counted, and this many were counted so far."""
        if counted is not None:
            look: _Look = ("count", float(counted))
        elif recording:
            look = ("heartbeat", 0.0)
        else:
            look = _look(fraction_left, overtime, paused)
        if self._closed or look == self._look:
            return
        was, previous = self._look
        self._look = look
        kind, level = look
        from gpiozero.exc import GPIOZeroError

        try:
            if was in ("heartbeat", "count"):
                self.device.source = None  # stops the heartbeat's (or a wink's) thread
            if kind == "count" and was == "count":
                # A wink for each one counted (a double press counts two); one when counting again.
                winks = max(1, int(level - previous))
                self.device.source_delay = HEARTBEAT_STEP
                self.device.source = iter(_WINK * min(winks, 2))
            elif kind == "count":
                self.device.value = 1.0  # also stops a blink or pulse
            elif kind == "heartbeat":
                self.device.off()  # stops a blink or pulse before the heartbeat's first flash
                self.device.source_delay = HEARTBEAT_STEP
                self.device.source = cycle(HEARTBEAT)
            elif kind == "off":
                self.device.off()
            elif kind == "pulse":
                self.device.pulse(fade_in_time=PULSE_SECONDS, fade_out_time=PULSE_SECONDS, background=True)
            elif kind == "blink":
                self.device.blink(on_time=BLINK_SECONDS, off_time=BLINK_SECONDS, background=True)
            else:
                self.device.value = level  # also stops a blink or pulse
        except (GPIOZeroError, OSError) as exc:
            # A status light is never worth stopping a session for.
            log.warning("status LED failed (%s); carrying on without it", exc)
            self.close()

    def close(self) -> None:
        """Switch the LED off and release the pin."""
        if self._closed:
            return
        self._closed = True
        self.device.close()


def _look(fraction_left: float | None, overtime: bool, paused: bool) -> _Look:
    """What the LED should look like; equal looks need no hardware change."""
    if fraction_left is None:
        return ("off", 0.0)
    if paused:
        return ("pulse", 0.0)
    if overtime:
        return ("blink", 0.0)
    level = min(1.0, max(MIN_BRIGHTNESS, fraction_left))
    return ("steady", round(round(level / BRIGHTNESS_STEP) * BRIGHTNESS_STEP, 6))


def make_led(settings: LedSettings) -> StatusLed | None:
    """The status LED, or None when it is switched off or cannot be used (one warning)."""
    if not settings.enabled:
        return None
    try:
        return StatusLed(settings.pin)
    except DeviceError as exc:
        log.warning("%s; carrying on without a status LED", exc)
        return None
