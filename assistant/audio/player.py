"""The audio player: clips played one after the other on one sounddevice output stream.

It writes paced 20 ms blocks, so a cut takes effect within one block, and keeps exact
start and end times (for muting the microphone). The stream itself, and trying an output
that stopped working again, is :class:`~assistant.audio.output.Output`'s.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from assistant.audio import devices
from assistant.audio.output import Output
from assistant.audio.synthesis import RENDER_RATE, Samples
from assistant.audio.tones import CUE_TONES, TONES, tone_samples

log = logging.getLogger(__name__)

BLOCK_SECONDS = 0.02
"""Audio is written to the device in blocks of this length; a cut waits at most one."""
MAX_AHEAD_SECONDS = 0.06
"""Most audio written ahead of the wall clock. On a sound card ``write()`` blocks by
itself, on ALSA's null or file plugin it does not; pacing bounds how late a cut takes
effect on both. Larger values tolerate more scheduling jitter on a busy Pi."""


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


def output_devices() -> list[str]:
    """Human-readable lines, one per audio output device; [] if PortAudio is missing."""
    return devices.device_lines("output")


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
        to play is dropped) and looks for it again (see
        :data:`assistant.audio.output.PROBE_SECONDS`).
        """
        self._output = Output(device, samplerate, BLOCK_SECONDS, wait_for_device=wait_for_device)
        self.samplerate: int = self._output.samplerate
        """The stream's sample rate."""
        self.device_name: str = self._output.device_name
        """Name of the output device."""
        self.volume = volume
        """The level everything is played at (0 to 1), read for every block: setting it
        changes what plays from the next block on."""
        self._block = self._output.block
        self.on_restored: Callable[[], None] | None = None
        """Called in the player thread when the output works again after it failed (or
        was missing at the start): what was said meanwhile was not heard."""
        self._tones = {kind: self._done(self.adapt(tone_samples(kind, self.samplerate), self.samplerate)) for kind in TONES}
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
        self._forget_rescans = devices.on_rescan(self.reopen)
        self._thread = threading.Thread(target=self._run, name="speech-player", daemon=True)
        self._thread.start()

    def adapt(self, samples: npt.NDArray[Any], rate: int = RENDER_RATE) -> Samples:
        """Bring audio at ``rate`` to the stream's rate, as int16 (full level: the volume is
        applied as it plays, see :meth:`at_volume`)."""
        if rate == self.samplerate and samples.dtype == np.int16:
            return samples
        data = samples.astype(np.float64)
        if rate != self.samplerate and len(data):
            count = max(1, round(len(data) * self.samplerate / rate))
            data = np.interp(np.arange(count) * (rate / self.samplerate), np.arange(len(data)), data)
        return np.clip(np.round(data), -32768, 32767).astype(np.int16)

    def at_volume(self, samples: Samples) -> Samples:
        """``samples`` (from :meth:`adapt`) as they are written at the current :attr:`volume`.

        The volume is applied block by block as the audio goes to the device, so a change
        is heard at once, also in what is queued and in the prepared phrases, and costs no
        rendering (a 20 ms block is a few microseconds of arithmetic).
        """
        volume = self.volume
        if volume == 1.0:
            return samples
        return np.clip(np.round(samples * volume), -32768, 32767).astype(np.int16)

    def tone_samples(self, kind: str) -> Samples:
        """The samples of a tone as it is queued (stream rate, full level; the volume is
        applied as it plays)."""
        return self._tones[kind].result()

    @property
    def probe_seconds(self) -> float:
        """How soon an output that does not work is tried again (0: only when a clip comes)."""
        return self._output.probe_seconds

    @probe_seconds.setter
    def probe_seconds(self, seconds: float) -> None:
        self._output.probe_seconds = seconds

    @property
    def _stream(self) -> Any:
        """The output's sounddevice stream (None while none is open)."""
        return self._output.stream

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
            self._output.reopen_wanted = True

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
                output = self._output
                if output.failing and output.probe_seconds > 0:
                    left = output.next_probe - time.monotonic()
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
                    if self._output.probe():
                        self._restored()
                    continue
                try:
                    self._play(clip, clock)
                except Exception:  # a bug here must not silence the rest of the session
                    log.exception("unexpected error while playing %s", clip.label)
                    self._output.halt(abort=True)
                finally:
                    with self._cond:
                        self._current = None
                        self._cond.notify_all()
        finally:
            self._output.close()

    def _play(self, clip: _Clip, clock: _Timeline) -> None:
        exc = clip.audio.exception()
        if exc is not None:
            log.warning("cannot say %s: %s", clip.label, exc)
            return
        samples = clip.audio.result()
        if self._cut(clip):
            return
        output = self._output
        if output.failing and len(samples) < output.probe_frames():
            # A short clip (a tone) may fit in the device's buffers before a lost device
            # reports its error: it counts as back only after the probe's silence played.
            if output.probe():
                self._restored()
            if output.failing:
                log.debug("%s dropped: the audio output is still unusable", clip.label)
                return
        elif (output.failing or output.reopen_wanted) and not output.open_again():
            log.debug("%s dropped: the audio output cannot be opened", clip.label)
            return
        try:
            if output.start():
                clock.restart()
            before = clock.frames
            cut = self._write(clip, samples, clock)
            written = clock.frames - before
            if not cut:
                cut = self._wait_end(clip, clock)
        except output.sd.PortAudioError as error:
            if not output.failing:
                log.warning(
                    "audio output failed (%s); %s was dropped. Announcements only go to the log until the "
                    "output is back; trying it again after %g s, then less often", error, clip.label, output.probe_seconds,
                )
            else:
                log.debug("audio output failed again (%s); %s was dropped", error, clip.label)
            output.failed()
            self.last_audio_ended = time.monotonic()
            return
        if written >= output.probe_frames() and output.works():  # less (a clip cut off at once) proves nothing
            self._restored()
        if cut:
            output.halt(abort=True)
            self.last_audio_ended = time.monotonic()
            log.debug("%s cut off", clip.label)
        else:
            with self._cond:
                more = self._next_ready()
            if not more:  # a gap: let the device play out and rest
                output.halt(abort=False)
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
            self._output.write(self.at_volume(block).tobytes())
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

    def _restored(self) -> None:
        """The output works again after it failed: tell :attr:`on_restored`."""
        if self.on_restored is not None:
            try:
                self.on_restored()
            except Exception:  # noqa: BLE001 (a bug in the callback must not silence the player)
                log.exception("the callback for the restored audio output failed")


_PROBE = _Clip(Future(), "probe", -1, is_tone=False)
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
