"""Speech output: what the group hears.

:class:`AudioSpeaker` renders text with espeak-ng (through pyttsx3) into samples and
plays them itself with sounddevice, which gives a choice of device, a cut that is
immediate, exact start and end times (for muting the microphone later) and a cache of
the fixed phrases. pyttsx3 2.99 cannot do these itself (see the platform notes): it
only ever renders here, into a private temporary WAV file, from one thread.

:class:`ConsoleSpeaker` writes the texts to the console instead; :func:`make_speaker`
falls back to it when there is no usable speaker, so the assistant still runs.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import logging
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO, TypeVar

import numpy as np
import numpy.typing as npt

from assistant import devices, memory
from assistant.errors import AudioDeviceError, SpeechError
from assistant.settings import SpeechSettings

log = logging.getLogger(__name__)

Samples = npt.NDArray[np.int16]
"""Mono 16-bit audio."""

RENDER_RATE = 22050
"""Sample rate of espeak-ng's output (pyttsx3 writes its WAV files at this rate)."""
TONES = ("press", "hold", "time_up", "listen")
"""The tones :meth:`Speaker.tone` knows."""
CUE_TONES = ("listen",)
"""Tones that are cues within what the device says ("speak after the tone"): they play
in order after queued speech, not before it like the feedback tones."""
BLOCK_SECONDS = 0.02
"""Audio is written to the device in blocks of this length; a cut waits at most one."""
MAX_AHEAD_SECONDS = 0.06
"""Most audio written ahead of the wall clock. On a sound card ``write()`` blocks by
itself, on ALSA's null or file plugin it does not; pacing bounds how late a cut takes
effect on both. Larger values tolerate more scheduling jitter on a busy Pi."""
RENDER_TIMEOUT = 30.0
"""Longest time one rendering may take before it counts as failed."""
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
TONE_LEVEL = 0.4
"""Peak level of the tones, as a fraction of full scale, before the volume setting."""
PROBE_SECONDS = 5.0
"""While the audio output does not work, how soon it is tried again with a moment of
silence (so the device speaks again soon after it comes back, not only at the next
announcement). The wait doubles after each failed try, up to :data:`PROBE_MAX_SECONDS`:
a failed try makes ALSA and PortAudio print a few lines of their own."""
PROBE_MAX_SECONDS = 60.0
"""Longest wait between two tries of an output that does not work (every clip tries too)."""
PROBE_AUDIO_SECONDS = 0.2
"""Length of that silence: enough for a lost device to report its error."""
SYNTHESIS_RETRY_SECONDS = 10.0
"""While espeak-ng cannot start, how often a new attempt is made (when something is said)."""
FALLBACK_TONE = "time_up"
"""The tone played instead of speech that cannot be rendered, so the group still notices
a phase change or an announcement."""
FALLBACK_GAP_SECONDS = 3.0
"""Announcements that fail within this time of a fallback tone get no tone of their own
(a phase change says several things at once: one chime is enough)."""
_LANGUAGE_VOICES = {"nl": "gmw/nl", "en": "gmw/en"}
"""espeak-ng voices used when the voice list does not answer the question."""


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


# --------------------------------------------------------------------------- rendering

_T = TypeVar("_T")


class _Engine:
    """The one pyttsx3 engine of the process and the one thread that uses it.

    pyttsx3 hands out one shared engine per driver and espeak-ng keeps a single global
    synthesis callback, so two engines or two threads would interfere; every renderer
    therefore sends its work here.
    """

    _instance: _Engine | None = None
    _instance_lock = threading.Lock()

    @classmethod
    def get(cls) -> _Engine:
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
        self._files = itertools.count()
        # mkdtemp makes the folder 0700: the texts said in a session stay private.
        self.folder = Path(tempfile.mkdtemp(prefix="intervisie-speech-"))
        self._closing = False
        atexit.register(shutil.rmtree, self.folder, ignore_errors=True)
        # atexit runs the last registered first: the renderings end before the folder goes.
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
        try:
            # systemd-tmpfiles may clean an old folder in /tmp away while the device runs
            # for weeks: make it again (private) rather than fail every rendering.
            self.folder.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise SpeechError(f"cannot write espeak-ng's output in {self.folder} ({exc})") from None
        path = self.folder / f"{next(self._files)}.wav"
        try:
            engine.save_to_file(text, str(path))
            # runAndWait returns as soon as espeak-ng has started; it finishes in its own
            # thread and only then writes the file, so wait for "finished-utterance".
            engine.runAndWait()
            finished = self._finished.wait(RENDER_TIMEOUT)
            if self._errors:
                problem = self._errors[0]
                if "voice" in str(problem).lower():
                    raise SpeechError(f"espeak-ng has no voice {voice!r} ({problem}); see `espeak-ng --voices`")
                raise SpeechError(f"espeak-ng failed to render {text[:40]!r}: {problem}")
            if not finished:
                raise SpeechError(f"espeak-ng did not finish rendering within {RENDER_TIMEOUT:g} s")
            samples = _read_wav(path)
        finally:
            path.unlink(missing_ok=True)
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


