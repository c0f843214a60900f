"""The microphone: finding an input device and opening a 16-bit mono stream on it.

The listener (:mod:`assistant.audio.listener`) opens it through :func:`open_microphone`
and closes it with :func:`close_stream`; ``intervisie check`` lists the inputs with
:func:`input_devices`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from assistant.audio import devices
from assistant.audio.recognition import BLOCK_SECONDS
from assistant.errors import AudioDeviceError

log = logging.getLogger(__name__)

AudioCallback = Callable[[Any, int, Any, Any], None]
"""sounddevice's stream callback: (indata, frames, time_info, status)."""


@dataclass(frozen=True)
class Microphone:
    """An open, started input stream."""

    stream: Any
    """The ``sounddevice.RawInputStream`` (int16, mono)."""
    rate: int
    """Its sample rate in Hz."""
    name: str
    """The device's name."""


def _sounddevice() -> Any:
    return devices.sounddevice()


def input_devices() -> list[str]:
    """Human-readable lines, one per audio input device; [] if PortAudio is missing."""
    return devices.device_lines("input")


def find_input(sd: Any, wanted: str | int) -> int:
    """Index of the wanted input device (part of its name, or its index; "" = default).

    Raises :class:`AudioDeviceError` listing the inputs there are.
    """
    return devices.find_device(sd, wanted, "input")


def open_microphone(
    device: str | int, samplerate: int, callback: AudioCallback, finished: Callable[[], None]
) -> Microphone:
    """Open and start a 16-bit mono input stream in blocks of ``BLOCK_SECONDS``.

    ``samplerate`` is used when the device accepts it, else the device's own rate (Vosk
    resamples to the model's rate itself). ``finished`` is called when the stream ends
    for any reason, a lost device included. Raises :class:`AudioDeviceError`.
    """
    sd = _sounddevice()
    index = find_input(sd, device)
    info = sd.query_devices(index)
    name = str(info["name"])
    rate = samplerate
    try:
        sd.check_input_settings(device=index, samplerate=samplerate, channels=1, dtype="int16")
    except sd.PortAudioError:
        rate = int(info["default_samplerate"])
        log.info("%s refuses %d Hz; recording at %d Hz", name, samplerate, rate)
    stream = None
    with devices.lock:  # no rescan may free the stream while it is being made
        try:
            stream = devices.track(
                sd.RawInputStream(
                    samplerate=rate,
                    blocksize=max(1, round(rate * BLOCK_SECONDS)),
                    device=index,
                    channels=1,
                    dtype="int16",
                    callback=callback,
                    finished_callback=finished,
                )
            )
            stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            if stream is not None:
                close_stream(stream)
            raise AudioDeviceError(f"cannot open audio input {name!r} at {rate} Hz ({exc})") from None
    return Microphone(stream, rate, name)


def close_stream(stream: Any) -> None:
    try:
        with devices.lock:
            stream.close()
    except Exception as exc:  # noqa: BLE001 (a dead device may fail in any way; it is gone anyway)
        log.debug("closing the audio input: %s", exc)
