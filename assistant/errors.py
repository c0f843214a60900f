"""The project's exceptions.

Every exception the assistant raises on purpose derives from :class:`AssistantError`
and also from the built-in exception it most resembles, so callers may catch either::

    AssistantError
    ├── ConfigError (ValueError)         a configuration or method file is wrong
    ├── DeviceError (OSError)            a piece of hardware cannot be used
    │   ├── AudioDeviceError             no usable speaker or microphone
    │   ├── ButtonError                  no usable GPIO button
    │   └── SpeechError                  speech synthesis failed
    ├── JournalError (OSError)           the session journal cannot be read or written
    └── ModelError (OSError)             a speech model cannot be installed, found or loaded
"""

from __future__ import annotations

import unicodedata
from pathlib import Path


def _one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped, so it stays one line."""
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable():
            out.append(char)
        elif unicodedata.category(char) == "Zs":  # a no-break or other wide space
            out.append(" ")
        else:
            out.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def check_text(value: str, path: Path | str | None, key: str | None, *, lines: bool = False) -> None:
    """Raise :class:`ConfigError` when ``value`` holds a control character.

    Texts are spoken and printed (reports, ``intervisie`` output): a NUL stops the speech
    engine, an escape sequence would steer the terminal, others are read out as noise.
    Tabs, and line breaks where ``lines`` is true (TOML's multi-line strings), are fine.
    """
    allowed = "\t\n\r" if lines else "\t"
    for char in value:
        if unicodedata.category(char) == "Cc" and char not in allowed:
            code = f"\\u{ord(char):04x}"
            raise ConfigError(path, key, f"text cannot contain the control character {code}; remove it")


class AssistantError(Exception):
    """Base class of every error the assistant raises on purpose."""


class ConfigError(AssistantError, ValueError):
    """A configuration or method file is missing, unreadable or has a wrong value.

    The message names the file, the key and what was expected, so it can be shown to
    the user as one line.
    """

    def __init__(self, path: Path | str | None, key: str | None, problem: str) -> None:
        self.path = str(path) if path is not None else None
        self.key = key
        self.problem = problem
        where = self.path or "configuration"
        if key:
            where = f"{where}: {key}"
        # A file name or a quoted value may hold a line break: the message stays one line.
        super().__init__(_one_line(f"{where}: {problem}"))


class DeviceError(AssistantError, OSError):
    """A piece of hardware is missing or cannot be used."""


class AudioDeviceError(DeviceError):
    """No usable audio output (or input) device."""


class ButtonError(DeviceError):
    """No usable GPIO button."""


class SpeechError(DeviceError):
    """Speech synthesis failed (espeak-ng missing or broken)."""


class JournalError(AssistantError, OSError):
    """The session journal or records cannot be read or written."""


class ModelError(AssistantError, OSError):
    """A speech recognition model cannot be downloaded, unpacked, found or loaded.

    The message says what is wrong and what to do about it, in one line.
    """