def _read_wav(path: Path) -> Samples:
    try:
        with wave.open(str(path), "rb") as wav:
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
        self._engine = _Engine.get()
        self._engine.wait_ready(10)
        self.voice = voice or _wait(self._engine.call(lambda: _voice_for(self._engine.voices(), language)))
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
        return _wait(self.submit(text))

    def _render_now(self, text: str) -> Samples:
        started = time.monotonic()
        samples = self._engine.render(text, self.voice, self.rate)
        self.renders += 1  # only ever changed in the engine thread
        log.debug(
            "rendered %d characters in %.0f ms (%.1f s of audio)",
            len(text), (time.monotonic() - started) * 1000, len(samples) / RENDER_RATE,
        )
        return samples


def _wait(future: Future[_T]) -> _T:
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


# --------------------------------------------------------------------------- playing


@dataclass(frozen=True)
class _Clip:
    """One queued piece of audio."""

    audio: Future[Samples]
    """The samples; may still be rendering."""
    label: str
    """What it is, for the log."""
    generation: int
    """The player's generation when queued; a cut starts a new one."""
    is_tone: bool


def _sounddevice() -> Any:
    return devices.sounddevice()


def output_devices() -> list[str]:
    """Human-readable lines, one per audio output device; [] if PortAudio is missing."""
    return devices.device_lines("output")


def _find_output(sd: Any, wanted: str | int) -> int:
    """Index of the wanted output device (part of its name, or its index; "" = default).

    Raises :class:`AudioDeviceError` listing the outputs there are.
    """
    return devices.find_device(sd, wanted, "output")


