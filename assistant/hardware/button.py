"""The one button on the table, and the keyboard standing in for it on a laptop.

Both turn what the hand does into gestures, posted as events through ``post`` (the
daemon's thread-safe queue put). They run in their own threads (gpiozero's, a timer's,
a reader's) and do nothing there but post:

- :class:`~assistant.core.events.ButtonDown` at once whenever the button goes down, so the
  daemon can answer with a tone and cut speech before the gesture is known;
- :class:`~assistant.core.events.Press` for a short press, once no second press followed
  within ``double_press_seconds`` of its release;
- :class:`~assistant.core.events.DoublePress` when the second of two quick presses is released;
- :class:`~assistant.core.events.LongPress` the moment the button has been held for
  ``hold_seconds``; the release after it posts nothing.

:func:`make_button` chooses the input once, at start-up.
"""

from __future__ import annotations

import atexit
import logging
import os
import select
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from assistant.core.events import ButtonDown, DoublePress, Event, LongPress, Press, VolumeStep
from assistant.core.settings import ButtonSettings
from assistant.errors import ButtonError
from assistant.hardware.gpio import NO_GPIO, open_gpio
from assistant.terminal import is_tty

log = logging.getLogger(__name__)

Post = Callable[[Event], None]
"""Where gestures go: the daemon's thread-safe queue put."""

KEYS = (
    ("Enter or space", "short press: start, next person, next phase"),
    ("d", "double press: the phase and the time left"),
    ("p", "long press: pause or resume"),
    ("+ or =", "volume knob one step clockwise: louder"),
    ("-", "volume knob one step back: softer"),
    ("q", "quit"),
)
"""The keys that stand in for the button, and what each does (as the README's table)."""

KEY_HELP = "Keys: " + "; ".join(f"{key} = {what}" for key, what in KEYS) + "."
"""The keys in one line, for the debug log when another key is pressed."""

LINE_LIMIT = 256
"""The longest line the keyboard reader takes in line mode. A key is one character and
Enter; a longer line is not typed but a file or a device (``</dev/zero`` never ends a
line: read whole, it grew the daemon to 4 GB in 12 s)."""


class _NotKeys(ValueError):
    """The input is not keys typed on a keyboard; reading stops."""


