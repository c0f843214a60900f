"""The device's tones: short feedback beeps, the time-up chime and the listen cue.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

TONES = ("press", "hold", "time_up", "listen", "volume")
"""The tones :meth:`Speaker.tone` knows."""
CUE_TONES = ("listen",)
"""Tones that are cues within what the device says ("speak after the tone"): they play
in order after queued speech, not before it like the feedback tones."""


TONE_LEVEL = 0.4
"""Peak level of the tones, as a fraction of full scale, before the volume setting."""


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


def tone_samples(kind: str, rate: int) -> npt.NDArray[np.float64]:
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
    elif kind == "volume":
        # The volume knob or "harder"/"zachter": a short, even tone, heard at the new level.
        wave_ = _note(660, 0.12, rate)
    else:
        raise ValueError(f"unknown tone {kind!r}; expected one of {', '.join(TONES)}")
    return wave_ * (TONE_LEVEL * 32767)