class Player:
    """Plays clips one after the other on one output stream, in its own thread."""

    def __init__(
        self, device: str | int, volume: float, samplerate: int | None = None, *, wait_for_device: bool = False
    ) -> None:
        """Open the output device (name part or index; "" for the default).

        ``samplerate`` forces the stream's rate; by default 22050 Hz when the device
        accepts it, else the device's own rate (speech is then resampled).
        Raises :class:`AudioDeviceError` when the device is missing or refuses to open,
        unless ``wait_for_device``: then the player starts without it (what it is given
        to play is dropped) and looks for it again (see :data:`PROBE_SECONDS`).
        """
        sd = self._sd = _sounddevice()
        self._device = device
        self._stream: Any = None
        problem = ""
        try:
            index = _find_output(sd, device)
            info = sd.query_devices(index)
        except AudioDeviceError as exc:
            if not wait_for_device:
                raise
            problem = str(exc)
            devices.rescan_if_changed()  # notes the devices now, so a change from here on is seen
            info = {"name": str(device) or "default", "default_samplerate": RENDER_RATE}
        if samplerate is None:
            samplerate = RENDER_RATE
            if not problem:
                try:
                    sd.check_output_settings(device=index, samplerate=RENDER_RATE, channels=1, dtype="int16")
                except sd.PortAudioError:
                    samplerate = int(info["default_samplerate"])
                    log.info("%s refuses %d Hz; playing at %d Hz", info["name"], RENDER_RATE, samplerate)
        self.samplerate: int = samplerate
        """The stream's sample rate."""
        self.device_name: str = str(info["name"])
        """Name of the output device."""
        self.volume = volume
        self._block = max(1, round(samplerate * BLOCK_SECONDS))
        if not problem:
            try:
                self._stream = self._new_stream(index)
            except (sd.PortAudioError, ValueError) as exc:
                problem = f"cannot open audio output {self.device_name!r} at {samplerate} Hz ({exc})"
                if not wait_for_device:
                    raise AudioDeviceError(problem) from None
        if problem:
            log.warning(
                "no audio output (%s): announcements only go to the log until it is there; looking for it "
                "after %g s, then less often", problem, PROBE_SECONDS,
            )
        else:
            log.info("audio output: %s at %d Hz", self.device_name, samplerate)
        self.probe_seconds = PROBE_SECONDS
        """How soon an output that does not work is tried again (0: only when a clip comes)."""
        self._probe_wait = PROBE_SECONDS
        self.on_restored: Callable[[], None] | None = None
        """Called in the player thread when the output works again after it failed (or
        was missing at the start): what was said meanwhile was not heard."""
        self._next_probe = time.monotonic() + PROBE_SECONDS
        self._tones = {kind: self._done(self.adapt(_tone(kind, samplerate), samplerate)) for kind in TONES}
        self.last_audio_started: float | None = None
        """``time.monotonic()`` when the first block of the latest clip was written."""
        self.last_audio_ended: float | None = None
        """``time.monotonic()`` when audio last stopped (idle after a clip, or a cut)."""
        self.on_start: Callable[[str, float], None] | None = None
        """Called in the player thread with (label, ``time.monotonic()``) when a clip's
        first block goes to the device; for the benchmark and, later, microphone muting."""
        self._cond = threading.Condition()
        self._queue: collections.deque[_Clip] = collections.deque()
        self._current: _Clip | None = None
        self._generation = 0
        self._closed = False
        self._running = False  # whether the stream is started
        self._failing = bool(problem)  # whether the output does not work (a device error, or missing)
        self._reopen_wanted = False  # the stream must be opened again before the next clip
        self._forget_rescans = devices.on_rescan(self.reopen)
        self._thread = threading.Thread(target=self._run, name="speech-player", daemon=True)
        self._thread.start()

    def adapt(self, samples: npt.NDArray[Any], rate: int = RENDER_RATE) -> Samples:
        """Bring audio at ``rate`` to the stream's rate and volume, as int16."""
        if rate == self.samplerate and self.volume == 1.0 and samples.dtype == np.int16:
            return samples
        data = samples.astype(np.float64)
        if rate != self.samplerate and len(data):
            count = max(1, round(len(data) * self.samplerate / rate))
            data = np.interp(np.arange(count) * (rate / self.samplerate), np.arange(len(data)), data)
        data *= self.volume
        return np.clip(np.round(data), -32768, 32767).astype(np.int16)

    def tone_samples(self, kind: str) -> Samples:
        """The samples of a tone as this player plays it (stream rate, volume applied)."""
        return self._tones[kind].result()

    @staticmethod
    def _done(samples: Samples) -> Future[Samples]:
        ready: Future[Samples] = Future()
        ready.set_result(samples)
        return ready

    def enqueue(self, audio: Future[Samples], label: str) -> None:
        """Queue speech after everything queued."""
        with self._cond:
            if self._closed:
                return
            self._queue.append(_Clip(audio, label, self._generation, is_tone=False))
            self._cond.notify_all()
        audio.add_done_callback(self._wake)

    def tone(self, kind: str) -> None:
        """Queue a tone after other queued tones but before queued speech (a cue tone: last)."""
        with self._cond:
            if self._closed:
                return
            if kind in CUE_TONES:
                self._queue.append(_Clip(self._tones[kind], f"tone {kind}", self._generation, is_tone=False))
                self._cond.notify_all()
                return
            position = sum(1 for clip in itertools.takewhile(lambda c: c.is_tone, self._queue))
            self._queue.insert(position, _Clip(self._tones[kind], f"tone {kind}", self._generation, is_tone=True))
            self._cond.notify_all()

    def reopen(self) -> None:
        """Open the output stream again before the next clip.

        After PortAudio rescanned its devices (the listener does that when a microphone
        is plugged in) every old stream is invalid; a device error does the same.
        """
        with self._cond:
            self._reopen_wanted = True

    def stop(self, timeout: float = 0.5) -> None:
        """Cut what plays, drop the queue, and wait (briefly) until the device is silent."""
        with self._cond:
            self._queue.clear()
            self._generation += 1
            self._cond.notify_all()
            generation = self._generation
            self._cond.wait_for(
                lambda: self._current is None or self._current.generation == generation, timeout
            )

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def busy(self) -> bool:
        """Whether a clip plays or waits."""
        with self._cond:
            return self._current is not None or bool(self._queue)

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing plays or waits; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._current is None and not self._queue, timeout)

    def close(self) -> None:
        """Cut, end the thread and close the stream."""
        self._forget_rescans()
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._queue.clear()
            self._generation += 1
            self._cond.notify_all()
        self._thread.join(2)
        if self._thread.is_alive():
            log.warning("the audio thread did not end; the output device may be stuck")

    # The rest runs in the player thread.

    def _wake(self, _future: Future[Samples]) -> None:
        with self._cond:
            self._cond.notify_all()

    def _next(self) -> _Clip | None:
        """The next clip once its audio is ready; None when closing, :data:`_PROBE` when
        a failing output is due to be tried again."""
        with self._cond:
            while True:
                if self._closed:
                    return None
                if self._next_ready():
                    self._current = self._queue.popleft()
                    return self._current
                if self._failing and self.probe_seconds > 0:
                    left = self._next_probe - time.monotonic()
                    if left <= 0:
                        return _PROBE
                    self._cond.wait(left)
                else:
                    self._cond.wait()

    def _run(self) -> None:
        clock = _Timeline()
        try:
            while (clip := self._next()) is not None:
                if clip is _PROBE:
                    self._probe()
                    continue
                try:
                    self._play(clip, clock)
                except Exception:  # a bug here must not silence the rest of the session
                    log.exception("unexpected error while playing %s", clip.label)
                    self._halt(abort=True)
                finally:
                    with self._cond:
                        self._current = None
                        self._cond.notify_all()
        finally:
            self._halt(abort=True)
            if self._stream is not None:
                try:
                    with devices.lock:
                        self._stream.close()
                except self._sd.PortAudioError as exc:
                    log.debug("closing the audio stream: %s", exc)

    def _play(self, clip: _Clip, clock: _Timeline) -> None:
        exc = clip.audio.exception()
        if exc is not None:
            log.warning("cannot say %s: %s", clip.label, exc)
            return
        samples = clip.audio.result()
        if self._cut(clip):
            return
        if self._failing and len(samples) < self._probe_frames():
            # A short clip (a tone) may fit in the device's buffers before a lost device
            # reports its error: it counts as back only after the probe's silence played.
            self._probe()
            if self._failing:
                log.debug("%s dropped: the audio output is still unusable", clip.label)
                return
        elif (self._failing or self._reopen_wanted) and not self._open_again():
            log.debug("%s dropped: the audio output cannot be opened", clip.label)
            return
        try:
            if not self._running:
                with devices.lock:
                    self._stream.start()
                self._running = True
                clock.restart()
            before = clock.frames
            cut = self._write(clip, samples, clock)
            written = clock.frames - before
            if not cut:
                cut = self._wait_end(clip, clock)
        except self._sd.PortAudioError as error:
            if not self._failing:
                log.warning(
                    "audio output failed (%s); %s was dropped. Announcements only go to the log until the "
                    "output is back; trying it again after %g s, then less often", error, clip.label, self.probe_seconds,
                )
            else:
                log.debug("audio output failed again (%s); %s was dropped", error, clip.label)
            self._failed()
            self.last_audio_ended = time.monotonic()
            return
        if written >= self._probe_frames():  # less (a clip cut off at once) proves nothing
            self._works()
        if cut:
            self._halt(abort=True)
            self.last_audio_ended = time.monotonic()
            log.debug("%s cut off", clip.label)
        else:
            with self._cond:
                more = self._next_ready()
            if not more:  # a gap: let the device play out and rest
                self._halt(abort=False)
                self.last_audio_ended = time.monotonic()

    def _write(self, clip: _Clip, samples: Samples, clock: _Timeline) -> bool:
        """Write the clip in paced blocks; True if it was cut off."""
        first = True
        for start in range(0, len(samples), self._block):
            block = samples[start : start + self._block]
            # Pace: write a block only when it ends at most MAX_AHEAD_SECONDS after now.
            ahead = clock.seconds_written(self.samplerate) + len(block) / self.samplerate - clock.elapsed()
            if self._pause(clip, ahead - MAX_AHEAD_SECONDS):
                return True
            with devices.lock:
                self._stream.write(block.tobytes())
            clock.frames += len(block)
            if first:
                first = False
                self.last_audio_started = time.monotonic()
                if self.on_start is not None:
                    self.on_start(clip.label, self.last_audio_started)
        return False

    def _wait_end(self, clip: _Clip, clock: _Timeline) -> bool:
        """Wait until the clip has played, or the next clip is ready; True if cut off."""
        left = clock.seconds_written(self.samplerate) - clock.elapsed()
        with self._cond:
            if left > 0:
                self._cond.wait_for(lambda: self._cut(clip) or self._next_ready(), left)
            return self._cut(clip)

    def _pause(self, clip: _Clip, seconds: float) -> bool:
        """Sleep up to ``seconds``; True at once if the clip is cut off meanwhile."""
        with self._cond:
            if seconds > 0:
                self._cond.wait_for(lambda: self._cut(clip), seconds)
            return self._cut(clip)

    def _cut(self, clip: _Clip) -> bool:
        return self._closed or clip.generation != self._generation

    def _next_ready(self) -> bool:
        return bool(self._queue) and self._queue[0].audio.done()

    def _new_stream(self, index: int) -> Any:
        """An output stream on device ``index`` at the player's rate and block size."""
        with devices.lock:
            return devices.track(
                self._sd.RawOutputStream(
                    samplerate=self.samplerate, channels=1, dtype="int16", device=index, blocksize=self._block
                )
            )

    def _open_again(self) -> bool:
        """Replace the stream by a new one on the same device; False if that fails.

        When the device is not in PortAudio's list and the sound hardware changed since
        it was made (a USB speaker plugged in), the list is made again first.
        """
        sd = self._sd
        self._reopen_wanted = False
        self._running = False
        if self._stream is not None:
            try:
                with devices.lock:
                    self._stream.close()
            except sd.PortAudioError as exc:
                log.debug("closing the old audio stream: %s", exc)
            self._stream = None
        try:
            try:
                index = _find_output(sd, self._device)
            except AudioDeviceError:
                if not devices.rescan_if_changed():
                    raise
                index = _find_output(sd, self._device)
            self._stream = self._new_stream(index)
        except (AudioDeviceError, sd.PortAudioError, ValueError) as exc:
            if not self._failing:
                log.warning("the audio output cannot be opened again (%s)", exc)
            else:
                log.debug("the audio output still cannot be opened (%s)", exc)
            self._failed()
            return False
        return True

    def _probe_frames(self) -> int:
        return max(1, round(PROBE_AUDIO_SECONDS / BLOCK_SECONDS)) * self._block

    def _probe(self) -> None:
        """Try a failing output with a moment of silence; it works again if that plays."""
        if self._open_again() and self._silence_plays():
            self._halt(abort=False)
            self._works()
            return
        # Not yet: wait longer next time (each failed try makes ALSA print a few lines).
        self._probe_wait = min(PROBE_MAX_SECONDS, 2 * self._probe_wait)
        self._next_probe = time.monotonic() + self._probe_wait

    def _silence_plays(self) -> bool:
        """Write :data:`PROBE_AUDIO_SECONDS` of silence to the new stream; False on a device error."""
        silence = np.zeros(self._block, dtype=np.int16).tobytes()
        try:
            with devices.lock:
                self._stream.start()
            self._running = True
            for _ in range(max(1, round(PROBE_AUDIO_SECONDS / BLOCK_SECONDS))):
                with devices.lock:
                    self._stream.write(silence)
        except self._sd.PortAudioError as exc:
            log.debug("the audio output still fails (%s)", exc)
            self._failed()
            return False
        return True

    def _failed(self) -> None:
        if not self._failing:
            self._probe_wait = self.probe_seconds
        self._failing = True
        self._next_probe = time.monotonic() + self._probe_wait
        self._halt(abort=True)

    def _works(self) -> None:
        """A clip or a probe played: if the output was failing, say that it is back."""
        if not self._failing:
            return
        self._failing = False
        log.info("the audio output %s works again", self.device_name)
        if self.on_restored is not None:
            try:
                self.on_restored()
            except Exception:  # noqa: BLE001 (a bug in the callback must not silence the player)
                log.exception("the callback for the restored audio output failed")

    def _halt(self, abort: bool) -> None:
        """Stop the stream: abort drops what the device still holds, stop lets it play out."""
        if not self._running or self._stream is None:
            self._running = False
            return
        self._running = False
        try:
            with devices.lock:
                if abort:
                    self._stream.abort()
                else:
                    self._stream.stop()
        except self._sd.PortAudioError as exc:
            log.debug("stopping the audio stream: %s", exc)


