"""Speech output: what the group hears.

:class:`AudioSpeaker` renders text with :mod:`assistant.audio.synthesis` and plays it with
:class:`~assistant.audio.player.Player`, with a cache of the fixed phrases (:mod:`assistant.audio.clips`) and fallbacks
when espeak-ng or the device fails. :class:`ConsoleSpeaker` writes the texts to the console
instead; :func:`make_speaker` falls back to it when there is no usable speaker.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Protocol, TextIO

import numpy as np

from assistant import memory
from assistant.audio.clips import ClipCache, split_head
from assistant.audio.player import Player
from assistant.audio.synthesis import RENDER_TIMEOUT, Engine, Renderer, Samples, wait_for
from assistant.audio.tones import TONES
from assistant.command import command
from assistant.core.settings import SpeechSettings
from assistant.errors import AudioDeviceError, SpeechError

log = logging.getLogger(__name__)

SYNTHESIS_RETRY_SECONDS = 10.0
"""While espeak-ng cannot start, how often a new attempt is made (when something is said)."""
FALLBACK_TONE = "time_up"
"""The tone played instead of speech that cannot be rendered, so the group still notices
a phase change or an announcement."""
FALLBACK_GAP_SECONDS = 3.0
"""Announcements that fail within this time of a fallback tone get no tone of their own
(a phase change says several things at once: one chime is enough)."""


class Speaker(Protocol):
    """What the rest of the assistant needs of a speaker."""

    def prepare(self, texts: Iterable[str]) -> None:
        """Render these phrases now and keep them, so saying them later starts at once."""

    def say(self, text: str) -> None:
        """Queue ``text`` after whatever plays or is queued; returns at once."""

    def tone(self, kind: str) -> None:
        """Play a tone (one of :data:`TONES`) next, before queued speech; returns at once.

        A cue tone (:data:`CUE_TONES`) instead plays after what is queued."""

    def stop(self) -> None:
        """Cut off what plays now and drop everything queued."""

    def is_speaking(self) -> bool:
        """Whether something plays or is queued."""

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing plays or is queued; False if ``timeout`` seconds passed first."""

    def close(self) -> None:
        """Stop and release the device; later calls do nothing."""

    @property
    def last_audio_started(self) -> float | None:
        """``time.monotonic()`` when the first block of the latest clip went to the device."""

    @property
    def last_audio_ended(self) -> float | None:
        """``time.monotonic()`` when audio last stopped: a clip ended with nothing after it, or a cut."""


