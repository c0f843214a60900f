"""The player's output stream: opening it, opening it again, and probing one that failed.

:class:`Output` owns the sounddevice stream of :class:`~assistant.audio.player.Player`.
It opens it on the configured device (or starts without it), replaces it after a
PortAudio rescan or a device error, and tries an output that stopped working again with
a moment of silence, waiting longer after each failed try. Everything but the
constructor and :meth:`Output.reopen` runs in the player's thread.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from assistant.audio import devices
from assistant.audio.synthesis import RENDER_RATE
from assistant.errors import AudioDeviceError

log = logging.getLogger(__name__)

PROBE_SECONDS = 5.0
"""While the audio output does not work, how soon it is tried again with a moment of
silence (so the device speaks again soon after it comes back, not only at the next
announcement). The wait doubles after each failed try, up to :data:`PROBE_MAX_SECONDS`:
a failed try makes ALSA and PortAudio print a few lines of their own."""
PROBE_MAX_SECONDS = 60.0
"""Longest wait between two tries of an output that does not work (every clip tries too)."""
PROBE_AUDIO_SECONDS = 0.2
"""Length of that silence: enough for a lost device to report its error."""


def _sounddevice() -> Any:
    return devices.sounddevice()


def find_output(sd: Any, wanted: str | int) -> int:
    """Index of the wanted output device (part of its name, or its index; "" = default).

    Raises :class:`AudioDeviceError` listing the outputs there are.
    """
    return devices.find_device(sd, wanted, "output")


class Output:
    """One mono int16 output stream on a device, and whether it works."""

    def __init__(
        self, device: str | int, samplerate: int | None, block_seconds: float, *, wait_for_device: bool
    ) -> None:
        """Open the output device (name part or index; "" for the default); see
        :class:`~assistant.audio.player.Player`."""
        sd = self.sd = _sounddevice()
        self._device = device
        self.stream: Any = None
        """The ``sounddevice.RawOutputStream``; None while none could be opened."""
        problem = ""
        try:
            index = find_output(sd, device)
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
        self.block = max(1, round(samplerate * block_seconds))
        """Frames per block written."""
        self._probe_blocks = max(1, round(PROBE_AUDIO_SECONDS / block_seconds))
        if not problem:
            try:
                self.stream = self._new_stream(index)
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
        self.next_probe = time.monotonic() + PROBE_SECONDS
        """``time.monotonic()`` when a failing output is due to be tried again."""
        self.running = False
        """Whether the stream is started."""
        self.failing = bool(problem)
        """Whether the output does not work (a device error, or missing)."""
        self.reopen_wanted = False
        """The stream must be opened again before the next clip (set under the player's lock)."""

    def start(self) -> bool:
        """Start the stream unless it runs; True if it was started now. Raises PortAudioError."""
        if self.running:
            return False
        with devices.lock:
            self.stream.start()
        self.running = True
        return True

    def write(self, data: bytes) -> None:
        """Write one block (blocks while the device's buffer is full). Raises PortAudioError."""
        with devices.lock:
            self.stream.write(data)

    def probe_frames(self) -> int:
        """Frames of :data:`PROBE_AUDIO_SECONDS`: written without an error, the output works."""
        return self._probe_blocks * self.block

    def open_again(self) -> bool:
        """Replace the stream by a new one on the same device; False if that fails.

        When the device is not in PortAudio's list and the sound hardware changed since
        it was made (a USB speaker plugged in), the list is made again first.
        """
        sd = self.sd
        self.reopen_wanted = False
        self.running = False
        if self.stream is not None:
            try:
                with devices.lock:
                    self.stream.close()
            except sd.PortAudioError as exc:
                log.debug("closing the old audio stream: %s", exc)
            self.stream = None
        try:
            try:
                index = find_output(sd, self._device)
            except AudioDeviceError:
                if not devices.rescan_if_changed():
                    raise
                index = find_output(sd, self._device)
            self.stream = self._new_stream(index)
        except (AudioDeviceError, sd.PortAudioError, ValueError) as exc:
            if not self.failing:
                log.warning("the audio output cannot be opened again (%s)", exc)
            else:
                log.debug("the audio output still cannot be opened (%s)", exc)
            self.failed()
            return False
        return True

    def probe(self) -> bool:
        """Try a failing output with a moment of silence; True if it works again now."""
        if self.open_again() and self._silence_plays():
            self.halt(abort=False)
            return self.works()
        # Not yet: wait longer next time (each failed try makes ALSA print a few lines).
        self._probe_wait = min(PROBE_MAX_SECONDS, 2 * self._probe_wait)
        self.next_probe = time.monotonic() + self._probe_wait
        return False

    def failed(self) -> None:
        """The output failed: stop it, and try it again after a while."""
        if not self.failing:
            self._probe_wait = self.probe_seconds
        self.failing = True
        self.next_probe = time.monotonic() + self._probe_wait
        self.halt(abort=True)

    def works(self) -> bool:
        """A clip or a probe played: True (and it says so) if the output was failing until now."""
        if not self.failing:
            return False
        self.failing = False
        log.info("the audio output %s works again", self.device_name)
        return True

    def halt(self, abort: bool) -> None:
        """Stop the stream: abort drops what the device still holds, stop lets it play out."""
        if not self.running or self.stream is None:
            self.running = False
            return
        self.running = False
        try:
            with devices.lock:
                if abort:
                    self.stream.abort()
                else:
                    self.stream.stop()
        except self.sd.PortAudioError as exc:
            log.debug("stopping the audio stream: %s", exc)

    def close(self) -> None:
        """Abort and close the stream (the player's thread ends)."""
        self.halt(abort=True)
        if self.stream is not None:
            try:
                with devices.lock:
                    self.stream.close()
            except self.sd.PortAudioError as exc:
                log.debug("closing the audio stream: %s", exc)

    def _new_stream(self, index: int) -> Any:
        """An output stream on device ``index`` at the output's rate and block size."""
        with devices.lock:
            return devices.track(
                self.sd.RawOutputStream(
                    samplerate=self.samplerate, channels=1, dtype="int16", device=index, blocksize=self.block
                )
            )

    def _silence_plays(self) -> bool:
        """Write :data:`PROBE_AUDIO_SECONDS` of silence to the new stream; False on a device error."""
        silence = np.zeros(self.block, dtype=np.int16).tobytes()
        try:
            with devices.lock:
                self.stream.start()
            self.running = True
            for _ in range(self._probe_blocks):
                with devices.lock:
                    self.stream.write(silence)
        except self.sd.PortAudioError as exc:
            log.debug("the audio output still fails (%s)", exc)
            self.failed()
            return False
        return True
