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

from assistant import devices
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
TONE_LEVEL = 0.4
"""Peak level of the tones, as a fraction of full scale, before the volume setting."""
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
        """The process's engine thread, started on first use."""
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

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

    def __init__(self, device: str | int, volume: float, samplerate: int | None = None) -> None:
        """Open the output device (name part or index; "" for the default).

        ``samplerate`` forces the stream's rate; by default 22050 Hz when the device
        accepts it, else the device's own rate (speech is then resampled).
        Raises :class:`AudioDeviceError` when the device is missing or refuses to open.
        """
        sd = self._sd = _sounddevice()
        self._device = device
        index = _find_output(sd, device)
        info = sd.query_devices(index)
        if samplerate is None:
            try:
                sd.check_output_settings(device=index, samplerate=RENDER_RATE, channels=1, dtype="int16")
                samplerate = RENDER_RATE
            except sd.PortAudioError:
                samplerate = int(info["default_samplerate"])
                log.info("%s refuses %d Hz; playing at %d Hz", info["name"], RENDER_RATE, samplerate)
        self.samplerate: int = samplerate
        """The stream's sample rate."""
        self.device_name: str = str(info["name"])
        """Name of the output device."""
        self.volume = volume
        self._block = max(1, round(samplerate * BLOCK_SECONDS))
        try:
            self._stream = self._new_stream(index)
        except (sd.PortAudioError, ValueError) as exc:
            raise AudioDeviceError(
                f"cannot open audio output {self.device_name!r} at {samplerate} Hz ({exc})"
            ) from None
        log.info("audio output: %s at %d Hz", self.device_name, samplerate)
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
        self._failing = False  # whether the last clip hit a device error
        self._reopen_wanted = False  # the stream must be opened again before the next clip
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
        """The next clip once its audio is ready; None when closing."""
        with self._cond:
            while True:
                if self._closed:
                    return None
                if self._next_ready():
                    self._current = self._queue.popleft()
                    return self._current
                self._cond.wait()

    def _run(self) -> None:
        clock = _Timeline()
        try:
            while (clip := self._next()) is not None:
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
            try:
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
        if (self._failing or self._reopen_wanted) and not self._open_again():
            log.debug("%s dropped: the audio output is still unusable", clip.label)
            return
        try:
            if not self._running:
                self._stream.start()
                self._running = True
                clock.restart()
            cut = self._write(clip, samples, clock)
            if not cut:
                cut = self._wait_end(clip, clock)
        except self._sd.PortAudioError as error:
            if not self._failing:
                log.warning("audio output failed (%s); %s was dropped", error, clip.label)
            else:
                log.debug("audio output failed again (%s); %s was dropped", error, clip.label)
            self._failing = True
            self._halt(abort=True)
            self.last_audio_ended = time.monotonic()
            return
        self._failing = False
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
        return self._sd.RawOutputStream(
            samplerate=self.samplerate, channels=1, dtype="int16", device=index, blocksize=self._block
        )

    def _open_again(self) -> bool:
        """Replace the stream by a new one on the same device; False if that fails."""
        sd = self._sd
        self._reopen_wanted = False
        self._running = False
        try:
            self._stream.close()
        except sd.PortAudioError as exc:
            log.debug("closing the old audio stream: %s", exc)
        try:
            self._stream = self._new_stream(_find_output(sd, self._device))
        except (AudioDeviceError, sd.PortAudioError, ValueError) as exc:
            if not self._failing:
                log.warning("the audio output cannot be opened again (%s)", exc)
            self._failing = True
            return False
        if self._failing:
            log.info("the audio output works again")
        self._failing = False
        return True

    def _halt(self, abort: bool) -> None:
        """Stop the stream: abort drops what the device still holds, stop lets it play out."""
        if not self._running:
            return
        self._running = False
        try:
            if abort:
                self._stream.abort()
            else:
                self._stream.stop()
        except self._sd.PortAudioError as exc:
            log.debug("stopping the audio stream: %s", exc)


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
        self, settings: SpeechSettings, language: str, *, samplerate: int | None = None, cache: bool = True
    ) -> None:
        """Start espeak-ng and open the output device.

        Raises :class:`SpeechError` if espeak-ng or the voice is missing and
        :class:`AudioDeviceError` if the output device is. ``samplerate`` forces the
        stream's rate (see :class:`Player`). ``cache=False`` renders every text when it
        is said, prepared or not: only for comparison in the benchmark.
        """
        self._cache = cache
        self.renderer = Renderer(settings.voice, settings.rate, language)
        """Text to samples."""
        self.player = Player(settings.output_device, settings.volume, samplerate)
        """Samples to the device."""
        self._lock = threading.Lock()
        self._prepared: dict[str, Future[Samples]] = {}
        self._heads: dict[str, tuple[str, str]] = {}  # prepared long phrase -> (head, rest)
        self._recent: collections.OrderedDict[str, Future[Samples]] = collections.OrderedDict()
        log.info("speech: espeak-ng voice %s at %d words per minute", self.renderer.voice, self.renderer.rate)

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
        if not self._cache:
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
                failed += 1
                log.warning("cannot prepare %r: %s", text[:40], exc)
        log.info("prepared %d phrases in %.1f s", len(futures) - failed, time.monotonic() - started)

    def say(self, text: str) -> None:
        """Queue ``text`` after whatever plays or is queued; returns at once."""
        text = text.strip()
        if not text:
            return
        with self._lock:
            split = self._heads.get(text)
        if split is None:
            self.player.enqueue(self._clip(text, urgent=True), repr(text[:40]))
            return
        head, rest = split
        self.player.enqueue(self._clip(head, urgent=True), repr(text[:40]))
        # Not cached: it renders now, while the head plays.
        self.player.enqueue(_then(self.renderer.submit(rest, True), self.player.adapt), repr(rest[:40]))

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
        if not self._cache:
            return _then(self.renderer.submit(text, urgent), self.player.adapt)
        with self._lock:
            future = self._prepared.get(text) or self._recent.get(text)
            if future is not None and not (future.done() and future.exception() is not None):
                if text in self._recent:
                    self._recent.move_to_end(text)
                return future
            future = _then(self.renderer.submit(text, urgent), self.player.adapt)
            self._recent[text] = future
            while len(self._recent) > RECENT_CLIPS:
                self._recent.popitem(last=False)
            return future


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


def make_speaker(settings: SpeechSettings, language: str) -> Speaker:
    """The real speaker, or the console with one warning when there is no usable one."""
    try:
        return AudioSpeaker(settings, language)
    except (AudioDeviceError, SpeechError) as exc:
        log.warning(
            "no usable audio output (%s): announcements go to the console; check `intervisie check`", exc
        )
        return ConsoleSpeaker()
