"""Audio devices through sounddevice (PortAudio): loading it, listing and finding devices.

The speaker looks for an output and the listener for an input in the same way: by part
of the name as ``intervisie check`` lists it, by number, or "" for the system default.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
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


def audio_fingerprint() -> tuple[object, ...]:
    """What changes when sound hardware or ALSA's configuration changes (cheap to take)."""
    parts: list[object] = []
    for path in (Path.home() / ".asoundrc", Path("/etc/asound.conf")):
        try:
            stat = path.stat()
            parts.append((str(path), stat.st_mtime_ns, stat.st_size))
        except OSError:
            parts.append((str(path), None))
    try:
        parts.append(Path("/proc/asound/cards").read_text())
    except OSError:
        parts.append(None)
    try:
        parts.append(tuple(sorted(os.listdir("/dev/snd"))))
    except OSError:
        parts.append(None)
    return tuple(parts)


lock = threading.RLock()
"""Held around every PortAudio call on a stream and around a rescan, which frees every
stream: a call must never run while its stream is being freed."""
_scanned: tuple[object, ...] | None = None
_rescan_callbacks: list[Callable[[], None]] = []
_streams: weakref.WeakSet[Any] = weakref.WeakSet()


def track(stream: Any) -> Any:
    """Remember an open sounddevice stream, so a rescan can make it harmless; returns it."""
    with lock:
        _streams.add(stream)
    return stream


def rescan_if_changed(allowed: Callable[[], bool] | None = None) -> bool:
    """Let PortAudio list the devices again if the sound hardware changed; True if it did.

    PortAudio freezes its device list when it starts, so a device plugged in later is
    only found after ``sd._terminate(); sd._initialize()``. That stops and frees every
    stream of the process, so it happens only when something changed since the last
    scan (the first call only notes the state) and when ``allowed()`` says so; the
    speaker and the listener both call this, one at a time. Everyone registered with
    :func:`on_rescan` is told afterwards, so they can reopen their streams.
    """
    global _scanned
    with lock:
        fingerprint = audio_fingerprint()
        if _scanned is None or fingerprint == _scanned:
            _scanned = fingerprint  # the first time: PortAudio's list is as fresh as it gets
            return False
        if allowed is not None and not allowed():
            log.debug("audio devices changed; rescan postponed")
            return False
        sd = sounddevice()
        sd._terminate()
        # Every stream is freed now, and a new one may get the same address: a later
        # close() of an old stream would close someone else's new one (observed: the
        # speaker closed the microphone that had just been opened). A NULL pointer makes
        # every call on an old stream a harmless error (PortAudio checks for NULL).
        for stream in list(_streams):
            stream._ptr = sd._ffi.NULL
        _streams.clear()
        sd._initialize()
        _scanned = fingerprint
        callbacks = list(_rescan_callbacks)
    log.info("audio devices changed: rescanned them")
    for callback in callbacks:
        callback()
    return True


def on_rescan(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` after every rescan (from the rescanning thread); returns a function that stops it."""
    with lock:
        _rescan_callbacks.append(callback)

    def forget() -> None:
        with lock:
            if callback in _rescan_callbacks:
                _rescan_callbacks.remove(callback)

    return forget


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
