"""Speech to text with Vosk: the part of listening that never touches a microphone.

:class:`Transcriber` turns blocks of 16-bit mono audio into
:class:`~assistant.core.events.Heard` and :class:`~assistant.core.events.VoiceCommand`
events, with a model loaded by :mod:`assistant.audio.model`. The transcriber measures
every length in audio time (samples fed), so the same audio always gives the same events,
whether it comes from a microphone (:mod:`assistant.audio.listener`), a test or a
benchmark (:meth:`Transcriber.feed_pcm`).

It runs in one thread: the caller feeds audio and passes on capture and stop requests
between blocks, never at the same time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from assistant import memory
from assistant.audio.model import MODEL_RATE, Recognizer, RecognizerFactory, command_grammar, command_phrases, vosk_recognizer
from assistant.core.events import Event, Heard, VoiceCommand
from assistant.core.record import WordRecord
from assistant.core.settings import ListeningSettings

log = logging.getLogger(__name__)

BLOCK_SECONDS = 0.1
"""Audio is handled in blocks of this length (also the microphone's block size)."""


STUCK_SPEAKER_SECONDS = 120.0
"""A note whose microphone never opened, because the device kept speaking this long, ends."""


@dataclass
class _Note:
    """The note being taken, with its clock in audio seconds."""

    kind: str
    continuous: bool
    elapsed: float = 0.0
    """Audio captured since the note began (muted audio included)."""
    listened: float = 0.0
    """Audio captured with the microphone open: the wait for a first word counts only this,
    so the device's own invitation does not eat into the group's time to start."""
    opened: float | None = None
    """``elapsed`` at the first block heard with the microphone open (after the invitation):
    the longest note counts from here, so announcements queued before the invitation do
    not eat into it either."""
    said: bool = False
    """Whether anything was recognised yet."""
    last_voice: float = 0.0
    """``elapsed`` when recognition last moved on: new partial words, or a final result."""
    partial: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)
    """Vosk's final results with text (a single note keeps them all until it ends)."""


