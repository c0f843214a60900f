"""Audio devices through sounddevice (PortAudio): loading it, listing and finding devices.

The speaker looks for an output and the listener for an input in the same way: by part
of the name as ``intervisie check`` lists it, by number, or "" for the system default.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from assistant.errors import AudioDeviceError

log = logging.getLogger(__name__)

Direction = Literal["input", "output"]


def sounddevice() -> Any:
    """The sounddevice module; :class:`AudioDeviceError` when PortAudio is missing."""
    try:
        import sounddevice as sd
    except OSError as exc:  # raised when libportaudio2 is missing
        raise AudioDeviceError(f"PortAudio is not available ({exc}); install libportaudio2") from None
    return sd


def device_lines(direction: Direction) -> list[str]:
    """Human-readable lines, one per device of that direction; [] if PortAudio is missing."""
    try:
        sd = sounddevice()
    except AudioDeviceError as exc:
        log.debug("no audio device list: %s", exc)
        return []
    try:
        devices = sd.query_devices()
        default = sd.default.device[_SLOT[direction]]
    except sd.PortAudioError as exc:
        log.debug("no audio device list: %s", exc)
        return []
    lines = []
    for index, device in enumerate(devices):
        if device[_CHANNELS[direction]] > 0:
            mark = " [default]" if index == default else ""
            lines.append(f"{index}: {device['name']} ({device['default_samplerate']:.0f} Hz){mark}")
    return lines


def find_device(sd: Any, wanted: str | int, direction: Direction) -> int:
    """Index of the wanted device (part of its name, or its index; "" = the default).

    Raises :class:`AudioDeviceError` naming the devices there are.
    """
    try:
        devices = list(sd.query_devices())
        default = sd.default.device[_SLOT[direction]]
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"cannot list audio devices ({exc})") from None
    found = {i: str(d["name"]) for i, d in enumerate(devices) if d[_CHANNELS[direction]] > 0}
    available = ", ".join(f"{i}: {name}" for i, name in found.items()) or "none"
    if isinstance(wanted, str) and wanted.strip().isdigit():
        wanted = int(wanted)
    if wanted == "":
        if default is None or default < 0 or default not in found:
            raise AudioDeviceError(f"there is no default audio {direction}; available {direction}s: {available}")
        return int(default)
    if isinstance(wanted, int):
        if wanted in found:
            return wanted
        raise AudioDeviceError(f"audio {direction} device {wanted} does not exist; available {direction}s: {available}")
    for exact in (True, False):
        for index, name in found.items():
            if (name.lower() == wanted.lower()) if exact else (wanted.lower() in name.lower()):
                return index
    raise AudioDeviceError(f"audio {direction} device {wanted!r} not found; available {direction}s: {available}")


_SLOT = {"input": 0, "output": 1}
"""Position of the direction in ``sounddevice.default.device``."""
_CHANNELS = {"input": "max_input_channels", "output": "max_output_channels"}
