"""Names masked in what the recogniser heard.

Teachers talk about pupils and colleagues, so the AVG/GDPR applies to what the device
keeps. What the recogniser heard is checked against a list of common Dutch first names
(``config/names/nl.txt``), the group's own names (``[privacy] participants``) and an
optional file of further names; every name becomes the mask (``[naam]``). The daemon
masks a :class:`~assistant.core.events.Heard` (or ``Captured``) event *before* the
session sees it, so the journal, the record, the report and the read-back all hold the
masked text and no recognised name is ever written to disk. The read-back says the mask
("Ik heb genoteerd: ik vind dat naam ..."), so the group hears exactly what will be kept
and can record it again (double press) when a word was masked by mistake.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Iterable
from typing import Any, cast

from assistant.core.events import Captured, Event, Heard
from assistant.core.record import CaptureItem, SessionRecord, WordRecord

TUSSENVOEGSELS = frozenset(
    "van de der den het ter ten te t in op aan bij uit onder voor la le du da di del von vom zu".split()
)
"""Little words in Dutch surnames ("de" in "Jan de Vries"): never masked on their own."""

_TOKEN = re.compile(r"\w+")
# Between the words of a multi-word name: spaces, hyphens ("anne-marie") or an apostrophe.
_NAME_GAP = re.compile(r"[\s\-\u2010\u2011'\u2019]+")


def fold(word: str) -> str:
    """A word as names are compared: lower case, without accents ("Zoë" -> "zoe")."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _tokens(text: str) -> tuple[str, ...]:
    return tuple(fold(t) for t in _TOKEN.findall(text))


def participant_patterns(name: str) -> list[tuple[str, ...]]:
    """What to mask for one participant: the whole name and its parts.

    "Jan de Vries" gives "jan de vries", "jan", "de vries" and "vries" (and "jan de
    vries" in any case), never "de" alone; single letters (initials) are not masked on
    their own.
    """
    words = _tokens(name)
    out: set[tuple[str, ...]] = set()
    for start in range(len(words)):
        for end in range(start + 1, len(words) + 1):
            part = words[start:end]
            if part[-1] in TUSSENVOEGSELS or all(w in TUSSENVOEGSELS for w in part):
                continue
            if len(part) == 1 and len(part[0]) < 2:
                continue
            out.add(part)
    if words:
        out.add(words)
    return sorted(out, key=len, reverse=True)


class NameMasker:
    """Replaces names in recognised text by a mask, at word boundaries only."""

    def __init__(self, names: Iterable[Iterable[str] | str], mask: str) -> None:
        """``names``: names as text ("anne-marie") or as folded word sequences."""
        self.mask_text = mask
        self._by_first: dict[str, list[tuple[str, ...]]] = {}
        for name in names:
            words = _tokens(name) if isinstance(name, str) else tuple(name)
            if words and words not in self._by_first.get(words[0], []):
                self._by_first.setdefault(words[0], []).append(words)
        for candidates in self._by_first.values():
            candidates.sort(key=len, reverse=True)  # the longest name wins: "jan willem" over "jan"
        self._names = {name for candidates in self._by_first.values() for name in candidates}
        self._longest = max((len(name) for name in self._names), default=0)

    @property
    def size(self) -> int:
        """How many names (and name parts) are masked."""
        return sum(len(c) for c in self._by_first.values())

    def mask(self, text: str) -> str:
        """``text`` with every name replaced by the mask."""
        text = unicodedata.normalize("NFC", text)  # an accent as a separate mark is part of its word
        found = list(_TOKEN.finditer(text))
        folded = [fold(m.group()) for m in found]
        out: list[str] = []
        position = i = 0
        while i < len(found):
            length = self._match(folded, i, lambda k: text[found[k - 1].end() : found[k].start()])
            if length:
                out.append(text[position : found[i].start()])
                out.append(self.mask_text)
                position = found[i + length - 1].end()
                i += length
            else:
                i += 1
        out.append(text[position:])
        return "".join(out)

    def mask_words(self, words: list[WordRecord]) -> list[WordRecord]:
        """The recogniser's per-word list, masked the same way as its text.

        A name of several words becomes one entry, with the lowest confidence of its words.
        """
        tokens = [_tokens(str(word.get("word", ""))) for word in words]
        out: list[WordRecord] = []
        i = 0
        while i < len(words):
            last = -1
            joined: tuple[str, ...] = ()
            for j in range(i, min(i + self._longest, len(words))):
                joined += tokens[j]
                if joined and joined in self._names:
                    last = j
            if last < 0:
                entry = words[i].copy()
                entry["word"] = self.mask(str(entry.get("word", "")))
                out.append(entry)
                i += 1
                continue
            merged = words[i].copy()
            merged["word"] = self.mask_text
            confs = [w.get("conf") for w in words[i : last + 1]]
            numbers = [float(c) for c in confs if isinstance(c, (int, float)) and not isinstance(c, bool)]
            if numbers and len(numbers) == len(confs):
                merged["conf"] = min(numbers)
            if "end" in words[last]:
                merged["end"] = words[last]["end"]
            out.append(merged)
            i = last + 1
        return out

    def event(self, event: Event) -> Event:
        """An event with the recognised text in it masked (other events as they are)."""
        if isinstance(event, Heard):
            text, words = self.mask(event.text), self.mask_words(list(event.words))
            if text == event.text and words == event.words:
                return event
            return dataclasses.replace(event, text=text, words=words)
        if isinstance(event, Captured):
            extra = dict(event.extra)
            if isinstance(extra.get("words"), list):
                extra["words"] = self.mask_words([cast(WordRecord, w) for w in extra["words"] if isinstance(w, dict)])
            return dataclasses.replace(event, text=self.mask(event.text), extra=extra)
        return event

    def record(self, record: SessionRecord) -> SessionRecord:
        """A copy of a session record with the text of every note masked.

        For records kept before masking was switched on: their reports are masked too.
        """
        masked: dict[str, list[CaptureItem]] = {}
        for kind, items in record.get("captures", {}).items():
            masked[kind] = []
            for item in items:
                copy = item.copy()
                if "text" in copy:
                    copy["text"] = self.mask(copy["text"])
                if "words" in copy:
                    copy["words"] = self.mask_words([w for w in copy["words"] if isinstance(w, dict)])
                masked[kind].append(copy)
        result = record.copy()
        if "captures" in record:
            result["captures"] = masked
        return result

    def _match(self, folded: list[str], i: int, gap: Any) -> int:
        """Length (in tokens) of the longest name starting at token ``i``, or 0."""
        for name in self._by_first.get(folded[i], ()):
            n = len(name)
            if tuple(folded[i : i + n]) != name:
                continue
            if all(_NAME_GAP.fullmatch(gap(k)) for k in range(i + 1, i + n)):
                return n
        return 0
