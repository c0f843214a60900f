"""What the device says, as readable lines in the terminal it runs in.

On a laptop, or a Pi without a speaker yet, the spoken texts would otherwise appear only
inside log lines (``INFO assistant.service.daemon: say [phase]: ...``). When the daemon's
standard output is a terminal, each text is also printed on a line of its own, after the
session time (minutes and seconds since the session started; ``--:--`` before). Under
systemd the output is not a terminal, so nothing extra reaches the system log.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import IO, Any

from assistant.terminal import is_tty


class ConsoleEcho:
    """Prints each text the device says, with the session time."""

    def __init__(self, stream: IO[str], session_time: Callable[[], float | None]) -> None:
        self._stream = stream
        self._session_time = session_time

    def __call__(self, text: str) -> None:
        line = f"{clock(self._session_time())}  {printable(text)}"
        try:
            print(line, file=self._stream, flush=True)
        except (OSError, ValueError):
            pass  # the terminal went away: the device goes on speaking


def console_echo(session_time: Callable[[], float | None], stream: IO[Any] | None = None) -> ConsoleEcho | None:
    """An echo to standard output when it is a terminal; None otherwise."""
    out = sys.stdout if stream is None else stream
    return ConsoleEcho(out, session_time) if is_tty(out) else None


def clock(seconds: float | None) -> str:
    """``mm:ss`` (``h:mm:ss`` from an hour on); ``--:--`` without a session."""
    if seconds is None:
        return "--:--"
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def printable(text: str) -> str:
    """One line: line breaks and control characters become spaces."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())
