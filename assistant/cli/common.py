"""What every ``intervisie`` command shares: exit codes, the number option, loading the files.
"""

from __future__ import annotations

import argparse
from typing import Any

from assistant.config import load_method, load_phrases, load_settings, user_config_path
from assistant.core.method import Method
from assistant.core.phrases import Phrases
from assistant.core.settings import Settings

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2

ECHO_CHARS = 60
"""What the command shows back of a string the user gave (an id, a name) at most."""


def echoed(text: str, limit: int | None = ECHO_CHARS) -> str:
    """``text`` as a message shows it back: control characters escaped (``\\x00``, ``\\x1b``,
    ``\\u202e``), and cut to ``limit`` characters with "…" in the middle, keeping its start
    and its end. A raw NUL or escape sequence would reach the terminal (and steer it), and
    a 100,000-character argument would fill it. ``limit`` None: escaped, never cut."""
    pieces = [char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text]
    if limit is None or sum(len(piece) for piece in pieces) <= limit:
        return "".join(pieces)
    head, tail = _fitting(pieces, (limit - 1) * 2 // 3), _fitting(pieces[::-1], (limit - 1) // 3)[::-1]
    return "".join(head) + "…" + "".join(tail)


def _fitting(pieces: list[str], room: int) -> list[str]:
    """The first pieces whose lengths add up to at most ``room``."""
    taken: list[str] = []
    for piece in pieces:
        room -= len(piece)
        if room < 0:
            break
        taken.append(piece)
    return taken


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value <= 10000:
        raise argparse.ArgumentTypeError(f"expected a number above 0 (at most 10000), got {text!r}")
    return value


def load_all(args: argparse.Namespace) -> tuple[Settings, Method, Phrases]:
    """Settings, method and phrases from the files and options; ConfigError if one is wrong."""
    overrides: dict[str, Any] = {}
    if args.method:
        overrides["method"] = args.method
    if args.lang:
        overrides["language"] = args.lang
    settings = load_settings(args.config or user_config_path(), overrides)
    method = load_method(settings.method, settings.language)
    phrases = load_phrases(settings.language)
    return settings, method, phrases
