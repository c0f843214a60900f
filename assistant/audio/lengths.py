"""How long espeak-ng takes to say a text: what a right rendering's length is.

A rendering that came out empty, cut off or at the wrong rate is told by its length
(see :mod:`assistant.audio.synthesis`, issue 10): :func:`expected_seconds` estimates it
from the text and the rate, :func:`length_problem` says when a rendering is outside the
measured spread, and :func:`lengths_agree` lets two renderings of an unusual text
confirm each other.
"""

from __future__ import annotations

import re

LENGTH_BOUNDS = (0.7, 1.45)
"""A rendering whose length is outside these times :func:`expected_seconds` is rendered
again. Measured over every prepared phrase (Dutch and English, heads and rests: 97
texts) at rates 120-220 in steps of 10: 0.83-1.15 (median 0.99); 600 on-demand
sentences (status, overtime, notes read back, summaries) at 120-220: 0.72-1.15; the
prepared phrases at 60-400: 0.63-1.20 (short texts at high rates are shorter). A
sentence said at 200 words per minute instead of 150 (issue 10) is 0.74 (the engine
also reads the rate back), an empty or cut-off rendering far less."""

AGREEING_RENDERINGS = 0.035
"""Two renderings of one text whose lengths differ by less than this fraction are the
text's real length even outside :data:`LENGTH_BOUNDS`: a text of abbreviations or of
many numbers is longer than its letters suggest, a very short one at a high rate
shorter. espeak-ng renders a text alike each time (what it said just before changes
the length by up to 2.7 %, seen here); a race does not."""

LENGTH_LIMITS = (0.25, 4.0)
"""...but never outside these."""


def expected_seconds(text: str, rate: int) -> float:
    """How long espeak-ng takes to say ``text`` at ``rate`` words per minute, roughly.

    In word units: 5.75 letters make one; a number of n digits is n - 0.5 (numbers are
    spoken out: "vijf", "eenentwintig"); each punctuation mark that ends a clause is a
    pause of 1.25, and so is the end of a text without one; plus 0.45. espeak-ng speaks at least 80 and at most 450 words per
    minute, and above 140 a little faster than the rate says (0.85 times at 400).
    Fitted by least squares to the prepared phrases and 600 on-demand sentences; see
    :data:`LENGTH_BOUNDS` for the spread.
    """
    letters = sum(1 for c in text if c.isalpha())
    numbers = _NUMBER.findall(text)
    # espeak-ng ends every text with a clause's pause, with or without a full stop.
    pauses = len(_PAUSE.findall(text)) + (0 if _PAUSE.search(text.rstrip()[-1:] or ".") else 1)
    units = letters / 5.75 + sum(len(n) - 0.5 for n in numbers) + 1.25 * pauses + 0.45
    spoken = min(max(rate, 80), 450)
    return units * 60 / spoken * (1.0 - 0.00062 * (spoken - 140))


_NUMBER = re.compile(r"\d+")
_PAUSE = re.compile(r"[.,:;!?](?=\s|$)")


def length_problem(text: str, rate: int, seconds: float) -> str | None:
    """Why ``seconds`` of audio cannot be ``text`` spoken at ``rate``; None when it fits."""
    if seconds <= 0:
        return "empty"
    ratio = seconds / expected_seconds(text, rate)
    low, high = LENGTH_BOUNDS
    if low <= ratio <= high:
        return None
    return f"{seconds:.2f} s of audio, {ratio:.2f} times what the text takes at {rate} words per minute"


def lengths_agree(text: str, rate: int, first: float, second: float) -> bool:
    """Whether two renderings of one text, ``first`` and ``second`` seconds long, have the
    same, plausible length (see :data:`AGREEING_RENDERINGS`)."""
    if min(first, second) <= 0 or abs(first - second) > AGREEING_RENDERINGS * max(first, second):
        return False
    ratio = first / expected_seconds(text, rate)
    return LENGTH_LIMITS[0] <= ratio <= LENGTH_LIMITS[1]
