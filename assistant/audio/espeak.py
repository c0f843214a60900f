"""Calls into espeak-ng beside pyttsx3, and what they put right in pyttsx3's own.

pyttsx3 2.99 wraps espeak-ng with ctypes; the engine (:mod:`assistant.audio.synthesis`)
uses its driver, but three things it does are wrong or unsafe and are done here instead:
the size of each text handed to ``espeak_Synth`` (:func:`exact_synth`), reading the rate
back (:func:`current_rate`), and starting espeak-ng where a failure cannot end the daemon
(:func:`check_espeak`).
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from assistant.errors import SpeechError


def espeak_text_size(data: bytes) -> int:
    """The size to give espeak_Synth for ``data``: its bytes and the NUL that ends it."""
    return len(data) + 1


def exact_synth(espeak: Any) -> Callable[..., int]:
    """pyttsx3's ``Synth``, telling espeak-ng the text's true size.

    pyttsx3 2.99 passes ``len(text) * 10`` as the size, and in its asynchronous mode
    espeak-ng 1.51 copies that many bytes (``create_espeak_text`` does a ``memcpy`` of
    ``size``): it reads nine times the text's length past the end of the Python bytes
    object. Mostly that reads whatever lies behind it, but a text that happens to end near
    the end of mapped memory ends the process with SIGSEGV (it ended the long-life test's
    process once on CI; ``tests/test_speech_right.py`` shows it with a guard page).
    """

    def synth(
        text: str | bytes,
        position: int = 0,
        position_type: int = espeak.POS_CHARACTER,
        end_position: int = 0,
        flags: int = 0,
        user_data: Any = None,
    ) -> int:
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        # espeak.cSynth looked up at each call (a test may watch it).
        return int(espeak.cSynth(data, espeak_text_size(data), position, position_type, end_position, flags,
                                 None, user_data))

    return synth


def current_rate(espeak: Any) -> int:
    """espeak-ng's rate now (``espeak_GetParameter(espeakRATE, current=1)``).

    pyttsx3's own ``GetParameter`` declares one argument of the two, so its answer
    depends on whatever is in the second register.
    """
    get = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_int)(("espeak_GetParameter", espeak.dll))
    return int(get(espeak.RATE, 1))


_ESPEAK_CHECK = """
import sys
import pyttsx3.drivers._espeak as espeak
sys.exit(0 if espeak.Initialize(espeak.AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0) > 0 else 3)
"""


def check_espeak(timeout: float) -> None:
    """Start espeak-ng (as pyttsx3 does) in a child process; :class:`SpeechError` if it fails
    (or takes over ``timeout`` seconds).

    When espeak-ng's data is missing or broken the library ends the whole process
    (``exit(1)``) instead of returning an error, which must not happen to the daemon.
    """
    try:
        done = subprocess.run(
            [sys.executable, "-c", _ESPEAK_CHECK], capture_output=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SpeechError(f"cannot start espeak-ng to check it ({exc})") from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
        why = said[-1] if said else f"exit code {done.returncode}"
        raise SpeechError(f"espeak-ng cannot start ({why}); is the espeak-ng package with its data installed?")
