"""Speech synthesis: text to samples with pyttsx3 and espeak-ng.

pyttsx3 2.99 only ever renders here, from one thread (see the platform notes for its
bugs); playing is the player's job.

Rendered speech never reaches a file: pyttsx3's espeak driver hands the name it is given
to ``wave.open``, which takes a file object just as well, so every rendering goes into a
buffer in memory. (Up to issue 9 each one was a WAV file in ``/tmp``, which on Pi OS is
the SD card; folders such runs left behind are removed at start, see
:func:`remove_leftovers`.)

Why renderings came out empty or at the wrong speed (issue 10). pyttsx3 starts
espeak-ng in its asynchronous mode (``AUDIO_OUTPUT_RETRIEVAL``): ``espeak_SetParameter``
and ``espeak_Synth`` only queue a command for espeak-ng's own thread, and
``espeak_IsPlaying`` means "that queue is not empty". ``runAndWait`` ends its loop with
``endLoop``, which calls the driver's ``stop()``: when ``IsPlaying`` it calls
``espeak_Cancel`` and sets ``_stopping``. So whenever espeak-ng was still busy at that
moment -- with the rate change just queued (the first rendering of a process, every
change of rate), or with the last callbacks of the previous rendering, which run after
"finished-utterance" was reported -- the cancel:

- dropped the queued rate change and put back the previous rate (``espeak_Cancel``
  restores the saved parameters): the text was spoken at pyttsx3's default of 200
  words per minute, and since the engine believed its rate was set, every later
  rendering of the process too;
- and left ``_stopping`` set, so the driver's ``iterate()`` cancelled the synthesis
  right after starting it and reported "finished-utterance" (completed=False); the
  cancelled synthesis may still report its end, with a valid WAV of 0 samples, which
  was then cached for the day.

Measured with the engine as it was (2,000 renderings back to back, the rate changing
each time): 111 at the wrong rate and 4 empty, each one with a cancel; none without.

The samples of the callback that carries ``EVENT_MSG_TERMINATED`` are dropped by the
driver, but espeak-ng 1.51 sends that event alone, with no samples (checked), so that
loses nothing. The engine therefore waits until espeak-ng is idle before each
rendering, sets the rate itself and reads it back, resets ``_stopping``, counts a
rendering only when pyttsx3 reports it completed, and checks its length against the
text and the rate (:func:`length_problem`); a rendering that fails any of these is
rendered again (:data:`RENDER_ATTEMPTS`).
"""

from __future__ import annotations

import atexit
import collections
import io
import itertools
import logging
import os
import queue
import shutil
import stat
import sys
import threading
import time
import wave
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from assistant.audio.espeak import check_espeak, current_rate, exact_synth
from assistant.audio.lengths import expected_seconds, length_problem, lengths_agree
from assistant.errors import SpeechError

log = logging.getLogger(__name__)

Samples = npt.NDArray[np.int16]
"""Mono 16-bit audio."""


RENDER_RATE = 22050
"""Sample rate of espeak-ng's output (pyttsx3 writes its WAV files at this rate)."""


RENDER_TIMEOUT = 30.0
"""Longest wait for one text, whatever espeak-ng does (see :func:`attempt_timeout` for
one rendering of it)."""

RENDER_ATTEMPTS = 3
"""How often a text is rendered before it counts as failed (the speaker then chimes)."""

IDLE_TIMEOUT = 2.0
"""Longest wait for espeak-ng to finish what it was doing before a rendering starts."""

SHUTDOWN_TIMEOUT = 1.5
"""Longest wait at exit for the rendering under way: a quit must take well under 2 s
(systemd's ``TimeoutStopSec`` would kill the service), whatever the renderer does."""


_LANGUAGE_VOICES = {"nl": "gmw/nl", "en": "gmw/en"}
"""espeak-ng voices used when the voice list does not answer the question."""


_T = TypeVar("_T")


