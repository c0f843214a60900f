"""What the device says: the texts of one language, from a locale file in ``config/locales``."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

from assistant.core.settings import shown
from assistant.errors import ConfigError, check_text

_REQUIRED_UNITS = ("minutes", "seconds", "minutes_seconds", "half_minute")


class Phrases:
    """Texts of one language, filled in with :meth:`say`."""

    def __init__(self, texts: dict[str, Any], language: str, path: str = "") -> None:
        self.language = language
        self.path = path
        self._texts = texts

    def say(self, key: str, /, **fields: Any) -> str:
        """The text for ``key`` with its {fields} filled in."""
        template = self._texts[key]
        if isinstance(template, dict):
            return self._plural(template, int(fields.get("n", 0)), key).format(**fields)
        return str(template).format(**fields)

    def table(self, key: str, /) -> dict[str, str]:
        """A table of texts as it is in the locale file (for example ``commands``)."""
        value = self._texts[key]
        if not isinstance(value, dict):
            raise KeyError(key)
        return {str(k): str(v) for k, v in value.items()}

    def duration(self, seconds: float) -> str:
        """A length of time as people say it: "4 minuten", "40 seconden"."""
        units = self._texts["units"]
        seconds = max(0.0, seconds)
        if seconds < 57.5:
            n = max(1, int(5 * round(seconds / 5))) if seconds >= 2.5 else max(1, round(seconds))
            return self._plural(units["seconds"], n, "units.seconds").format(n=n)
        n = max(1, round(seconds / 60))
        return self._plural(units["minutes"], n, "units.minutes").format(n=n)

    def minutes(self, minutes: float) -> str:
        """A planned length in minutes ("10 minuten", "een halve minuut")."""
        if minutes < 1:
            return str(self._texts["units"]["half_minute"]) if minutes <= 0.5 else self.duration(minutes * 60)
        return self.duration(minutes * 60)

    def _plural(self, table: dict[str, Any], n: int, key: str) -> str:
        return str(table["one"] if n == 1 else table["other"])


def phrases_from_toml(texts: dict[str, Any], reference: dict[str, Any], language: str, path: Path) -> Phrases:
    """Check a parsed locale against the reference locale and build its :class:`Phrases`.

    Every key of the reference must be there, with the same {fields}; a wrong text is a
    ConfigError at start-up, not a crash mid-session.
    """
    units = texts.get("units")
    if not isinstance(units, dict) or any(k not in units for k in _REQUIRED_UNITS):
        raise ConfigError(path, "units", f"expected a [units] table with {', '.join(_REQUIRED_UNITS)}")
    _check_against(texts, reference, path, "")
    return Phrases(texts, language, str(path))


def _check_against(texts: dict[str, Any], reference: dict[str, Any], path: Path, prefix: str) -> None:
    for key, ref in reference.items():
        dotted = f"{prefix}{key}"
        if key not in texts:
            raise ConfigError(path, dotted, "missing text")
        value = texts[key]
        if isinstance(ref, dict):
            if not isinstance(value, dict):
                raise ConfigError(path, dotted, "expected a table like the Dutch locale's")
            _check_against(value, ref, path, f"{dotted}.")
        elif not isinstance(value, str):
            raise ConfigError(path, dotted, f"expected text, got {shown(value)}")
        else:
            check_text(value, path, dotted, lines=True)
            fields = _fields(value, path, dotted)
            if fields - _fields(ref, path, dotted) - {"n"}:
                extra = ", ".join(sorted(fields - _fields(ref, path, dotted)))
                raise ConfigError(path, dotted, f"uses fields the device does not fill in: {extra}")


def _fields(template: str, path: Path, dotted: str) -> set[str]:
    """The {names} a text uses; ConfigError for braces the device could not fill in."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        why = f"unmatched {{ or }} (write {{{{ or }}}} for a brace itself), got {shown(template)}"
        raise ConfigError(path, dotted, why) from None
    names = set()
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ConfigError(path, dotted, f"a field is written as {{name}}, got {shown('{' + name + '}')} in {shown(template)}")
        names.add(name)
    return names
