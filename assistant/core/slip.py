"""The printed slip's lines: what is on it and how it wraps at the printer's width.

The slip is built from a session record (:mod:`assistant.storage.slip`) as a list of
:class:`SlipLine` and printed by :mod:`assistant.hardware.printer`. Wrapping lives here,
once, so that what the printer gets and what a test reads back are the same lines: a
receipt printer would otherwise break a long line in the middle of a word.
"""

from __future__ import annotations

from dataclasses import dataclass

WIDTHS = (32, 42, 48)
"""Characters per line of the usual receipt printers: 58 mm paper (32), 80 mm (42 or 48)."""

STYLES = ("title", "heading", "text", "item", "rule", "blank")
"""``title``: centred, bold and tall; ``heading``: bold; ``item``: a list item with a
bullet and a hanging indent; ``rule``: a line of dashes; ``blank``: an empty line."""

BULLET = "- "


@dataclass(frozen=True)
class SlipLine:
    """One paragraph of the slip (it may wrap onto several printed lines)."""

    text: str
    style: str = "text"


def wrap(text: str, width: int, indent: str = "", first: str = "") -> list[str]:
    """``text`` in lines of at most ``width`` characters, broken at spaces.

    ``first`` starts the first line (a bullet) and ``indent`` the others, so a list item
    hangs under its text. A word longer than a whole line is cut, as nothing else fits.
    """
    words = text.split()
    lines: list[str] = []
    line = first
    room = width - len(first)
    fresh = True  # nothing but the prefix on the line yet
    for word in words:
        while not fresh and len(word) + 1 > room or fresh and len(word) > room:
            if not fresh:
                lines.append(line)
                line, room, fresh = indent, width - len(indent), True
                continue
            # A word longer than a whole line: cut it where the line ends.
            lines.append(line + word[:room])
            word = word[room:]
            line, room = indent, width - len(indent)
        line += word if fresh else " " + word
        room -= len(word) if fresh else len(word) + 1
        fresh = False
    if not fresh or not lines:
        lines.append(line.rstrip())
    return lines


def layout(lines: list[SlipLine], width: int) -> list[tuple[str, str]]:
    """Every printed line as (style, text), each at most ``width`` characters."""
    out: list[tuple[str, str]] = []
    for line in lines:
        if line.style == "blank":
            out.append(("blank", ""))
        elif line.style == "rule":
            out.append(("rule", "-" * width))
        elif line.style == "item":
            out += [("item", part) for part in wrap(line.text, width, " " * len(BULLET), BULLET)]
        else:
            out += [(line.style, part) for part in wrap(line.text, width)]
    return out