class RenderFailed(SpeechError):
    """One rendering came out wrong: empty, the wrong length, cut off, or its callback failed."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry
        """Whether rendering again may help (not when espeak-ng hangs: that would only make
        the group wait longer for the chime)."""


class Engine:
    """The one pyttsx3 engine of the process and the one thread that uses it.

    pyttsx3 hands out one shared engine per driver and espeak-ng keeps a single global
    synthesis callback, so two engines or two threads would interfere; every renderer
    therefore sends its work here.

    Every rendering starts with espeak-ng idle, sets the voice and the rate itself and
    checks that the rate took, and counts only when pyttsx3 reports it completed (see
    the module's docstring for why).
    """

    _instance: Engine | None = None
    _instance_lock = threading.Lock()

    @classmethod
    def get(cls) -> Engine:
        """The process's engine thread, started on first use.

        espeak-ng is first started in a child process: when its data is missing or broken
        the library ends the whole process (``exit(1)``) instead of returning an error,
        which must not happen to the daemon. Raises :class:`SpeechError` then, and tries
        again on the next call; an engine that failed to start is also replaced.
        """
        with cls._instance_lock:
            instance = cls._instance
            if instance is not None and instance._ready.done() and instance._ready.exception() is not None:
                instance = None  # it could not start: try a new one
            if instance is None:
                check_espeak(RENDER_TIMEOUT)
                instance = cls._instance = cls()
            return instance

    def __init__(self) -> None:
        self._jobs: queue.PriorityQueue[tuple[int, int, Callable[[], None]]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._ready: Future[None] = Future()
        self._engine: Any = None
        self._driver: Any = None
        self._espeak: Any = None
        self._attempt = _Attempt()
        self._voice: str | None = None
        self._closing = False
        self.counts: collections.Counter[str] = collections.Counter()
        """Texts "rendered" and "failed"; renderings "rendered again" (they came out wrong);
        texts of an "unusual length, confirmed by a second rendering". Engine thread only."""
        remove_leftovers()
        atexit.register(self.shutdown)
        threading.Thread(target=self._run, name="speech-render", daemon=True).start()

    def call(self, work: Callable[[], _T], priority: int = 0) -> Future[_T]:
        """Run ``work`` in the engine thread; lower ``priority`` runs first."""
        result: Future[_T] = Future()

        def job() -> None:
            if not result.set_running_or_notify_cancel():
                return
            if self._closing:
                result.set_exception(SpeechError("the process is ending; nothing more is rendered"))
                return
            try:
                result.set_result(work())
            except Exception as exc:  # noqa: BLE001 (handed to the caller through the future)
                result.set_exception(exc)

        self._jobs.put((priority, next(self._order), job))
        return result

    @property
    def closing(self) -> bool:
        """Whether the process is ending (see :meth:`shutdown`)."""
        return self._closing

    def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Drop the queued renderings and wait (at most ``timeout``) for the one under way.

        Called at exit: espeak-ng renders in a thread of its own and calls back into
        Python when it is done; if the interpreter is being torn down by then, the
        process crashes (seen as SIGSEGV on a quit within seconds of the start, while
        the phrases were still being prepared). A rendering takes 10-60 ms; one that
        hangs (its callback failed or blocks) is given up at once (the engine thread
        looks at :attr:`closing` while it waits), so a quit never waits for
        :data:`RENDER_TIMEOUT`.
        """
        self._closing = True
        self._attempt.done.set()  # wakes a rendering that waits
        drained = threading.Event()
        self._jobs.put((sys.maxsize, next(self._order), drained.set))
        if not drained.wait(timeout):
            log.warning("espeak-ng was still rendering when the process ended")

    def wait_ready(self, timeout: float) -> None:
        """Raise :class:`SpeechError` if the engine could not start."""
        try:
            self._ready.result(timeout)
        except FutureTimeout:
            raise SpeechError(f"espeak-ng did not start within {timeout:g} s") from None

    def _run(self) -> None:
        try:
            self._start()
        except Exception as exc:
            log.debug("pyttsx3 failed to start", exc_info=True)
            self._ready.set_exception(
                SpeechError(f"cannot start espeak-ng through pyttsx3 ({exc}); is the espeak-ng package installed?")
            )
        else:
            self._ready.set_result(None)
        while True:
            _priority, _order, job = self._jobs.get()
            job()

    def _start(self) -> None:
        import pyttsx3
        import pyttsx3.drivers._espeak as espeak

        # Before the first rendering: pyttsx3's Synth tells espeak-ng a wrong size (see exact_synth).
        espeak.Synth = exact_synth(espeak)
        engine = pyttsx3.init("espeak")
        # pyttsx3 prints "Audio saved to ..." from espeak-ng's own thread, so redirecting
        # stdout around our call would miss it (or, done globally, swallow other output).
        # Shadowing print in that one module sends it to our debug log instead.
        import pyttsx3.drivers.espeak as espeak_driver

        setattr(espeak_driver, "print", _pyttsx3_print)  # noqa: B010
        engine.connect("finished-utterance", self._on_finished)
        engine.connect("error", self._on_error)
        self._engine = engine
        self._driver = engine.proxy._driver
        self._espeak = espeak
        # The driver's own callback still does all the work; this one only notices when
        # it raises (a rendering's buffer that cannot be written), which ctypes would
        # otherwise print and swallow, leaving the rendering waiting for ever.
        espeak.SetSynthCallback(self._on_synth)
        driver_iterate = self._driver.iterate

        def iterate() -> None:
            driver_iterate()
            self._iterate()

        # The driver's loop calls this every 10 ms while runAndWait waits.
        self._driver.iterate = iterate
        self._wait_idle()  # the driver queued its default rate and volume

    def _on_synth(self, wav: Any, numsamples: int, events: Any) -> int:
        """espeak-ng's synthesis callback (espeak-ng's thread): pyttsx3's, watched."""
        attempt = self._attempt
        try:
            return int(self._driver._onSynth(wav, numsamples, events) or 0)
        except Exception as exc:  # noqa: BLE001 (it must not escape into C; handed to the rendering)
            attempt.fail(exc)
            return 0

    def _iterate(self) -> None:
        """End pyttsx3's loop when the rendering failed, hangs, or the process ends.

        The driver ends it only in the callback that finishes a rendering; when that
        callback raised (a full disk, in the days of ``/tmp``) or never returns,
        runAndWait would spin for ever and the engine thread with it.
        """
        attempt = self._attempt
        if attempt.error is not None or self._closing or time.monotonic() > attempt.deadline:
            self._driver.endLoop()

    def _on_finished(self, completed: bool = True, **_: Any) -> None:
        self._attempt.finish(completed)

    def _on_error(self, exception: BaseException | None = None, **_: Any) -> None:
        self._attempt.fail(exception or SpeechError("pyttsx3 reported an error"))

    def voices(self) -> list[tuple[str, list[str]]]:
        """(id, languages) of every installed voice; engine thread only."""
        self._ready.result()
        return [(str(v.id), [str(lang) for lang in (v.languages or [])]) for v in self._engine.getProperty("voices")]

    def render(self, text: str, voice: str, rate: int) -> Samples:
        """Render ``text`` into 22050 Hz samples whose length fits the text and rate.

        A rendering that is empty, cut off, of the wrong length, or whose callback
        failed is rendered again, up to :data:`RENDER_ATTEMPTS` times in all; then
        :class:`SpeechError` (the speaker plays its chime). Engine thread only.
        """
        self._ready.result()
        problems: list[str] = []
        lengths: list[int] = []
        for _attempt in range(RENDER_ATTEMPTS):
            try:
                samples = self._render_once(text, voice, rate)
                problem = length_problem(text, rate, len(samples) / RENDER_RATE)
                unusual = problem is not None and any(
                    lengths_agree(text, rate, n / RENDER_RATE, len(samples) / RENDER_RATE) for n in lengths
                )
                if unusual:
                    problem = None  # twice the same length: this text is unusual, not the rendering
                    self.counts["unusual length, confirmed by a second rendering"] += 1
                    log.debug("%r is longer or shorter than most texts: %s", text[:40], problems[-1])
                lengths.append(len(samples))
                if problem is None:
                    if problems and not unusual:
                        log.info("espeak-ng rendered %r right at attempt %d (before: %s)",
                                 text[:40], len(problems) + 1, "; ".join(problems))
                    self.counts["rendered"] += 1
                    self.counts["rendered again"] += len(problems)
                    return samples
                raise RenderFailed(problem)
            except RenderFailed as exc:
                if self._closing:
                    raise SpeechError("the process is ending; nothing more is rendered") from None
                problems.append(str(exc))
                if not exc.retry:
                    break
                log.debug("rendering %r again: %s", text[:40], exc)
        self.counts["rendered again"] += len(problems) - 1
        self.counts["failed"] += 1
        if len(problems) < RENDER_ATTEMPTS:
            raise SpeechError(f"espeak-ng failed to render {text[:40]!r}: {problems[-1]}")
        raise SpeechError(f"espeak-ng failed to render {text[:40]!r} {len(problems)} times in a row ({problems[-1]})")

    def _render_once(self, text: str, voice: str, rate: int) -> Samples:
        """One rendering, started with espeak-ng idle and its rate checked."""
        self._wait_idle()
        driver = self._driver
        # pyttsx3's runAndWait cancels espeak-ng when it is "playing" (see the module's
        # docstring); a cancel left pending would cut the next rendering short.
        driver._stopping = False
        if voice != self._voice:
            self._voice = None  # unknown until a rendering succeeds with it
            try:
                driver.setProperty("voice", voice)
            except ValueError as exc:
                raise SpeechError(f"espeak-ng has no voice {voice!r} ({exc}); see `espeak-ng --voices`") from None
        # Every time, straight to the driver (not through pyttsx3's queue), and checked.
        driver.setProperty("rate", rate)
        self._wait_idle()
        actual = current_rate(self._espeak)
        if actual != rate:
            raise RenderFailed(f"espeak-ng's rate is {actual}, not {rate}")
        timeout = attempt_timeout(text, rate)
        attempt = self._attempt = _Attempt(time.monotonic() + timeout)
        buffer = output_buffer()
        # The driver passes its "file name" to wave.open, which writes into the buffer.
        self._engine.save_to_file(text, buffer)
        # runAndWait spins pyttsx3's loop until the callback ends it (or, on the
        # engine's first rendering, returns as soon as espeak-ng has started); either
        # way wait for "finished-utterance" too. _iterate ends a loop that would spin
        # for ever (the callback failed or hangs).
        self._engine.runAndWait()
        while not attempt.done.wait(0.05):
            if self._closing or time.monotonic() > attempt.deadline:
                break
        if self._closing:
            raise SpeechError("the process is ending; nothing more is rendered")
        if attempt.error is not None:
            raise RenderFailed(f"pyttsx3 failed: {attempt.error}")
        if not attempt.done.is_set():
            raise RenderFailed(f"espeak-ng did not finish rendering within {timeout:.1f} s", retry=False)
        if not attempt.completed:
            raise RenderFailed("pyttsx3 cancelled the rendering")
        try:
            samples = _read_wav(buffer.getvalue())
        except SpeechError as exc:
            raise RenderFailed(str(exc)) from None
        self._voice = voice
        return samples

    def _wait_idle(self) -> None:
        """Wait until espeak-ng's command queue is empty (a rendering's tail, a rate change)."""
        deadline = time.monotonic() + IDLE_TIMEOUT
        while self._espeak.IsPlaying():
            if self._closing:
                raise SpeechError("the process is ending; nothing more is rendered")
            if time.monotonic() > deadline:
                raise RenderFailed(f"espeak-ng is still busy after {IDLE_TIMEOUT:g} s", retry=False)
            time.sleep(0.001)


class _Attempt:
    """What pyttsx3 reported about one rendering (set from espeak-ng's thread)."""

    def __init__(self, deadline: float = 0.0) -> None:
        self.deadline = deadline
        """``time.monotonic()`` after which the rendering counts as hung."""
        self.done = threading.Event()
        self.completed = False
        self.error: BaseException | None = None

    def finish(self, completed: bool) -> None:
        self.completed = completed
        self.done.set()

    def fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self.done.set()


def _pyttsx3_print(*args: object, **_kwargs: object) -> None:
    log.debug("pyttsx3: %s", " ".join(str(a) for a in args))


def output_buffer() -> io.BytesIO:
    """Where one rendering is written: memory, never a file."""
    return io.BytesIO()


LEFTOVER_PREFIX = "intervisie-speech-"
"""The folders in the temporary folder where renderings were written up to issue 9."""


def remove_leftovers(folder: Path | None = None) -> int:
    """Remove the speech folders earlier runs left in ``folder`` (the temporary folder).

    A run that was killed left its folder, with the WAV files of what it was saying, on
    the SD card. Only real folders of this user are removed, and nothing is followed: a
    link or someone else's folder under that name is left alone. Returns how many went.
    """
    # Not tempfile.gettempdir(): it writes a probe file to find a writable folder.
    where = Path(os.environ.get("TMPDIR") or "/tmp") if folder is None else folder
    removed = 0
    try:
        names = [name for name in os.listdir(where) if name.startswith(LEFTOVER_PREFIX)]
    except OSError:
        return 0
    for name in names:
        path = where / name
        try:
            info = path.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
                continue
            # rmtree works through file descriptors here: links inside are removed, never followed.
            shutil.rmtree(path)
            removed += 1
        except OSError as exc:
            log.debug("cannot remove the old speech folder %s: %s", path, exc)
    if removed:
        log.info("removed %d speech folder(s) that earlier versions left in %s", removed, where)
    return removed


def _read_wav(data: bytes) -> Samples:
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            params = wav.getparams()
            data = wav.readframes(params.nframes)
    except (OSError, EOFError, wave.Error) as exc:
        raise SpeechError(f"cannot read espeak-ng's output ({exc})") from None
    if (params.nchannels, params.sampwidth, params.framerate) != (1, 2, RENDER_RATE):
        raise SpeechError(f"espeak-ng wrote unexpected audio ({params})")
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


class Renderer:
    """Turns text into speech samples (22050 Hz mono int16) with espeak-ng."""

    def __init__(self, voice: str, rate: int, language: str = "nl") -> None:
        """Check that espeak-ng works with this voice; :class:`SpeechError` if not.

        ``voice`` is an espeak-ng voice name; empty picks the voice of ``language``.
        """
        self._engine = Engine.get()
        self._engine.wait_ready(10)
        self.voice = voice or wait_for(self._engine.call(lambda: _voice_for(self._engine.voices(), language)))
        """The espeak-ng voice in use."""
        self.rate = rate
        """Words per minute."""
        self.renders = 0
        """How many texts this renderer has rendered (the start-up check included)."""
        self.render("test")  # fails here, at start-up, if the voice is missing

    def submit(self, text: str, urgent: bool = True) -> Future[Samples]:
        """Render ``text`` in the background; urgent work goes before the rest."""
        return self._engine.call(lambda: self._render_now(text), 0 if urgent else 1)

    def render(self, text: str) -> Samples:
        """Render ``text`` and wait for it; :class:`SpeechError` if that fails."""
        return wait_for(self.submit(text))

    def _render_now(self, text: str) -> Samples:
        started = time.monotonic()
        samples = self._engine.render(text, self.voice, self.rate)
        self.renders += 1  # only ever changed in the engine thread
        log.debug(
            "rendered %d characters in %.0f ms (%.1f s of audio)",
            len(text), (time.monotonic() - started) * 1000, len(samples) / RENDER_RATE,
        )
        return samples


def wait_for(future: Future[_T]) -> _T:
    try:
        return future.result(RENDER_TIMEOUT + 5)
    except FutureTimeout:
        raise SpeechError("espeak-ng does not answer") from None


def _voice_for(voices: list[tuple[str, list[str]]], language: str) -> str:
    """The espeak-ng voice id for a language code ("nl" -> "gmw/nl")."""
    for voice_id, _languages in voices:
        if voice_id == language or voice_id.endswith("/" + language):
            return voice_id
    for voice_id, languages in voices:
        if languages and (languages[0] == language or languages[0].startswith(language + "-")):
            return voice_id
    return _LANGUAGE_VOICES.get(language, language)


def attempt_timeout(text: str, rate: int) -> float:
    """How long one rendering of ``text`` may take before it counts as hung.

    espeak-ng renders 20-100 times faster than it speaks here (a 2 s sentence in 10-60
    ms); 3 s plus the length of the speech leaves room for a slow Pi and a busy one,
    and a hung rendering is given up (a chime) in seconds, not after half a minute.
    """
    return min(RENDER_TIMEOUT, 3.0 + expected_seconds(text, rate))
