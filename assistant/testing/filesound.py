"""A sound card made of two files, for machines without one (CI, benchmarks, demos).

ALSA's ``file`` plugin writes everything played on the default device to ``out.raw``
(raw frames in the stream's own format) and plays ``in.raw`` as the microphone. ALSA
reads ``$HOME/.asoundrc`` and PortAudio lists the devices when sounddevice is first
imported, so :func:`install` must run before that import; child processes that inherit
``HOME`` use the same files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FileSound:
    """The files behind the default ALSA device."""

    home: Path
    """The folder holding ``.asoundrc``; becomes ``HOME``."""
    out: Path
    """What was played: raw int16 frames at the stream's rate and channel count."""
    inp: Path
    """What recording returns: raw frames in the stream's format."""


def write_asoundrc(folder: Path) -> FileSound:
    """Write an ``.asoundrc`` in ``folder`` whose default device is the two files."""
    folder.mkdir(parents=True, exist_ok=True)
    sound = FileSound(home=folder, out=folder / "out.raw", inp=folder / "in.raw")
    sound.out.touch()
    sound.inp.touch()
    (folder / ".asoundrc").write_text(
        "pcm.null { type null }\n"
        f'pcm.out {{ type file; slave.pcm "null"; file "{sound.out}"; format "raw" }}\n'
        f'pcm.in {{ type file; slave.pcm "null"; file "/dev/null"; infile "{sound.inp}"; format "raw" }}\n'
        'pcm.!default { type asym; playback.pcm "out"; capture.pcm "in" }\n'
    )
    return sound


def install(folder: Path) -> FileSound:
    """:func:`write_asoundrc` and point ``HOME`` of this process (and its children) at it."""
    sound = write_asoundrc(folder)
    os.environ["HOME"] = str(folder)
    return sound