class GpioButton:
    """A push button on a GPIO pin, read with gpiozero.

    The double press is decided when the second press is released, not when it goes
    down: a second press that is held instead becomes a long press. In that case the
    quick tap before it is absorbed (no Press), because a fumbled tap before a hold is
    far likelier than a "next" followed at once by "pause".
    """

    def __init__(self, settings: ButtonSettings, post: Post, clock: Callable[[], float] = time.monotonic) -> None:
        """Open the button on ``settings.pin``; :class:`ButtonError` if there is no usable GPIO.

        ``clock`` is the time source for the double-press window (seconds, monotonic).
        """
        from gpiozero import Button

        self._post = post
        self._clock = clock
        self._window = settings.double_press_seconds
        self._lock = threading.Lock()
        self._down = False
        self._held = False
        self._second = False
        self._released_at = 0.0
        self._pending: threading.Timer | None = None
        self._closed = False
        self.device = open_gpio(
            lambda: Button(
                settings.pin,
                pull_up=settings.pull_up,
                bounce_time=settings.bounce_seconds or None,
                hold_time=settings.hold_seconds,
            ),
            f"GPIO button on BCM pin {settings.pin}",
            ButtonError,
        )
        """The gpiozero ``Button`` underneath."""
        self.device.when_pressed = self._on_pressed
        self.device.when_held = self._on_held
        self.device.when_released = self._on_released

    def close(self) -> None:
        """Stop posting gestures and release the pin (a pending short press is dropped)."""
        with self._lock:
            self._closed = True
            if self._pending is not None:
                self._pending.cancel()
                self._pending = None
        # Outside the lock: closing joins gpiozero's hold thread, which may be waiting for it.
        self.device.close()

    # The callbacks below run in gpiozero's threads and in a Timer's. They post under the
    # lock so that events come out in the order the gestures happened.

    def _on_pressed(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._down = True
            self._held = False
            self._second = False
            if self._pending is not None:
                self._pending.cancel()
                self._pending = None
                if self._clock() - self._released_at <= self._window:
                    self._second = True
                else:
                    # The window closed but its timer had not run yet: the first press stands alone.
                    self._post(Press())
            self._post(ButtonDown())

    def _on_held(self) -> None:
        with self._lock:
            # gpiozero's hold thread can fire just after a release it raced with.
            if self._closed or not self._down:
                return
            self._held = True
            self._post(LongPress())

    def _on_released(self) -> None:
        with self._lock:
            if self._closed or not self._down:
                return
            self._down = False
            if self._held:
                return
            if self._second:
                self._post(DoublePress())
                return
            self._released_at = self._clock()
            timer = threading.Timer(self._window, lambda: self._on_window_closed(timer))
            timer.daemon = True
            self._pending = timer
            timer.start()

    def _on_window_closed(self, timer: threading.Timer) -> None:
        with self._lock:
            if self._closed or self._pending is not timer:
                return
            self._pending = None
            self._post(Press())


class KeyboardButton:
    """The keyboard standing in for the button (see :data:`KEY_HELP`).

    On a terminal single keys are read in cbreak mode (the terminal is restored on
    :meth:`close` and at exit). Otherwise lines are read, so pipes and tests work: a
    line's first non-blank character is the key, and an empty line is a press. Each
    gesture posts what the real button would: ButtonDown first (two for a double
    press), then the gesture. ``q`` calls ``on_quit`` and stops reading. When the
    input ends or cannot be read (a service with stdin on /dev/null) the reader stops
    quietly.
    """

    def __init__(self, post: Post, on_quit: Callable[[], None] | None = None, stream: TextIO | None = None) -> None:
        """Start reading ``stream`` (default: ``sys.stdin``) in a daemon thread."""
        self._post = post
        self._on_quit = on_quit
        self._stream = sys.stdin if stream is None else stream
        self._stop = threading.Event()
        self._fd: int | None = None
        self._saved_tty: list[object] | None = None
        if self._stream is not None and is_tty(self._stream):
            self._enter_cbreak(self._stream.fileno())
        self._thread = threading.Thread(target=self._read, name="keyboard-button", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop reading and give the terminal back its settings."""
        self._stop.set()
        # The key reader notices within its select() timeout and must be done before
        # the terminal is restored. A line reader may sit in readline() for good: it is
        # a daemon thread and ignores anything read after this.
        if self._fd is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        self._restore_tty()

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until the reader has stopped (input ended, ``q``, or closed); True if it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _enter_cbreak(self, fd: int) -> None:
        import termios
        import tty

        try:
            self._saved_tty = termios.tcgetattr(fd)
        except termios.error as exc:  # a terminal we may not configure: read lines instead
            log.debug("keyboard stays in line mode: %s", exc)
            return
        self._fd = fd
        atexit.register(self._restore_tty)
        tty.setcbreak(fd)

    def _restore_tty(self) -> None:
        saved, self._saved_tty = self._saved_tty, None
        if saved is None or self._fd is None:
            return
        import termios

        try:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, saved)  # type: ignore[arg-type]
        except (OSError, termios.error):
            pass  # the terminal is gone already
        atexit.unregister(self._restore_tty)

    def _read(self) -> None:
        try:
            if self._stream is None:
                return
            if self._fd is not None:
                self._read_keys(self._fd)
            else:
                self._read_lines(self._stream)
        except _NotKeys as exc:
            log.warning("%s; keys are no longer read", exc)
            return
        except (OSError, ValueError) as exc:  # stdin closed or unreadable
            log.debug("keyboard input unreadable: %s", exc)
        if not self._stop.is_set():
            log.info("keyboard input ended; keys are no longer read")

    def _read_keys(self, fd: int) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            data = os.read(fd, 1)
            if not data:
                return
            if not self._key(data.decode("latin-1")):
                return

    def _read_lines(self, stream: TextIO) -> None:
        while not self._stop.is_set():
            line = stream.readline(LINE_LIMIT)
            if not line or self._stop.is_set():
                return
            if len(line) >= LINE_LIMIT and not line.endswith("\n"):
                # Skipping to its end could take for ever, and its parts are no keys.
                raise _NotKeys(
                    f"the keyboard input has a line of more than {LINE_LIMIT} characters, which is no key "
                    "(is standard input a file or a device?)"
                )
            key = line.strip()[:1] or "\n"
            if not self._key(key):
                return

    def _key(self, key: str) -> bool:
        """Post the gesture for one key; False when reading should stop."""
        key = key.lower()
        if key in ("\n", "\r", " "):
            self._post(ButtonDown())
            self._post(Press())
        elif key == "d":
            self._post(ButtonDown())
            self._post(ButtonDown())
            self._post(DoublePress())
        elif key == "p":
            self._post(ButtonDown())
            self._post(LongPress())
        elif key in ("+", "="):
            self._post(VolumeStep(1))
        elif key == "-":
            self._post(VolumeStep(-1))
        elif key == "q":
            self._stop.set()
            if self._on_quit is not None:
                self._on_quit()
            return False
        else:
            log.debug("ignored key %r; %s", key, KEY_HELP)
        return True


def make_button(settings: ButtonSettings, post: Post, on_quit: Callable[[], None]) -> GpioButton | KeyboardButton:
    """The button chosen by ``settings.input``; "auto" falls back to the keyboard, saying so plainly.

    ``on_quit`` is called when the quit key is pressed (keyboard only). Raises
    :class:`ButtonError` for "gpio" without a usable GPIO button.
    """
    if settings.input == "keyboard":
        say_keys('the keyboard is the button ([button] input = "keyboard")')
        return KeyboardButton(post, on_quit)
    if settings.input == "gpio":
        return GpioButton(settings, post)
    try:
        return GpioButton(settings, post)
    except ButtonError as exc:
        # A laptop has no GPIO at all: that is said plainly, without the pin libraries'
        # import errors (--debug logs those). Any other reason (a pin in use, no rights
        # on /dev/gpiochip0) is a fault of a Pi and is named.
        why = "no GPIO on this machine" if str(exc).endswith(NO_GPIO) else str(exc)
        say_keys(f"{why}: the keyboard is the button", logging.WARNING)
        return KeyboardButton(post, on_quit)


def say_keys(why: str, level: int = logging.INFO) -> None:
    """Log ``why`` and then each key and what it does, every one on a line of its own."""
    log.log(level, "%s", why)
    width = max(len(key) for key, _ in KEYS)
    for key, what in KEYS:
        log.info("  key %-*s  %s", width, key, what)
