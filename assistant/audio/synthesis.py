"""Speech synthesis: text to samples with pyttsx3 and espeak-ng.

pyttsx3 2.99 only ever renders here, from one thread (see the platform notes for its
bugs); playing is the player's job.

Rendered speech never reaches a file: pyttsx3's espeak driver hands the name it is given
to ``wave.open``, which takes a file object just as well, so every rendering goes into a
buffer in memory. (Up to issue 9 each one was a WAV file in ``/tmp``, which on Pi OS is
the SD card; folders such runs left behind are removed at start, see
:func:`remove_leftovers`.)
"""

from __future__ import annotations

import atexit
import io
import itertools
import logging
import os
import queue
import shutil
import stat
import subprocess
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

from assistant.errors import SpeechError

log = logging.getLogger(__name__)

Samples = npt.NDArray[np.int16]
"""Mono 16-bit audio."""


RENDER_RATE = 22050
"""Sample rate of espeak-ng's output (pyttsx3 writes its WAV files at this rate)."""


RENDER_TIMEOUT = 30.0
"""Longest time one rendering may take before it counts as failed."""


_LANGUAGE_VOICES = {"nl": "gmw/nl", "en": "gmw/en"}
"""espeak-ng voices used when the voice list does not answer the question."""


_T = TypeVar("_T")


class Engine:
    """The one pyttsx3 engine of the process and the one thread that uses it.

    pyttsx3 hands out one shared engine per driver and espeak-ng keeps a single global
    synthesis callback, so two engines or two threads would interfere; every renderer
    therefore sends its work here.
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
                _check_espeak()
                instance = cls._instance = cls()
            return instance

    def __init__(self) -> None:
        self._jobs: queue.PriorityQueue[tuple[int, int, Callable[[], None]]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._ready: Future[None] = Future()
        self._engine: Any = None
        self._finished = threading.Event()
        self._errors: list[BaseException] = []
        self._voice: str | None = None
        self._rate: int | None = None
        self._closing = False
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

    def shutdown(self, timeout: float = RENDER_TIMEOUT) -> None:
        """Drop the queued renderings and wait (at most ``timeout``) for the one under way.

        Called at exit: espeak-ng renders in a thread of its own and calls back into
        Python when it is done; if the interpreter is being torn down by then, the
        process crashes (seen as SIGSEGV on a quit within seconds of the start, while
        the phrases were still being prepared).
        """
        self._closing = True
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

        engine = pyttsx3.init("espeak")
        # pyttsx3 prints "Audio saved to ..." from espeak-ng's own thread, so redirecting
        # stdout around our call would miss it (or, done globally, swallow other output).
        # Shadowing print in that one module sends it to our debug log instead.
        import pyttsx3.drivers.espeak as espeak_driver

        setattr(espeak_driver, "print", _pyttsx3_print)  # noqa: B010
        engine.connect("finished-utterance", lambda **_: self._finished.set())
        engine.connect("error", lambda exception, **_: self._errors.append(exception))
        self._engine = engine

    def voices(self) -> list[tuple[str, list[str]]]:
        """(id, languages) of every installed voice; engine thread only."""
        self._ready.result()
        return [(str(v.id), [str(lang) for lang in (v.languages or [])]) for v in self._engine.getProperty("voices")]

    def render(self, text: str, voice: str, rate: int) -> Samples:
        """Render ``text`` into 22050 Hz samples; engine thread only."""
        self._ready.result()
        engine = self._engine
        # Before setProperty: when the engine is idle pyttsx3 runs it (and reports its
        # errors through the "error" callback) at once, not in runAndWait.
        self._errors.clear()
        self._finished.clear()
        if voice != self._voice:
            self._voice = None  # unknown until a rendering succeeds with it
            engine.setProperty("voice", voice)
        if rate != self._rate:
            self._rate = None
            engine.setProperty("rate", rate)
        buffer = output_buffer()
        # The driver passes its "file name" to wave.open, which writes into the buffer.
        engine.save_to_file(text, buffer)
        # runAndWait returns as soon as espeak-ng has started; it finishes in its own
        # thread and only then writes the buffer, so wait for "finished-utterance".
        engine.runAndWait()
        finished = self._finished.wait(RENDER_TIMEOUT)
        if self._errors:
            problem = self._errors[0]
            if "voice" in str(problem).lower():
                raise SpeechError(f"espeak-ng has no voice {voice!r} ({problem}); see `espeak-ng --voices`")
            raise SpeechError(f"espeak-ng failed to render {text[:40]!r}: {problem}")
        if not finished:
            raise SpeechError(f"espeak-ng did not finish rendering within {RENDER_TIMEOUT:g} s")
        samples = _read_wav(buffer.getvalue())
        self._voice, self._rate = voice, rate
        return samples


_ESPEAK_CHECK = """
import sys
import pyttsx3.drivers._espeak as espeak
sys.exit(0 if espeak.Initialize(espeak.AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0) > 0 else 3)
"""


def _check_espeak() -> None:
    """Start espeak-ng (as pyttsx3 does) in a child process; :class:`SpeechError` if it fails."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _ESPEAK_CHECK], capture_output=True, timeout=RENDER_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SpeechError(f"cannot start espeak-ng to check it ({exc})") from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
        why = said[-1] if said else f"exit code {done.returncode}"
        raise SpeechError(f"espeak-ng cannot start ({why}); is the espeak-ng package with its data installed?")


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