_PROBE: Any = _Clip(Future(), "probe", -1, is_tone=False)
"""Returned by :meth:`Player._next` when a failing output is due to be tried again."""


class _Timeline:
    """Frames written since the stream started, against the wall clock."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.frames = 0

    def restart(self) -> None:
        self.started = time.monotonic()
        self.frames = 0

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def seconds_written(self, rate: int) -> float:
        return self.frames / rate


def _note(freq: float, seconds: float, rate: int, decay: float | None = None) -> npt.NDArray[np.float64]:
    t = np.arange(round(seconds * rate)) / rate
    envelope = np.ones_like(t)
    fade = min(round(0.005 * rate), len(t) // 2)  # 5 ms ramps: no clicks at either end
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, endpoint=False)
        envelope[:fade] *= ramp
        envelope[-fade:] *= ramp[::-1]
    if decay:
        envelope *= np.exp(-t / decay)
    result: npt.NDArray[np.float64] = np.sin(2 * np.pi * freq * t) * envelope
    return result


def _tone(kind: str, rate: int) -> npt.NDArray[np.float64]:
    """The samples of a tone at ``rate``, full scale scaled by :data:`TONE_LEVEL`."""
    if kind == "press":
        wave_ = _note(880, 0.06, rate)
    elif kind == "hold":
        wave_ = np.concatenate([_note(660, 0.075, rate), _note(880, 0.075, rate)])
    elif kind == "time_up":
        # C5, E5, G5, each ringing out: a soft chime rather than an alarm.
        wave_ = np.concatenate([_note(f, 0.2, rate, decay=0.12) for f in (523.25, 659.25, 783.99)])
    elif kind == "listen":
        # One clear, longer beep: "speak now". The microphone opens after it ends.
        wave_ = _note(1046.5, 0.18, rate)
    else:
        raise ValueError(f"unknown tone {kind!r}; expected one of {', '.join(TONES)}")
    return wave_ * (TONE_LEVEL * 32767)


# --------------------------------------------------------------------------- speakers


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
        self._prepared: dict[str, Future[Samples]] = {}
        self._heads: dict[str, tuple[str, str]] = {}  # prepared long phrase -> (head, rest)
        self._recent: collections.OrderedDict[str, Future[Samples]] = collections.OrderedDict()
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
            with self._lock:
                self._prepared[head] = futures[head]
                self._recent.pop(head, None)
                if rest:
                    self._heads[text] = (head, rest)
        failed = 0
        for text, future in futures.items():
            try:
                future.result(RENDER_TIMEOUT)
            except (SpeechError, FutureTimeout) as exc:
                if _Engine.get().closing:
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
        with self._lock:
            split = self._heads.get(text)
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
        return _wait(self._clip(text.strip(), urgent=True))

    def _clip(self, text: str, urgent: bool) -> Future[Samples]:
        """The device-ready audio of ``text``: from the cache, or rendering now."""
        renderer = self.renderer
        if renderer is None:
            return self._render_after_retry(text, urgent)
        if not self._cache:
            return _then(renderer.submit(text, urgent), self.player.adapt)
        with self._lock:
            future = self._prepared.get(text) or self._recent.get(text)
            if future is not None and not (future.done() and future.exception() is not None):
                if text in self._recent:
                    self._recent.move_to_end(text)
                return future
            future = _then(renderer.submit(text, urgent), self.player.adapt)
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
            "no usable audio output (%s): announcements go to the console; check `intervisie check`", exc
        )
        return ConsoleSpeaker()