class Transcriber:
    """Vosk decoding for notes and voice commands, one block of audio at a time.

    Outside notes it listens for voice commands (when there are any) with a recogniser
    restricted to the command phrases; during a note a free-form recogniser gets the
    audio. Events go to ``post``. Not thread-safe: one thread calls everything.
    """

    def __init__(
        self,
        model: Any,
        settings: ListeningSettings,
        post: Callable[[Event], None],
        commands: Mapping[str, str] | None = None,
        rate: float = MODEL_RATE,
        recognizer_factory: RecognizerFactory = vosk_recognizer,
    ) -> None:
        """``commands``: command name -> "phrase|phrase" (used when settings.voice_commands).

        ``rate`` is the rate of the audio that will be fed; ``recognizer_factory`` makes
        the Vosk recognisers (tests pass a spy).
        """
        self._model = model
        self._settings = settings
        self._post = post
        self._factory = recognizer_factory
        self.phrases: dict[str, str] = {}
        """Spoken phrase -> command name; empty when voice commands are off."""
        if settings.voice_commands and commands:
            self.phrases = command_phrases(model, commands)
            if not self.phrases:
                log.warning("voice commands are on, but the model knows none of their phrases")
        self._grammar = command_grammar(model, self.phrases) if self.phrases else None
        self.rate = rate
        """Sample rate of the audio fed, in Hz."""
        self._free: Recognizer | None = None
        self._commands: Recognizer | None = None
        self._active: Recognizer | None = None
        self._note: _Note | None = None
        self._muted = False
        self.set_rate(rate)

    # ------------------------------------------------------------------ requests

    def set_rate(self, rate: float) -> None:
        """Feed audio at ``rate`` from now on (a new microphone); new recognisers are made.

        Any utterance in progress is dropped: call it only after :meth:`interrupt`, or
        before any audio.
        """
        self.rate = rate
        self._free = None
        self._commands = None
        if self._grammar is not None:
            self._commands = self._factory(self._model, rate, self._grammar)
        # The old recognisers are dropped; the fresh ones have no utterance in progress.
        self._active = None
        self._switch(self._free_form() if self._note is not None else self._wanted())

    def capture(self, kind: str, continuous: bool) -> None:
        """Start a note: one :class:`Heard` for the whole note, or one per utterance."""
        if self._note is not None:
            log.debug("a new note starts before the last one ended; ending it first")
            self.stop(finish=True)
        self._note = _Note(kind, continuous)
        # A command half-spoken when the note starts is cut off here (FinalResult ends it).
        self._switch(self._free_form())

    def stop(self, finish: bool = True) -> None:
        """End the note: ``finish`` delivers what was said so far, otherwise it is dropped."""
        note = self._note
        if note is None:
            return
        self._note = None
        if finish:
            final = self._switch(self._wanted())
            self._deliver(note, final)
        else:
            self._switch(self._wanted(), keep=False)
            log.debug("note (%s) dropped", note.kind)
        self._drop_free_form()

    def interrupt(self) -> None:
        """The audio stopped (the microphone is gone): end the utterance in progress.

        A single note ends with what was heard so far; a running note delivers its last
        utterance and goes on when audio comes again.
        """
        note = self._note
        if note is None:
            self._switch(self._active, keep=False)
        elif note.continuous:
            self._deliver(note, self._switch(self._free_form()))
        else:
            self.stop(finish=True)

    # ------------------------------------------------------------------ the free-form recogniser

    def _free_form(self) -> Recognizer:
        """The free-form recogniser for notes, made when a note needs it.

        It exists only while a note is taken: its decoding state (tens of MB with a large
        model) is given back between notes. Making one took 0.06-0.08 s with the large Korean
        test model on the development machine.
        """
        if self._free is None:
            self._free = self._factory(self._model, self.rate, None)
            self._free.SetWords(True)
        return self._free

    def _drop_free_form(self) -> None:
        """After a note (:meth:`stop` has switched away from it): let the free-form
        recogniser go, with the memory it decoded in."""
        if self._free is not None:
            self._free = None
            memory.give_back_free_memory("a note")

    # ------------------------------------------------------------------ audio

    def feed(self, block: bytes, muted: bool = False) -> None:
        """Process one block of 16-bit mono audio at :attr:`rate`.

        ``muted`` marks audio captured while the device itself was speaking (or just
        after): it is not decoded, and the utterance it interrupts is discarded.
        """
        seconds = len(block) / 2 / self.rate
        note = self._note
        if note is not None:
            note.elapsed += seconds
        if muted:
            if not self._muted and self._active is not None:
                self._active.Reset()  # what overlaps the device's own speech is discarded
                if note is not None:
                    note.partial = ""
            self._muted = True
        else:
            self._muted = False
            if note is not None:
                if note.opened is None:
                    note.opened = note.elapsed - seconds
                note.listened += seconds
            if self._active is not None:
                self._decode(block, note)
        if note is not None and not note.continuous and self._note_over(note):
            self.stop(finish=True)

    def feed_pcm(self, pcm: bytes, block_seconds: float = BLOCK_SECONDS) -> None:
        """Feed a whole recording in microphone-sized blocks (benchmarks, tools)."""
        size = 2 * max(1, round(self.rate * block_seconds))
        for start in range(0, len(pcm), size):
            self.feed(pcm[start : start + size])

    def _decode(self, block: bytes, note: _Note | None) -> None:
        active = self._active
        assert active is not None
        if active.AcceptWaveform(block):
            result = json.loads(active.Result())
            if active is self._commands:
                self._command(result.get("text", ""))
            elif note is not None:
                self._final(note, result)
        elif note is not None and not note.continuous:
            partial = json.loads(active.PartialResult()).get("partial", "")
            if partial and partial != note.partial:
                note.said = True
                note.last_voice = note.elapsed
            note.partial = partial

    def _command(self, text: str) -> None:
        name = self.phrases.get(text)
        if name is not None:
            log.debug("voice command: %s", name)  # never the words themselves
            self._post(VoiceCommand(command=name))

    def _final(self, note: _Note, result: dict[str, Any]) -> None:
        text = result.get("text", "")
        if text:
            if text != note.partial:  # words that no partial result showed yet
                note.last_voice = note.elapsed
            note.said = True
            if note.continuous:
                self._post(_heard(note.kind, [result]))
            else:
                note.results.append(result)
        note.partial = ""

    def _note_over(self, note: _Note) -> bool:
        s = self._settings
        if note.opened is None:
            # The device is still saying what it queued before the invitation (up to about
            # 25 s after a power cut). A speaker that never stops is stuck: end the note.
            return note.elapsed >= max(s.max_seconds, STUCK_SPEAKER_SECONDS)
        if note.elapsed - note.opened >= s.max_seconds:
            return True
        if note.said:
            return note.elapsed - note.last_voice >= s.silence_seconds
        return note.listened >= s.wait_seconds

    def _deliver(self, note: _Note, final: dict[str, Any]) -> None:
        if final.get("text"):
            if note.continuous:
                self._post(_heard(note.kind, [final]))
                return
            note.results.append(final)
        if not note.continuous:
            heard = _heard(note.kind, note.results)
            log.debug("note (%s) ends after %.1f s of audio, %d words", note.kind, note.elapsed, len(heard.words))
            self._post(heard)

    # ------------------------------------------------------------------ the one rule

    def _wanted(self) -> Recognizer | None:
        """The recogniser outside notes: the command one, or none (audio is ignored)."""
        return self._commands

    def _switch(self, target: Recognizer | None, keep: bool = True) -> dict[str, Any]:
        """Make ``target`` the recogniser that gets the audio; the only place this changes.

        The rule: Vosk aborts the whole process (a KaldiFatalError that Python cannot
        catch) when ``SetGrammar`` is called while an utterance is in progress. So this
        module never calls ``SetGrammar``: free-form and command recognition each have
        their own recogniser, made once with its grammar. And a recogniser only stops
        getting audio at an utterance boundary: here its utterance is ended first, with
        ``FinalResult()`` (``keep``, whose result is returned) or ``Reset()``, so every
        recogniser always starts its next utterance clean.
        """
        outgoing = self._active
        final: dict[str, Any] = {}
        if outgoing is not None:
            if keep:
                final = json.loads(outgoing.FinalResult())
            else:
                outgoing.Reset()
        if target is not None and target is not outgoing:
            target.Reset()  # a boundary already; makes the clean start explicit
        self._active = target
        return final


def _heard(kind: str, results: list[dict[str, Any]]) -> Heard:
    """One Heard from Vosk's final results (with word details from SetWords)."""
    texts = [r["text"] for r in results if r.get("text")]
    words: list[WordRecord] = [
        {"word": str(w["word"]), "conf": round(float(w.get("conf", 1.0)), 3)}
        for r in results
        for w in r.get("result", [])
    ]
    return Heard(kind=kind, text=" ".join(texts), words=words)
