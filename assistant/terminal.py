"""The terminal the program may run in: the keyboard button and the download bar need to know."""

from __future__ import annotations

from typing import IO, Any


def is_tty(stream: IO[Any]) -> bool:
    """Whether ``stream`` is a terminal; False for anything that cannot say (closed, no ``isatty``)."""
    try:
        return stream.isatty()
    except (OSError, ValueError, AttributeError):
        return False
