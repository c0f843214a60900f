"""The audio player: clips played one after the other on one sounddevice output stream.

It writes paced 20 ms blocks, so a cut takes effect within one block, keeps exact start
and end times (for muting the microphone), and probes an output that stopped working.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from dataclasses import dataclass
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np
import numpy.typing as npt

from assistant.audio import devices
from assistant.errors import AudioDeviceError
from assistant.audio.synthesis import RENDER_RATE, Samples
from assistant.audio.tones import CUE_TONES, TONES, tone_samples

log = logging.getLogger(__name__)

BLOCK_SECONDS = 0.02
"""Audio is written to the device in blocks of this length; a cut waits at most one."""
MAX_AHEAD_SECONDS = 0.06
"""Most audio written ahead of the wall clock. On a sound card ``write()`` blocks by
itself, on ALSA's null or file plugin it does not; pacing bounds how late a cut takes
effect on both. Larger values tolerate more scheduling jitter on a busy Pi."""


PROBE_SECONDS = 5.0
"""While the audio output does not work, how soon it is tried again with a moment of
silence (so the device speaks again soon after it comes back, not only at the next
announcement). The wait doubles after each failed try, up to :data:`PROBE_MAX_SECONDS`:
a failed try makes ALSA and PortAudio print a few lines of their own."""
PROBE_MAX_SECONDS = 60.0
"""Longest wait between two tries of an output that does not work (every clip tries too)."""
PROBE_AUDIO_SECONDS = 0.2
"""Length of that silence: enough for a lost device to report its error."""


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
        self._tones = {kind: self._done(self.adapt(tone_samples(kind, samplerate), samplerate)) for kind in TONES}
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
