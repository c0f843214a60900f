"""Session time: a monotonic clock that can run faster for demos and tests."""

from __future__ import annotations

import time
from collections.abc import Callable


class SessionClock:
    """Seconds of session time, from a monotonic source, ``speed`` times real time.

    ``offset`` is the session time at creation; after a restart the daemon sets it so
    the clock continues where the journal left off (plus the time the device was off).
    """

    def __init__(self, speed: float = 1.0, offset: float = 0.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._monotonic = monotonic
        self._origin = monotonic()
        self._offset = offset

    def now(self) -> float:
        """The current session time in seconds."""
        return self._offset + (self._monotonic() - self._origin) * self.speed

    def set_now(self, session_time: float) -> None:
        """Make :meth:`now` return ``session_time`` at this moment."""
        self._origin = self._monotonic()
        self._offset = session_time

    def monotonic_at(self, session_time: float) -> float:
        """The monotonic time at which the clock shows ``session_time``."""
        return self._origin + (session_time - self._offset) / self.speed

    def real_seconds(self, session_seconds: float) -> float:
        """How long ``session_seconds`` of session time take in real time."""
        return session_seconds / self.speed


class FakeClock:
    """A clock that only moves when told to, for tests and replay."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.t += seconds
