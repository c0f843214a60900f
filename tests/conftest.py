"""Shared fixtures."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# ---------------------------------------------------------------------------------------
# Audio: real PortAudio and ALSA without a sound card.
#
# ALSA's "file" plugin writes what is played to out.raw (raw frames in the stream's own
# format: int16 mono at the stream's rate) and records from in.raw. ALSA reads
# $HOME/.asoundrc and PortAudio scans the devices when sounddevice is imported, so this
# runs when conftest is imported, before any test module can import sounddevice. Child
# processes (the daemon tests) inherit HOME and so the same files.
# ---------------------------------------------------------------------------------------

_AUDIO_DIR = Path(tempfile.mkdtemp(prefix="intervisie-alsa-"))
atexit.register(shutil.rmtree, _AUDIO_DIR, ignore_errors=True)
(_AUDIO_DIR / "out.raw").touch()
(_AUDIO_DIR / "in.raw").touch()
(_AUDIO_DIR / ".asoundrc").write_text(
    f"""\
pcm.null {{ type null }}
pcm.out {{ type file; slave.pcm "null"; file "{_AUDIO_DIR}/out.raw"; format "raw" }}
pcm.in {{ type file; slave.pcm "null"; file "/dev/null"; infile "{_AUDIO_DIR}/in.raw"; format "raw" }}
pcm.!default {{ type asym; playback.pcm "out"; capture.pcm "in" }}
"""
)
os.environ["HOME"] = str(_AUDIO_DIR)


@dataclass(frozen=True)
class AlsaFiles:
    """The files behind the default ALSA device."""

    out: Path
    """What was played: raw int16 mono frames at the stream's rate."""
    inp: Path
    """What recording returns: raw frames in the stream's format."""


@pytest.fixture
def alsa_files() -> Iterator[AlsaFiles]:
    """The default sound card's files, with out.raw emptied before the test.

    Close streams before reading out.raw: ALSA's file plugin buffers a little, and a
    stream left open from an earlier test would keep writing at its old offset.
    """
    files = AlsaFiles(out=_AUDIO_DIR / "out.raw", inp=_AUDIO_DIR / "in.raw")
    files.out.write_bytes(b"")
    yield files


# ----------------------------------------------------------------------- end of audio