class AudioSpeaker:
    """Speech and tones on a real output device: a :class:`Renderer` and a :class:`Player`."""

    def __init__(
        self,
        settings: SpeechSettings,
        language: str,
        *,
        samplerate: int | None = None,
        cache: bool = True,
        keep_trying: bool = False,
    ) -> None:
        """Start espeak-ng and open the output device.

        Raises :class:`SpeechError` if espeak-ng or the voice is missing and
        :class:`AudioDeviceError` if the output device is. ``samplerate`` forces the
        stream's rate (see :class:`Player`). ``cache=False`` renders every text when it
        is said, prepared or not: only for comparison in the benchmark.

        ``keep_trying`` (the daemon) raises neither: a missing voice falls back to the
        language's own voice; without espeak-ng every announcement is a chime
        (:data:`FALLBACK_TONE`) and espeak-ng is tried again every
        :data:`SYNTHESIS_RETRY_SECONDS`; a missing output device is looked for again
        (see :class:`Player`). Each problem is logged once, as a warning.
        """
        self._cache = cache
        self._settings = settings
        self._language = language
        self._keep_trying = keep_trying
        self._lock = threading.Lock()
        self._synthesis_failing = False  # the latest rendering failed (warned once)
        self._next_synthesis_try = 0.0
        self._attempt: Future[Renderer] | None = None  # the latest attempt to start espeak-ng again
        self._last_fallback = -FALLBACK_GAP_SECONDS
        self.renderer: Renderer | None = None
        """Text to samples; None while espeak-ng cannot start (only with ``keep_trying``)."""
        try:
            self.renderer = self._new_renderer()
        except SpeechError as exc:
            if not keep_trying:
                raise
            self._next_synthesis_try = time.monotonic() + SYNTHESIS_RETRY_SECONDS
            self._synthesis_failed(exc)
        self.player = Player(settings.output_device, settings.volume, samplerate, wait_for_device=keep_trying)
        """Samples to the device."""
        self._clips = ClipCache()
        if self.renderer is not None:
            log.info("speech: espeak-ng voice %s at %d words per minute", self.renderer.voice, self.renderer.rate)

    def _new_renderer(self) -> Renderer:
        """A renderer with the configured voice, or (keep_trying) the language's own voice."""
        voice, rate = self._settings.voice, self._settings.rate
        try:
            return Renderer(voice, rate, self._language)
        except SpeechError as exc:
            if not (self._keep_trying and voice and "no voice" in str(exc)):
                raise
            log.warning("%s: speaking with the %s voice of espeak-ng instead", exc, self._language)
            return Renderer("", rate, self._language)

    def _synthesis_failed(self, exc: BaseException) -> None:
        """Log the first failure of a row as a warning, the others at debug level."""
        with self._lock:
            first = not self._synthesis_failing
            self._synthesis_failing = True
        if first:
            log.warning(
                "speech synthesis failed (%s): announcements are marked by a chime and go to the log; "
                "trying espeak-ng again every %g s", exc, SYNTHESIS_RETRY_SECONDS,
            )
        else:
            log.debug("speech synthesis failed again: %s", exc)

    def _synthesis_works(self) -> None:
        with self._lock:
            was = self._synthesis_failing
            self._synthesis_failing = False
        if was:
            log.info("speech synthesis works again")

    @property
    def last_audio_started(self) -> float | None:
        """``time.monotonic()`` when the first block of the latest clip went to the device."""
        return self.player.last_audio_started

    @property
    def last_audio_ended(self) -> float | None:
        """``time.monotonic()`` when audio last stopped: a clip ended with nothing after it, or a cut."""
        return self.player.last_audio_ended

    @property
    def volume(self) -> float:
        """The level everything is played at (0 to 1)."""
        return self.player.volume

    @volume.setter
    def volume(self, level: float) -> None:
        # Applied as the audio is written: what plays, what is queued and every prepared
        # phrase are heard at the new level from the next 20 ms block, with no rendering.
        self.player.volume = level

    def prepare(self, texts: Iterable[str]) -> None:
        """Render these phrases now and keep them for the whole run (blocks until done)."""
        if not self._cache or self.renderer is None:
            return
        started = time.monotonic()
        wanted = [text.strip() for text in dict.fromkeys(texts) if text.strip()]
        futures = {}
        for text in wanted:
            head, rest = split_head(text)
            futures[head] = self._clip(head, urgent=False)
            self._clips.keep(text, head, rest, futures[head])
        failed = 0
        for text, future in futures.items():
            try:
                future.result(RENDER_TIMEOUT)
            except (SpeechError, FutureTimeout) as exc:
                if Engine.get().closing:
                    return  # the process is ending: nothing is missing
                failed += 1
                log.warning("cannot prepare %r: %s", text[:40], exc)
        log.info("prepared %d phrases in %.1f s", len(futures) - failed, time.monotonic() - started)
        memory.give_back_free_memory("rendering the phrases")

    def say(self, text: str) -> None:
        """Queue ``text`` after whatever plays or is queued; returns at once."""
        text = text.strip()
        if not text:
            return
        split = self._clips.split(text)
        if split is None or self.renderer is None:
            self.player.enqueue(self._or_chime(self._clip(text, urgent=True)), repr(text[:40]))
            return
        head, rest = split
        self.player.enqueue(self._or_chime(self._clip(head, urgent=True)), repr(text[:40]))
        # Not cached: it renders now, while the head plays.
        rest_audio = _then(self.renderer.submit(rest, True), self.player.adapt)
        self.player.enqueue(self._or_chime(rest_audio), repr(rest[:40]))

    def tone(self, kind: str) -> None:
        """Play a tone next, before queued speech (it does not cut what plays); a cue tone
        (:data:`CUE_TONES`) plays after the queued speech instead."""
        if kind not in TONES:
            raise ValueError(f"unknown tone {kind!r}; expected one of {', '.join(TONES)}")
        self.player.tone(kind)

    def stop(self) -> None:
        """Cut off what plays now and drop everything queued (tones too)."""
        self.player.stop()

    def is_speaking(self) -> bool:
        """Whether something plays or is queued."""
        return self.player.busy()

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing plays or is queued; False on timeout."""
        return self.player.wait_idle(timeout)

    def close(self) -> None:
        """Cut off, end the player thread and release the device."""
        self.player.close()

    def clip(self, text: str) -> Samples:
        """The samples :meth:`say` plays for ``text`` (stream rate, volume applied).

        Taken from the cache, or rendered now and cached; for checks and benchmarks.
        Raises :class:`SpeechError` if rendering fails.
        """
        return self.player.at_volume(wait_for(self._clip(text.strip(), urgent=True)))

    def _clip(self, text: str, urgent: bool) -> Future[Samples]:
        """The device-ready audio of ``text``: from the cache, or rendering now."""
        renderer = self.renderer
        if renderer is None:
            return self._render_after_retry(text, urgent)
        if not self._cache:
            return _then(renderer.submit(text, urgent), self.player.adapt)
        return self._clips.get(text, lambda: _then(renderer.submit(text, urgent), self.player.adapt))

    def _render_after_retry(self, text: str, urgent: bool) -> Future[Samples]:
        """Without a renderer: start espeak-ng again (when due), then render ``text``.

        Fails with :class:`SpeechError` while espeak-ng still cannot start (the player
        then plays the chime). The attempt runs in a thread of its own (starting
        espeak-ng takes a moment, and ``say`` returns at once); what is said while it
        runs waits for it.
        """
        result: Future[Samples] = Future()
        with self._lock:
            attempt = self._attempt
            if attempt is None or attempt.done():
                if time.monotonic() < self._next_synthesis_try:
                    result.set_exception(SpeechError("espeak-ng could not start (see the warning above)"))
                    return result
                self._next_synthesis_try = time.monotonic() + SYNTHESIS_RETRY_SECONDS
                attempt = self._attempt = Future()
                threading.Thread(target=self._start_renderer, args=(attempt,), name="speech-retry", daemon=True).start()

        def render(started: Future[Renderer]) -> None:
            exc = started.exception()
            if exc is not None:
                result.set_exception(exc)
                return
            audio = _then(started.result().submit(text, urgent), self.player.adapt)
            audio.add_done_callback(lambda done: _copy_result(done, result))

        attempt.add_done_callback(render)
        return result

    def _start_renderer(self, attempt: Future[Renderer]) -> None:
        """Start espeak-ng again (in its own thread); the renderer, or the reason, goes to ``attempt``."""
        try:
            renderer = self.renderer or self._new_renderer()
        except Exception as exc:  # noqa: BLE001 (handed on through the future)
            attempt.set_exception(exc)
            return
        if self.renderer is None:
            log.info("espeak-ng starts now: voice %s at %d words per minute", renderer.voice, renderer.rate)
            self.renderer = renderer
        attempt.set_result(renderer)

    def _or_chime(self, audio: Future[Samples]) -> Future[Samples]:
        """``audio``, or the fallback chime if it cannot be rendered (logged once).

        Several failures close together (a phase change says several things) get one
        chime: the later ones become silence.
        """
        if audio.done() and audio.exception() is None:
            self._synthesis_works()
            return audio  # the common case (a prepared phrase): nothing to wrap
        result: Future[Samples] = Future()

        def done(source: Future[Samples]) -> None:
            exc = source.exception()
            if exc is None:
                self._synthesis_works()
                result.set_result(source.result())
                return
            if self.player.closed:  # the speaker is closing: nothing plays any more
                result.set_exception(exc)
                return
            self._synthesis_failed(exc)
            now = time.monotonic()
            with self._lock:
                chime = now - self._last_fallback >= FALLBACK_GAP_SECONDS
                if chime:
                    self._last_fallback = now
            if chime:
                result.set_result(self.player.tone_samples(FALLBACK_TONE))
            else:
                result.set_result(np.zeros(0, dtype=np.int16))

        audio.add_done_callback(done)
        return result


def _copy_result(source: Future[Any], target: Future[Any]) -> None:
    exc = source.exception()
    if exc is not None:
        target.set_exception(exc)
    else:
        target.set_result(source.result())


def _then(future: Future[Samples], step: Callable[[Samples], Samples]) -> Future[Samples]:
    """A future of ``step`` applied to ``future``'s result."""
    result: Future[Samples] = Future()

    def done(source: Future[Samples]) -> None:
        try:
            result.set_result(step(source.result()))
        except Exception as exc:  # noqa: BLE001 (handed on through the future)
            result.set_exception(exc)

    future.add_done_callback(done)
    return result


