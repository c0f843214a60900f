"""Speech made by espeak-ng for the recognition tests and the benchmark (no noise added).

Both feed it to a real Vosk model: the Korean test model hears espeak-ng's Korean voice
well enough to recognise single command words exactly.
"""

from __future__ import annotations

import io
import subprocess
import wave

import numpy as np
import numpy.typing as npt


def espeak(text: str, voice: str = "ko", rate: int = 16000) -> npt.NDArray[np.float64]:
    """``text`` spoken by espeak-ng's ``voice`` at 130 words per minute, resampled to ``rate``."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", "130", "--stdout", text], check=True, capture_output=True, timeout=30
    ).stdout
    with wave.open(io.BytesIO(wav)) as reader:
        source = reader.getframerate()
        data = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2").astype(np.float64)
    count = round(len(data) * rate / source)
    resampled: npt.NDArray[np.float64] = np.interp(np.arange(count) * (source / rate), np.arange(len(data)), data)
    return resampled
