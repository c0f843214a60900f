"""Which rendered clips the speaker keeps: the prepared phrases, and a few recent ones.

A prepared phrase is kept for the whole run, so saying it starts at once; a long one
keeps only its head (:func:`split_head`), the rest renders while the head plays. What is
rendered on demand is kept too, within :data:`RECENT_CLIPS` and :data:`RECENT_BYTES`.
"""

from __future__ import annotations

import collections
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future

from assistant.audio.synthesis import Samples

HEAD_CHARACTERS = 60
"""A prepared phrase longer than this keeps only its first sentences (about this many
characters, a few seconds of speech) rendered ahead; the rest renders when it is said,
while the head plays (espeak-ng renders about fifty times faster than it speaks). The
long phase introductions would otherwise hold megabytes of audio all day."""
RECENT_CLIPS = 32
"""On-demand renderings kept besides the prepared phrases (the latter are kept forever)."""
RECENT_BYTES = 2_000_000
"""...and at most this much audio of them (about 45 s at 22050 Hz): the summary at the end
of a session is long and different every time, and 32 of them held 20 MB after a few
weeks (found by the long-life test)."""


class ClipCache:
    """Device-ready audio by text (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._prepared: dict[str, Future[Samples]] = {}
        self._heads: dict[str, tuple[str, str]] = {}  # prepared long phrase -> (head, rest)
        self._recent: collections.OrderedDict[str, Future[Samples]] = collections.OrderedDict()

    def keep(self, text: str, head: str, rest: str, audio: Future[Samples]) -> None:
        """Keep ``audio`` of the prepared phrase ``text`` (its ``head``; ``rest`` is not rendered ahead)."""
        with self._lock:
            self._prepared[head] = audio
            self._recent.pop(head, None)
            if rest:
                self._heads[text] = (head, rest)

    def split(self, text: str) -> tuple[str, str] | None:
        """(head, rest) of a prepared long phrase; None for any other text."""
        with self._lock:
            return self._heads.get(text)

    def get(self, text: str, render: Callable[[], Future[Samples]]) -> Future[Samples]:
        """The kept audio of ``text``, or ``render()``'s, kept among the recent ones.

        A rendering that failed is not kept: it is rendered again.
        """
        with self._lock:
            future = self._prepared.get(text) or self._recent.get(text)
            if future is not None and not (future.done() and future.exception() is not None):
                if text in self._recent:
                    self._recent.move_to_end(text)
                return future
            future = render()
            self._recent[text] = future
            while len(self._recent) > 1 and (
                len(self._recent) > RECENT_CLIPS or self._recent_bytes() > RECENT_BYTES
            ):
                self._recent.popitem(last=False)
            return future

    def _recent_bytes(self) -> int:
        """Memory of the rendered clips among the recent ones (lock held)."""
        return sum(
            f.result().nbytes for f in self._recent.values() if f.done() and not f.cancelled() and f.exception() is None
        )


def split_head(text: str) -> tuple[str, str]:
    """(first sentences, the rest) of a long text; (text, "") when it is short."""
    if len(text) <= HEAD_CHARACTERS * 1.5:
        return text, ""
    sentences = re.split(r"(?<=[.!?])\s+", text)
    count = 0
    head = ""
    while count < len(sentences) and (not head or len(head) < HEAD_CHARACTERS):
        longer = f"{head} {sentences[count]}".strip()
        if head and len(longer) > HEAD_CHARACTERS * 1.5:
            break  # a long sentence starts the rest instead
        head = longer
        count += 1
    return head, " ".join(sentences[count:])