class ConsoleSpeaker:
    """Stands in for a speaker: writes each text as a line to a stream (standard error)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        """``stream`` defaults to ``sys.stderr`` (looked up at each write)."""
        self._stream = stream
        self.last_audio_started: float | None = None
        """When the latest text was written (nothing plays, so it also ended then)."""
        self.last_audio_ended: float | None = None
        """Same as :attr:`last_audio_started`: console speech takes no time."""

    def prepare(self, texts: Iterable[str]) -> None:
        """Nothing to render."""
        log.debug("console speech: nothing to prepare")

    def say(self, text: str) -> None:
        """Write ``text`` as one line."""
        text = text.strip()
        if not text:
            return
        log.debug("console speech: %s", text)
        stream = self._stream or sys.stderr
        try:
            stream.write(text + "\n")
            stream.flush()
        except (OSError, ValueError) as exc:  # a closed console must not stop the session
            log.debug("cannot write to the console: %s", exc)
        self.last_audio_started = self.last_audio_ended = time.monotonic()

    def tone(self, kind: str) -> None:
        """Tones are only logged (at debug level)."""
        if kind not in TONES:
            raise ValueError(f"unknown tone {kind!r}; expected one of {', '.join(TONES)}")
        log.debug("console speech: tone %s", kind)

    def stop(self) -> None:
        """Nothing plays, so there is nothing to stop."""

    def is_speaking(self) -> bool:
        """Never: console speech takes no time."""
        return False

    def wait_idle(self, timeout: float) -> bool:
        """Always idle."""
        return True

    def close(self) -> None:
        """Nothing to release."""


def make_speaker(settings: SpeechSettings, language: str, keep_trying: bool = False) -> Speaker:
    """The real speaker, or the console with one warning when there is no usable one.

    ``keep_trying`` (the daemon): the real speaker whenever PortAudio is there, even
    without its output device or espeak-ng; it recovers when they come back (see
    :class:`AudioSpeaker`). The console only when PortAudio itself is missing.
    """
    try:
        return AudioSpeaker(settings, language, keep_trying=keep_trying)
    except (AudioDeviceError, SpeechError) as exc:
        log.warning(
            "no usable audio output (%s): announcements go to the console; check `%s`", exc, command("check")
        )
        return ConsoleSpeaker()
